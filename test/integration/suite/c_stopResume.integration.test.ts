import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import type { QloraStudioApi } from '../../../src/extension';
import { activateExtension, ensureTinyExample, until, workspaceRoot } from './helpers';

describe('Stop Run and Resume Run', function () {
  this.timeout(15 * 60_000);
  let api: QloraStudioApi;

  before(async () => {
    api = (await activateExtension()).api;
  });

  it('stops a running run with a checkpoint, resumes it, and the chart continues without duplicates', async () => {
    const recipe = ensureTinyExample(workspaceRoot());
    const runId = await vscode.commands.executeCommand<unknown>('qloraStudio.startRun', vscode.Uri.file(recipe));
    assert.equal(typeof runId, 'string', `Start QLoRA Run returned ${JSON.stringify(runId)}; last error: ${api.lastCommandError() ?? 'none'}`);
    const id = runId as string;
    await until('the run to log step 3', 8 * 60_000, () => ((api.run(id)?.step ?? 0) >= 3 ? true : undefined));
    const stop = await vscode.commands.executeCommand<{ action: string } | undefined>('qloraStudio.stopRun', id);
    assert.equal(stop?.action, 'signalled', `stop answered ${JSON.stringify(stop)}; last error: ${api.lastCommandError() ?? 'none'}`);
    const stopped = await api.waitForRun(id, 5 * 60_000);
    assert.equal(stopped.state, 'stopped', `state after stop: ${stopped.state} (${stopped.message ?? ''})`);
    assert.ok(stopped.run_dir && fs.readdirSync(path.join(stopped.run_dir, 'checkpoints')).some((d) => d.startsWith('step-')), 'a checkpoint was saved');

    const resumed = await vscode.commands.executeCommand<unknown>('qloraStudio.resumeRun', id);
    assert.equal(resumed, id, `Resume Run returned ${JSON.stringify(resumed)}; last error: ${api.lastCommandError() ?? 'none'}`);
    const final = await api.waitForRun(id, 10 * 60_000);
    assert.equal(final.state, 'completed', `resumed run ended ${final.state}: ${final.message ?? ''}`);
    assert.equal(final.step, final.total_steps, 'the resumed run reached its last step');

    const { points } = await api.getLossViewPoints(id);
    const steps = (points['loss'] ?? []).map(([s]) => s);
    for (let i = 1; i < steps.length; i++) assert.ok(steps[i]! > steps[i - 1]!, `steps increase (${steps[i - 1]} then ${steps[i]})`);
    assert.equal(steps[steps.length - 1], final.total_steps, 'the chart reaches the last step');
  });
});
