/**
 * The vscode-free run state (src/runs/): typed events applied as delivered, and every verdict
 * (resumable) taken from the backend's RunInfo.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runEventSchema, type Capabilities, type RunEvent } from '../../src/protocol';
import { RunsModel, describeRun, formatLoss } from '../../src/runs/runsModel';
import { distinctRunLabels, shortRunLabel } from '../../src/runs/runLabel';
import { deviceLabel } from '../../src/runs/backendState';
import { isTerminal } from '../../src/protocol/states';
import { statusBarView } from '../../src/views/statusBarText';

const ev = (run_id: string, seq: number, type: string, data: Record<string, unknown>): RunEvent => runEventSchema.parse({ run_id, seq, type, time: 0, data });

test('typed events update step, loss, state and message', () => {
  const m = new RunsModel();
  m.upsertAll([{ run_id: 'r1', state: 'queued', step: 0, total_steps: 20, last_loss: null, created: 10 }]);
  assert.ok(m.apply(ev('r1', 1, 'status', { state: 'running' })));
  assert.ok(m.apply(ev('r1', 2, 'metrics', { step: 3, total_steps: 20, loss: 2.25 })));
  assert.equal(m.apply(ev('r1', 3, 'log', { level: 'info', message: 'x' })), false, 'a log line changes nothing in the tree');
  const r = m.get('r1')!;
  assert.equal(r.state, 'running');
  assert.equal(r.step, 3);
  assert.equal(r.last_loss, 2.25);
  assert.equal(m.activeRun()?.run_id, 'r1');
  assert.ok(m.apply(ev('r1', 4, 'progress', { phase: 'quantize', message: 'Quantizing to 4-bit NF4' })));
  assert.equal(m.get('r1')!.message, 'Quantizing to 4-bit NF4');
  m.apply(ev('r1', 5, 'status', { state: 'completed', adapter_path: '/x/runs/r1/adapter' }));
  assert.equal(m.activeRun(), undefined);
  assert.equal(m.get('r1')!.adapter_path, '/x/runs/r1/adapter');
  m.apply(ev('r1', 6, 'error', { kind: 'oom', message: 'Out of memory.', hint: 'Lower max_seq_len.' }));
  assert.equal(m.get('r1')!.message, 'Out of memory. Lower max_seq_len.');
});

test('an event for an unknown run creates it', () => {
  const m = new RunsModel();
  m.apply(ev('new', 1, 'metrics', { step: 1, loss: 3 }));
  assert.equal(m.get('new')?.step, 1);
});

test('list is newest first', () => {
  const m = new RunsModel();
  m.upsertAll([
    { run_id: 'old', state: 'completed', created: 1 },
    { run_id: 'new', state: 'running', created: 5 },
    { run_id: 'mid', state: 'failed', created: 3 },
  ]);
  assert.deepEqual(m.list().map((r) => r.run_id), ['new', 'mid', 'old']);
});

test('resume is offered only where the backend said resumable, whatever the state', () => {
  // A failed run without a checkpoint: the backend says resumable false, so no Resume action.
  assert.equal(describeRun({ run_id: 'f', state: 'failed', resumable: false }).contextValue, 'run');
  assert.equal(describeRun({ run_id: 's', state: 'stopped', resumable: true, adapter_path: '/p' }).contextValue, 'run run:resumable run:adapter');
  assert.equal(describeRun({ run_id: 'u', state: 'interrupted' }).contextValue, 'run', 'no verdict yet: nothing offered');
  const m = new RunsModel();
  m.upsert({ run_id: 'r', state: 'running', resumable: false });
  m.apply(ev('r', 1, 'status', { state: 'stopped' }));
  assert.equal(m.get('r')!.resumable, undefined, 'a state change voids the old verdict until the backend gives a new one');
  m.upsert({ run_id: 'r', state: 'stopped', resumable: true });
  assert.match(describeRun(m.get('r')!).contextValue, /run:resumable/);
});

test('describeRun sets icons by state', () => {
  const running = describeRun({ run_id: 'a', state: 'running', step: 4, total_steps: 10, last_loss: 1.23456 });
  assert.equal(running.contextValue, 'run run:active');
  assert.equal(running.description, 'running · 4/10 · loss 1.235');
  assert.equal(running.icon, 'sync~spin');
  assert.equal(formatLoss(null), '–');
  assert.ok(isTerminal('interrupted'));
  assert.ok(!isTerminal('saving'));
});

test('status bar shows phase, device and the active run', () => {
  assert.equal(statusBarView({ phase: 'disconnected' }).command, 'qloraStudio.connectBackend');
  assert.match(statusBarView({ phase: 'connecting' }).text, /connecting/);
  const failed = statusBarView({ phase: 'failed' });
  assert.ok(failed.error);
  assert.equal(failed.command, 'qloraStudio.showLogs');
  assert.equal(statusBarView({ phase: 'connected', device: 'H100 80 GiB' }).text, '$(plug) QLoRA: H100 80 GiB');
  const run = statusBarView({ phase: 'connected', run: { run_id: 'r', state: 'running', step: 7, total_steps: 30, last_loss: 0.5 } });
  assert.equal(run.text, '$(pulse) QLoRA: running 7/30 · loss 0.5000');
});

test('deviceLabel reads the hello capabilities', () => {
  const caps = (devices: Capabilities['devices']): Capabilities => ({ devices, python: '3', torch: null, cuda: null, bitsandbytes: null, transformers: null, peft: null });
  assert.equal(deviceLabel(caps([])), 'CPU');
  assert.equal(deviceLabel(caps([{ index: 0, type: 'cpu', name: 'cpu', memory_total_mb: null }])), 'CPU');
  assert.equal(deviceLabel(caps([{ index: 0, type: 'cuda', name: 'NVIDIA H200', memory_total_mb: 143771 }])), 'NVIDIA H200 140 GiB');
  assert.equal(deviceLabel(caps([0, 1].map((index) => ({ index, type: 'cuda' as const, name: 'A100', memory_total_mb: 40960 })))), '2× A100 40 GiB');
});

test('the status bar counts every other active run beside the one it details', () => {
  const v = statusBarView({
    phase: 'connected',
    device: 'CPU',
    run: { run_id: 'a', state: 'running', step: 3, total_steps: 10, last_loss: 1.5 },
    others: [{ run_id: 'b', state: 'queued' }],
  });
  assert.match(v.text, /running 3\/10 .*\(\+1 more\)/);
  assert.match(v.tooltip, /Also queued: b/);
  assert.doesNotMatch(statusBarView({ phase: 'connected', run: { run_id: 'a', state: 'running' } }).text, /more/);
});

test('run rows show a short name and start time; the tooltip keeps the whole id', () => {
  const now = new Date(2026, 10, 29, 21, 0, 0);
  assert.equal(shortRunLabel('tiny-20261129-200446-a1b2', now), 'tiny 20:04:46');
  assert.equal(shortRunLabel('my-run-20261128-200446-a1b2', now), 'my-run 2026-11-28 20:04');
  assert.equal(shortRunLabel('hand-named', now), 'hand-named', 'an id of another shape stays whole');
  const v = describeRun({ run_id: 'tiny-20261129-200446-a1b2', state: 'completed' });
  assert.ok(v.label.length < 'tiny-20261129-200446-a1b2'.length, v.label);
  assert.equal(v.id, 'tiny-20261129-200446-a1b2');
  assert.match(v.tooltip, /^tiny-20261129-200446-a1b2 — completed/);
});

test('runs whose short labels collide get their tag; the others keep the short label', () => {
  const now = new Date(2026, 10, 29, 21, 0, 0);
  const ids = ['tiny-20261129-200446-a1b2', 'tiny-20261129-200446-c3d4', 'tiny-20261129-200447-e5f6',
    'old-20261128-200401-0001', 'old-20261128-200459-0002', 'hand-named'];
  const labels = distinctRunLabels(ids, now);
  assert.deepEqual([...labels.values()], ['tiny 20:04:46 · a1b2', 'tiny 20:04:46 · c3d4', 'tiny 20:04:47',
    'old 2026-11-28 20:04 · 0001', 'old 2026-11-28 20:04 · 0002', 'hand-named']);
  assert.equal(new Set(labels.values()).size, ids.length);
  assert.equal(describeRun({ run_id: ids[0]!, state: 'completed' }, labels.get(ids[0]!)).label, 'tiny 20:04:46 · a1b2');
});

