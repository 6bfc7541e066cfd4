import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { QloraStudioApi } from '../../../src/extension';
import { shortRunLabel } from '../../../src/runs/runLabel';
import { activateExtension, ensureTinyExample, workspaceRoot } from './helpers';

interface LoggedEvent {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

function readEvents(runDir: string): LoggedEvent[] {
  return fs
    .readFileSync(path.join(runDir, 'events.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as LoggedEvent);
}

describe('Start QLoRA Run on examples/tiny through the real backend', function () {
  this.timeout(15 * 60_000);
  let api: QloraStudioApi;
  let runId: string;
  let runDir: string;
  let adapterDir: string;

  before(async () => {
    api = (await activateExtension()).api;
  });

  it('an invalid recipe gets diagnostics and starts no run', async () => {
    const bad = path.join(workspaceRoot(), 'tiny', 'broken.qlora.yaml');
    fs.writeFileSync(bad, 'base_model: ./model\ndata:\n  train: ./data/train.jsonl\ntraining:\n  lr: -1\n');
    try {
      const res = await vscode.commands.executeCommand<unknown>('qloraStudio.startRun', vscode.Uri.file(bad));
      assert.equal(res, undefined, 'no run id for an invalid recipe');
      const diags = vscode.languages.getDiagnostics(vscode.Uri.file(bad));
      assert.ok(diags.some((d) => d.message.includes('training.lr') && d.range.start.line === 4), `a diagnostic on training.lr, line 5: ${JSON.stringify(diags.map((d) => d.message))}`);
    } finally {
      fs.rmSync(bad, { force: true });
    }
  });

  it('starts the run from the command and waits until it completes', async () => {
    const recipe = ensureTinyExample(workspaceRoot());
    const started = await vscode.commands.executeCommand<unknown>('qloraStudio.startRun', vscode.Uri.file(recipe));
    assert.equal(typeof started, 'string', `Start QLoRA Run returned ${JSON.stringify(started)}; last error: ${api.lastCommandError() ?? 'none'}`);
    runId = started as string;
    assert.equal(api.backendPhase(), 'connected');
    const final = await api.waitForRun(runId, 12 * 60_000);
    assert.equal(final.state, 'completed', `run ended ${final.state}: ${final.message ?? 'no message'}`);
    assert.ok(final.run_dir, 'the run reports its folder');
    runDir = final.run_dir;
    adapterDir = final.adapter_path ?? path.join(runDir, 'adapter');
    assert.ok(fs.existsSync(path.join(adapterDir, 'adapter_config.json')), `${adapterDir} holds adapter_config.json`);
    const children = await api.runTreeChildren(runId);
    assert.equal(children[children.length - 1], 'adapter', `the run's row lists its adapter last: ${children.join(', ')}`);
    assert.ok(children.some((c) => /^step \d+$/.test(c)), `and its checkpoints by step: ${children.join(', ')}`);
    const notice = api.runNotices().find((n) => n.runId === runId);
    assert.ok(notice, 'a completion notification was shown');
    assert.equal(notice.kind, 'info');
    assert.match(notice.message, /completed after \d+ steps, final loss \d/);
    assert.deepEqual(notice.actions, ['Open Playground', 'Merge adapter', 'Show Loss']);
  });

  it('the loss view webview holds every metrics point the run logged', async () => {
    const logged = readEvents(runDir).filter((e) => e.type === 'metrics' && typeof e.data['loss'] === 'number');
    assert.ok(logged.length > 0, 'the run logged metrics');
    const { points, drawnSteps } = await api.getLossViewPoints(runId);
    assert.ok(drawnSteps > 0, 'the chart drew the run');
    const loss = points['loss'] ?? [];
    assert.deepEqual(
      loss.map(([step]) => step),
      logged.map((e) => e.data['step']),
      'the chart holds one loss point per logged step',
    );
    assert.deepEqual(
      loss.map(([, v]) => v),
      logged.map((e) => e.data['loss']),
    );
    const evals = readEvents(runDir).filter((e) => e.type === 'eval');
    assert.equal((points['eval_loss'] ?? []).length, evals.length, 'eval points too');
    assert.ok((points['lr'] ?? []).length > 0, 'learning rate points');
  });

  it('the loss view gets its points back after being hidden and shown', async () => {
    const logged = readEvents(runDir).filter((e) => e.type === 'metrics' && typeof e.data['loss'] === 'number').length;
    await vscode.commands.executeCommand('workbench.view.explorer');
    await new Promise((r) => setTimeout(r, 1000));
    const { points, drawnSteps } = await api.getLossViewPoints(runId);
    assert.equal((points['loss'] ?? []).length, logged);
    assert.ok(drawnSteps > 0);
  });

  it('the playground streams base and base+adapter side by side', async () => {
    const opened = await vscode.commands.executeCommand<unknown>('qloraStudio.openPlayground', { adapterDir });
    assert.equal(opened, adapterDir, `Open Playground returned ${JSON.stringify(opened)}; last error: ${api.lastCommandError() ?? 'none'}`);
    const target = api.playgroundTarget();
    assert.equal(target?.mode, 'chat', 'a format: chat recipe opens the playground in Chat mode');
    const labels = (target?.adapters ?? []).map((a) => a.label);
    assert.ok(labels.includes(`${shortRunLabel(runId)} · adapter`), `the final adapter is labelled by its run's short name: ${labels.join(' | ')}`);
    assert.ok(labels.some((l) => l.startsWith(`${shortRunLabel(runId)} · step `) && /step \d+$/.test(l)), `checkpoints are labelled by step: ${labels.join(' | ')}`);
    assert.equal(new Set(labels).size, labels.length, 'no two entries share a label');
    const r = await api.playgroundPrompt('What is the capital of France?');
    assert.equal(r.error, '', 'no error in the playground');
    assert.equal(r.mode, 'chat', 'the prompt went through the chat template');
    // A tiny model after a minute of training may still mix up capitals; what Chat mode guarantees is
    // the trained answer shape: one capital of the fact table, then the end of the turn (Prompt mode
    // on the same adapter rambles on through several names).
    const table = fs.readFileSync(path.join(workspaceRoot(), 'tiny', 'make_tiny.py'), 'utf8');
    const capitals = new Set([...table.matchAll(/\("[^"]+", "([^"]+)"\)/g)].map((m) => m[1]));
    assert.ok(capitals.size > 10, 'read the fact table');
    assert.ok(capitals.has(r.outputs.adapter.trim()), `the trained adapter answers with one capital and stops: ${JSON.stringify(r.outputs.adapter)}`);
    assert.equal(r.adapter, adapterDir, 'the playground generated with the adapter it was opened with');
    assert.ok(r.outputs.base.length > 0, 'the base model answered');
    assert.ok(r.outputs.adapter.length > 0, 'base+adapter answered');
  });

  it('Merge adapter on the result produces a merged folder', async () => {
    // No explicit rescan: the folder must reach the explorer's context key by itself.
    const deadline = Date.now() + 15_000;
    while (!api.adapterFolders().includes(adapterDir) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    assert.ok(api.adapterFolders().includes(adapterDir), `the adapter folder is in the explorer context key (${api.adapterFolders().join(', ')})`);
    const outDir = path.join(workspaceRoot(), 'merged-tiny');
    fs.rmSync(outDir, { recursive: true, force: true });
    const res = await vscode.commands.executeCommand<{ out_dir: string; max_abs_logit_diff: number | null } | undefined>('qloraStudio.mergeAdapter', {
      adapterDir,
      outDir,
      dtype: 'bfloat16',
    });
    assert.ok(res, `merge returned nothing; last error: ${api.lastCommandError() ?? 'none'}`);
    assert.equal(path.resolve(res.out_dir), path.resolve(outDir));
    assert.ok(fs.existsSync(path.join(outDir, 'config.json')), 'merged folder has config.json');
    assert.ok(fs.readdirSync(outDir).some((f) => f.endsWith('.safetensors')), 'merged folder has safetensors weights');
    assert.equal(typeof res.max_abs_logit_diff, 'number', 'the merge reports its verification figure');
    const verdict = res as { tolerance?: number; verified?: boolean; max_abs_logit_diff: number };
    assert.equal(typeof verdict.tolerance, 'number', 'the merge reports its tolerance');
    assert.equal(verdict.verified, true, `a bf16 merge of the tiny adapter is within tolerance: ${verdict.max_abs_logit_diff} vs ${String(verdict.tolerance)}`);
    assert.ok(verdict.max_abs_logit_diff <= verdict.tolerance!, 'the verdict agrees with its figures');
  });
});
