/**
 * In real VS Code, the backend's verdicts reach the user: a resume the backend refuses is not
 * offered, and when asked anyway its reason is shown while the run keeps its real state; the
 * Hugging Face token commands keep the token out of settings and files.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { QloraStudioApi } from '../../../src/extension';
import { shortRunLabel } from '../../../src/runs/runLabel';
import { activateExtension, ensureTinyExample, until, workspaceRoot } from './helpers';

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) return d.name === 'model' || d.name === 'node_modules' ? [] : filesUnder(p);
    return [p];
  });
}

describe('The backend decides, the extension shows', function () {
  this.timeout(10 * 60_000);
  let api: QloraStudioApi;

  before(async () => {
    api = (await activateExtension()).api;
  });

  it('a run that failed before its first checkpoint is not resumable, and a resume shows the backend refusal', async () => {
    const tiny = path.dirname(ensureTinyExample(workspaceRoot()));
    const data = path.join(tiny, 'bad-rows.jsonl');
    const recipe = path.join(tiny, 'bad-rows.qlora.yaml');
    fs.writeFileSync(data, '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n{not json\n');
    fs.writeFileSync(recipe, 'base_model: ./model\ndata:\n  train: ./bad-rows.jsonl\n  max_seq_len: 64\ntraining:\n  max_steps: 4\noutput:\n  run_name: bad-rows\n');
    try {
      const started = await vscode.commands.executeCommand<unknown>('qloraStudio.startRun', vscode.Uri.file(recipe));
      assert.equal(typeof started, 'string', `Start QLoRA Run returned ${JSON.stringify(started)}; last error: ${api.lastCommandError() ?? 'none'}`);
      const id = started as string;
      assert.match(id, /^bad-rows-/, 'the backend named the run from output.run_name');
      const failed = await api.waitForRun(id, 5 * 60_000);
      assert.equal(failed.state, 'failed', `the run ended ${failed.state}`);
      const verdict = await until('the backend verdict on resuming it', 30_000, () => api.run(id)?.resumable);
      assert.equal(verdict, false, 'a failed run without a checkpoint is not resumable');

      const notice = await until('the failure notification', 30_000, () => api.runNotices().find((n) => n.runId === id));
      assert.equal(notice.kind, 'error');
      assert.match(notice.message, new RegExp(`^Run ${shortRunLabel(id)} failed before training: \\S`), `the notification says why, naming the run as the tree does: ${notice.message}`);
      assert.deepEqual(notice.actions, ['Show Log', 'Open Recipe'], 'no Resume on a run the backend calls not resumable');
      const problems = vscode.languages.getDiagnostics(vscode.Uri.file(recipe)).filter((d) => d.source === 'QLoRA run');
      assert.equal(problems.length, 1, 'the failure is a Problems entry on the recipe');
      assert.match(problems[0]!.message, /failed before training/);
      const log = api.runLog(id);
      assert.match(log, /\[state\] failed/, `the run log has the failure: ${log}`);
      assert.match(log, /\[error:\w+\] \S/, 'the run log has the error event');
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.from({ scheme: 'qlora-run-log', path: `/${id}.log` }));
      assert.equal(doc.getText(), log, 'the log document shows the same text');

      const resumed = await vscode.commands.executeCommand<unknown>('qloraStudio.resumeRun', id);
      assert.equal(resumed, undefined, 'no resume happened');
      assert.match(api.lastCommandError() ?? '', /qloraStudio\.resumeRun: .*(resum|checkpoint)/i, `the refusal is shown: ${api.lastCommandError() ?? 'none'}`);
      await new Promise((r) => setTimeout(r, 2000));
      assert.equal(api.run(id)?.state, 'failed', 'the run still shows what it is, not queued');
    } finally {
      fs.rmSync(recipe, { force: true });
      fs.rmSync(data, { force: true });
    }
  });

  it('a second run while one is active waits in the queue until the first ends', async () => {
    const tiny = path.dirname(ensureTinyExample(workspaceRoot()));
    const data = path.join(tiny, 'queue-rows.jsonl');
    const recipe = path.join(tiny, 'queue.qlora.yaml');
    fs.writeFileSync(data, '{not json\n');
    fs.writeFileSync(recipe, 'base_model: ./model\ndata:\n  train: ./queue-rows.jsonl\n  max_seq_len: 64\ntraining:\n  max_steps: 2\noutput:\n  run_name: queued\n');
    try {
      const first = await vscode.commands.executeCommand<unknown>('qloraStudio.startRun', vscode.Uri.file(recipe));
      assert.equal(typeof first, 'string', `first run: ${api.lastCommandError() ?? 'none'}`);
      const second = await vscode.commands.executeCommand<unknown>('qloraStudio.startRun', { recipePath: recipe, whenBusy: 'queue' });
      assert.equal(typeof second, 'string', `queued run: ${api.lastCommandError() ?? 'none'}`);
      assert.notEqual(second, first);
      assert.match(api.run(first as string)?.state ?? '', /failed|completed|stopped|interrupted/, 'the queued run started only after the first ended');
      await api.waitForRun(second as string, 5 * 60_000);
    } finally {
      fs.rmSync(recipe, { force: true });
      fs.rmSync(data, { force: true });
    }
  });

  it('the Hugging Face token is set and cleared through secret storage, never in settings or files', async () => {
    const token = 'hf_integrationTestToken0123456789';
    assert.equal(await vscode.commands.executeCommand('qloraStudio.setHfToken', { token }), true, `set: ${api.lastCommandError() ?? ''}`);
    await until('the backend to come back with the token', 120_000, () => (api.backendPhase() === 'connected' ? true : undefined));
    const config = JSON.stringify(vscode.workspace.getConfiguration('qloraStudio'));
    assert.ok(!config.includes(token), 'not in the settings');
    for (const f of filesUnder(workspaceRoot())) assert.ok(!fs.readFileSync(f, 'latin1').includes(token), `${f} carries the token`);
    assert.equal(await vscode.commands.executeCommand('qloraStudio.clearHfToken'), true);
    await until('the backend to come back without the token', 120_000, () => (api.backendPhase() === 'connected' ? true : undefined));
  });
});
