/**
 * The dataset preview inside real VS Code: the inline hint on a JSONL line, the hover with the
 * masked rendering, and the dataset doctor's diagnostics by line for a fixture seeded with each
 * bad-row kind. No backend: all of it works from the tokenizer files and the template.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { activateExtension, ensureTinyExample, workspaceRoot } from './helpers';

async function until<T>(what: string, f: () => T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Copies the doctor fixture (and the tokenizer it names) into the workspace. */
function copyDoctorFixture(extensionPath: string, root: string): string {
  const fixtures = path.join(extensionPath, 'test', 'fixtures');
  const target = path.join(root, 'dataset-fixtures');
  fs.cpSync(path.join(fixtures, 'dataset-doctor'), path.join(target, 'dataset-doctor'), { recursive: true });
  fs.cpSync(path.join(fixtures, 'masking', 'gemma'), path.join(target, 'masking', 'gemma'), { recursive: true });
  return path.join(target, 'dataset-doctor');
}

describe('dataset preview', () => {
  it('shows tokens and % trained on each line of the tiny dataset, following its recipe', async () => {
    await activateExtension();
    const recipe = ensureTinyExample(workspaceRoot());
    const uri = vscode.Uri.file(path.join(path.dirname(recipe), 'data', 'train.jsonl'));
    await vscode.window.showTextDocument(uri);
    const lenses = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', uri, 5);
    const ours = lenses.filter((l) => /\d+ tok · \d+% trained/.test(l.command?.title ?? ''));
    assert.ok(ours.length >= 5, `expected resolved lenses, got ${JSON.stringify(lenses.slice(0, 3).map((l) => l.command?.title))}`);
    assert.equal(ours[0]!.range.start.line, 0);
  });

  it("shows no dataset hint on a run's own event log", async () => {
    const recipe = ensureTinyExample(workspaceRoot());
    const runsDir = path.join(path.dirname(recipe), 'runs');
    const run = fs.existsSync(runsDir) ? fs.readdirSync(runsDir).find((d) => fs.existsSync(path.join(runsDir, d, 'events.jsonl'))) : undefined;
    assert.ok(run, `a run of the tiny example from the run suite in ${runsDir}`);
    const uri = vscode.Uri.file(path.join(runsDir, run, 'events.jsonl'));
    await vscode.window.showTextDocument(uri);
    let titles: string[] = [];
    for (let k = 0; k < 50; k += 1) {
      titles = (await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', uri, 3)).map((l) => l.command?.title ?? '');
      if (!titles.some((t) => t.includes('QLoRA preview'))) break;
      await new Promise((r) => setTimeout(r, 400));
    }
    assert.ok(!titles.some((t) => t.includes('QLoRA preview')), `lenses on a run's events.jsonl: ${JSON.stringify(titles)}`);
  });

  it('updates the hint as the line is edited', async () => {
    const recipe = ensureTinyExample(workspaceRoot());
    const uri = vscode.Uri.file(path.join(path.dirname(recipe), 'data', 'eval.jsonl'));
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc);
    const title = async () => (await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', uri, 3)).find((l) => l.range.start.line === 0)?.command?.title ?? '';
    const before = await title();
    assert.match(before, /^(\d+) tok/);
    const row = JSON.parse(doc.lineAt(0).text) as { messages: Array<{ role: string; content: string }> };
    row.messages.find((m) => m.role === 'assistant')!.content += ' and a much longer answer than before, so more tokens are trained';
    const edit = new vscode.WorkspaceEdit();
    edit.replace(uri, doc.lineAt(0).range, JSON.stringify(row));
    assert.ok(await vscode.workspace.applyEdit(edit));
    const n = (t: string) => Number(/^(\d+) tok/.exec(t)?.[1] ?? 0);
    let now = await title();
    for (let k = 0; k < 20 && n(now) <= n(before); k += 1) {
      await new Promise((r) => setTimeout(r, 200));
      now = await title();
    }
    assert.ok(n(now) > n(before), `before "${before}", after the edit "${now}"`);
    await vscode.commands.executeCommand('workbench.action.files.revert');
  });

  it('hovers a line with the masked rendering: trained text highlighted, special tokens shown', async () => {
    const recipe = ensureTinyExample(workspaceRoot());
    const uri = vscode.Uri.file(path.join(path.dirname(recipe), 'data', 'train.jsonl'));
    const doc = await vscode.workspace.openTextDocument(uri);
    const hovers = await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', uri, new vscode.Position(0, 3));
    const text = hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : (c as vscode.MarkdownString).value))).join('\n');
    assert.match(text, /% trained/);
    assert.match(text, /background-color:#d7f5df/, 'trained text is highlighted');
    assert.match(text, /&lt;\|im_start\|&gt;/, 'special tokens are visible');
    const row = JSON.parse(doc.lineAt(0).text) as { messages: Array<{ role: string; content: string }> };
    const answer = row.messages.find((m) => m.role === 'assistant')!.content;
    assert.ok(text.includes(`background-color:#d7f5df;">${answer}`), `the answer "${answer}" is trained`);
  });

  it('opens the preview panel with coloured tokens: trained, masked and special', async () => {
    const { api } = await activateExtension();
    const recipe = ensureTinyExample(workspaceRoot());
    const file = path.join(path.dirname(recipe), 'data', 'train.jsonl');
    const opened = await vscode.commands.executeCommand<string>('qloraStudio.openDatasetPreview', vscode.Uri.file(recipe));
    assert.equal(opened, file, 'the recipe opens the preview of its training data');
    const drawn = await until('the panel to draw rows', () => {
      const d = api.datasetPanelDrawn(file);
      return d && d.rows >= 3 ? d : undefined;
    }, 30_000);
    assert.ok(drawn.trainedTokens > 0 && drawn.maskedTokens > 0 && drawn.specialTokens > 0, JSON.stringify(drawn));
  });

  it('lists every seeded bad row in the Problems panel on its line', async () => {
    const { ext } = await activateExtension();
    const dir = copyDoctorFixture(ext.extensionPath, workspaceRoot());
    const uri = vscode.Uri.file(path.join(dir, 'doctor.jsonl'));
    await vscode.window.showTextDocument(uri);
    const expected = (JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as { lines: Record<string, string[]> }).lines;
    const diags = await until('doctor diagnostics', () => {
      const d = vscode.languages.getDiagnostics(uri).filter((x) => x.source === 'QLoRA dataset doctor');
      return d.length >= Object.keys(expected).length ? d : undefined;
    });
    const got: Record<string, string[]> = {};
    for (const d of diags) (got[String(d.range.start.line + 1)] ??= []).push(String(d.code));
    assert.deepEqual(got, expected);
    const dup = diags.find((d) => d.code === 'duplicate')!;
    const actions = await vscode.commands.executeCommand<vscode.CodeAction[]>('vscode.executeCodeActionProvider', uri, dup.range);
    assert.ok(actions.some((a) => a.title === 'Delete this duplicate line'), 'a quick fix deletes the duplicate');
  });
});
