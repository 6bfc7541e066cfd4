import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { activateExtension, workspaceRoot } from './helpers';

/** Polls until `probe` returns a value or `ms` pass. */
async function within<T>(ms: number, what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const ours = (uri: vscode.Uri): vscode.Diagnostic[] => vscode.languages.getDiagnostics(uri).filter((d) => d.source === 'qlora');

describe('recipe editor: the language server in real VS Code', function () {
  this.timeout(120_000);
  let doc: vscode.TextDocument;
  let editor: vscode.TextEditor;

  before(async () => {
    await activateExtension();
    const file = path.join(workspaceRoot(), 'editor-check.qlora.yaml');
    fs.writeFileSync(file, 'base_model: org/some-model\ndata:\n  train: org/hub-dataset\ntraining:\n  lr: 2.0e-4\n\n');
    doc = await vscode.workspace.openTextDocument(file);
    editor = await vscode.window.showTextDocument(doc);
    assert.equal(doc.languageId, 'qlora-recipe');
    // the server starts lazily on this first recipe; a clean recipe publishes an empty list
    await within(30_000, 'the server to publish for the recipe', async () => {
      const lens = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', doc.uri);
      return lens.some((l) => /tokens\/step/.test(l.command?.title ?? '')) ? true : undefined;
    });
  });

  after(async () => {
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
    fs.rmSync(doc.uri.fsPath, { force: true });
  });

  it('typing a key shows the schema completion list with documentation', async () => {
    await editor.edit((e) => e.insert(new vscode.Position(5, 0), '  war'));
    const list = await vscode.commands.executeCommand<vscode.CompletionList>('vscode.executeCompletionItemProvider', doc.uri, new vscode.Position(5, 5));
    const labels = list.items.map((i) => (typeof i.label === 'string' ? i.label : i.label.label));
    for (const k of ['warmup_ratio', 'warmup_steps', 'micro_batch_size', 'gradient_checkpointing']) assert.ok(labels.includes(k), `${k} in ${labels.join(',')}`);
    assert.ok(!labels.includes('lr'), 'lr is written already');
    const warm = list.items.find((i) => i.label === 'warmup_ratio');
    assert.match(String((warm?.documentation as vscode.MarkdownString | undefined)?.value), /Typical: 0\.03–0\.05/);
    await editor.edit((e) => e.delete(new vscode.Range(5, 0, 5, 5)));
  });

  it('a wrong value shows in the Problems panel within a second, with its range', async () => {
    const lr = new vscode.Range(4, 6, 4, 12);
    const t0 = Date.now();
    await editor.edit((e) => e.replace(lr, '-1'));
    const diag = await within(1_000, 'a diagnostic for lr: -1', () => ours(doc.uri).find((d) => d.message.includes('training.lr')));
    assert.ok(Date.now() - t0 < 1_000);
    assert.equal(diag.severity, vscode.DiagnosticSeverity.Error);
    assert.deepEqual([diag.range.start.line, diag.range.start.character, diag.range.end.character], [4, 6, 8]);
    const fixes = await vscode.commands.executeCommand<vscode.CodeAction[]>('vscode.executeCodeActionProvider', doc.uri, diag.range);
    assert.ok(Array.isArray(fixes));
    await editor.edit((e) => e.replace(new vscode.Range(4, 6, 4, 8), '2.0e-4'));
    await within(1_000, 'the diagnostic to clear', () => (ours(doc.uri).some((d) => d.message.includes('training.lr')) ? undefined : true));
  });

  it('an unknown key gets a did-you-mean quick fix that VS Code applies', async () => {
    await editor.edit((e) => e.insert(new vscode.Position(5, 0), 'lorra:\n  r: 8\n'));
    const diag = await within(1_000, 'unknown key lorra', () => ours(doc.uri).find((d) => /unknown key "lorra"/.test(d.message)));
    const actions = await vscode.commands.executeCommand<vscode.CodeAction[]>('vscode.executeCodeActionProvider', doc.uri, diag.range);
    const fix = actions.find((a) => a.title === "Change to 'lora'");
    assert.ok(fix?.edit, actions.map((a) => a.title).join(' | '));
    await vscode.workspace.applyEdit(fix.edit);
    assert.equal(doc.lineAt(5).text, 'lora:');
    await within(1_000, 'the unknown key diagnostic to clear', () => (ours(doc.uri).some((d) => /unknown key/.test(d.message)) ? undefined : true));
  });

  it('a server that dies is started again and keeps checking the recipe', async () => {
    const { api } = await activateExtension();
    const pid = await api.recipeServerPid();
    assert.ok(pid && pid !== process.pid, 'the server is its own process');
    process.kill(pid, 'SIGKILL');
    const next = await within(20_000, 'a new server process', async () => {
      const p = await api.recipeServerPid().catch(() => undefined);
      return p && p !== pid ? p : undefined;
    });
    assert.notEqual(next, pid);
    await editor.edit((e) => e.replace(new vscode.Range(4, 6, 4, 12), '-5'));
    await within(5_000, 'diagnostics from the new server', () => ours(doc.uri).find((d) => d.message.includes('training.lr')));
    await editor.edit((e) => e.replace(new vscode.Range(4, 6, 4, 8), '2.0e-4'));
  });

  it('hover on a key explains it, and the CodeLens shows tokens per step', async () => {
    const hovers = await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', doc.uri, new vscode.Position(4, 3));
    const text = hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : 'value' in c ? c.value : ''))).join('\n');
    assert.match(text, /training\.lr/);
    assert.match(text, /1e-4 to 3e-4/);
    const lens = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', doc.uri);
    const titles = lens.map((l) => l.command?.title ?? '');
    assert.ok(titles.some((t) => /16,384 tokens\/step/.test(t)), titles.join(' | '));
    assert.ok(titles.some((t) => /Start QLoRA Run/.test(t)), titles.join(' | '));
  });
});
