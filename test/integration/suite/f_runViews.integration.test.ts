/**
 * In real VS Code, the runs as a user browses them: runs the CLI made next to a recipe (in a folder
 * the backend never used) show in the Runs tree under a short name, and the loss chart opens as a
 * full-size editor panel that overlays two runs in distinct colours.
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as vscode from 'vscode';
import type { QloraStudioApi } from '../../../src/extension';
import { activateExtension, ensureTinyExample, until, workspaceRoot } from './helpers';

const run = promisify(execFile);

/** A recipe in its own folder, training the tiny model for 3 steps into `cli-runs/` beside it. */
function cliRecipe(root: string): string {
  const dir = path.join(root, 'cli');
  fs.mkdirSync(dir, { recursive: true });
  const tiny = fs.readFileSync(ensureTinyExample(root), 'utf8');
  const text = tiny
    .replace('base_model: ./model', 'base_model: ../tiny/model')
    .replace(/\.\/data\//g, '../tiny/data/')
    .replace(/max_steps: \d+/, 'max_steps: 3')
    .replace(/eval_every: \d+/, 'eval_every: 3')
    .replace(/save_every: \d+/, 'save_every: 3')
    .replace('dir: runs', 'dir: cli-runs')
    .replace('run_name: tiny', 'run_name: cli');
  const file = path.join(dir, 'cli.qlora.yaml');
  fs.writeFileSync(file, text);
  return file;
}

describe('Runs from the CLI and the loss panel', function () {
  this.timeout(10 * 60_000);
  let api: QloraStudioApi;
  let runIds: string[] = [];

  before(async function () {
    api = (await activateExtension()).api;
    const recipe = cliRecipe(workspaceRoot());
    const python = process.env['QLORA_STUDIO_PYTHON'] || 'python3';
    const env = { ...process.env, OMP_NUM_THREADS: '1' };
    // Two CLI runs, one after the other (distinct start times name distinct folders).
    for (let i = 0; i < 2; i++) await run(python, ['-m', 'qlora_studio.cli', 'run', recipe], { cwd: path.dirname(recipe), env, timeout: 240_000 });
    runIds = fs.readdirSync(path.join(path.dirname(recipe), 'cli-runs')).filter((d) => !d.startsWith('.')).sort();
    assert.equal(runIds.length, 2, `two CLI runs: ${runIds.join(', ')}`);
  });

  it('runs the CLI wrote next to a recipe show in the Runs tree, under a short name', async () => {
    await vscode.commands.executeCommand('qloraStudio.refreshRuns');
    const listed = await until('the CLI runs in the Runs tree', 30_000, () => (runIds.every((id) => api.run(id)) ? true : undefined));
    assert.ok(listed);
    for (const id of runIds) {
      const r = api.run(id);
      assert.equal(r?.state, 'completed', `${id} is listed as completed`);
      const row = api.runTreeRow(id);
      assert.ok(row.label.length < id.length && row.label.startsWith('cli '), `a short readable label for ${id}: ${row.label}`);
      assert.ok(row.tooltip.startsWith(id), `the tooltip keeps the whole id: ${row.tooltip}`);
    }
  });

  it('the loss chart opens as a full-size editor panel overlaying both runs in distinct colours', async () => {
    await vscode.commands.executeCommand('qloraStudio.openLossPanel', { runIds });
    const tabs = () => vscode.window.tabGroups.all.flatMap((g) => g.tabs);
    const isPanel = (t: vscode.Tab) => t.input instanceof vscode.TabInputWebview && t.input.viewType.includes('qloraStudio.lossPanel');
    const tab = await until('a loss panel tab in the editor area', 10_000, () => tabs().find(isPanel)).catch((err: Error) => {
      throw new Error(`${err.message}; tabs: ${JSON.stringify(tabs().map((t) => [t.label, (t.input as { viewType?: string } | undefined)?.viewType]))}`);
    });
    assert.equal(tab.label, 'QLoRA Loss');
    let last = '';
    const deadline = Date.now() + 60_000;
    for (;;) {
      const held = await api.getLossPanelPoints(runIds[0]!);
      assert.ok(held, 'the panel answers');
      last = JSON.stringify({ shown: held.shown, chart: held.chart, steps: held.drawnSteps });
      const both = runIds.every((id) => held.shown.some((s) => s.runId === id));
      if (both && held.drawnSteps >= 3 && (held.points['loss'] ?? []).length === 3) {
        assert.equal(new Set(held.shown.map((s) => s.color)).size, held.shown.length, `each run has its own colour: ${last}`);
        assert.ok(held.chart.width > 500 && held.chart.height > 200, `the chart uses the editor's room: ${last}`);
        return;
      }
      if (Date.now() > deadline) assert.fail(`the panel did not draw both runs: ${last}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  });
});
