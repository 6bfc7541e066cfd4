/**
 * In real VS Code, what the workbench shows around the extension: the backend's own state folder
 * is hidden from the Explorer, the walkthrough's steps can complete and read as plain text, and
 * New Recipe taken with its first suggestions writes a recipe whose model and data exist.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { activateExtension, ensureTinyExample, workspaceRoot } from './helpers';

/** Completion events VS Code understands for walkthrough steps. */
const COMPLETION_KINDS = ['onCommand', 'onLink', 'onView', 'onSettingChanged', 'onContext', 'onExtensionInstalled', 'onStepSelected'];

describe('Workbench contributions', () => {
  it('hides runs/.server from the Explorer and keeps the default exclusions', async () => {
    await activateExtension();
    const exclude = vscode.workspace.getConfiguration('files').get<Record<string, boolean>>('exclude') ?? {};
    assert.equal(exclude['**/runs/.server'], true, `files.exclude: ${JSON.stringify(exclude)}`);
    assert.equal(exclude['**/.git'], true, 'the built-in exclusions still apply');
  });

  it('every walkthrough step completes on an event VS Code knows and its text has no markdown code marks', async () => {
    const { ext } = await activateExtension();
    const pkg = ext.packageJSON as { contributes: { walkthroughs: Array<{ steps: Array<{ id: string; description: string; completionEvents?: string[] }> }> } };
    const steps = pkg.contributes.walkthroughs.flatMap((w) => w.steps);
    assert.ok(steps.length > 0);
    for (const s of steps) {
      assert.ok(!s.description.includes('`'), `step ${s.id}: walkthrough descriptions show backticks literally: ${s.description}`);
      for (const ev of s.completionEvents ?? []) {
        assert.ok(COMPLETION_KINDS.includes(ev.split(':')[0] ?? ''), `step ${s.id}: ${ev} is not a walkthrough completion event`);
      }
    }
    const recipeStep = steps.find((s) => s.id === 'recipe');
    assert.ok(recipeStep?.completionEvents?.some((e) => e.startsWith('onContext:') && e.includes('qlora-recipe')), 'opening a recipe completes the first step');
  });

  it('New Recipe, taking the first suggestion at each step, names a model and data that exist here', async () => {
    ensureTinyExample(workspaceRoot());
    const name = 'first-choice.qlora.yaml';
    const created = vscode.commands.executeCommand<string | undefined>('qloraStudio.newRecipe', { name, purpose: 'light' });
    // The user presses Enter on the model pick, then on the data pick.
    for (let i = 0; i < 2; i++) {
      await new Promise((r) => setTimeout(r, 1500));
      await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    }
    const file = await created;
    assert.equal(file, path.join(workspaceRoot(), name));
    const text = fs.readFileSync(file, 'utf8');
    const value = (re: RegExp) => re.exec(text)?.[1]?.replace(/^["']|["']$/g, '');
    const model = value(/^base_model: *(\S+)/m);
    const train = value(/^ *train: *(\S+)/m);
    assert.ok(model && fs.existsSync(path.join(workspaceRoot(), model, 'config.json')), `a local model folder, not a hub id to download: ${model}`);
    assert.ok(train && fs.existsSync(path.join(workspaceRoot(), train)), `a data file that exists: ${train}`);
    fs.rmSync(file, { force: true });
  });
});
