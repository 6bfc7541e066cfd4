/**
 * In real VS Code, what the workbench shows around the extension: the backend's own state folder
 * is hidden from the Explorer, and the walkthrough's steps can complete and read as plain text.
 */
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { activateExtension } from './helpers';

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
});
