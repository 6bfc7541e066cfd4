import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunsModel, describeRun, formatLoss, isTerminal } from '../../src/views/runsModel';
import { deviceLabel, statusBarView } from '../../src/views/statusBarText';

const ev = (run_id: string, seq: number, type: string, data: Record<string, unknown>) => ({ run_id, seq, type, data });

test('events update step, loss and state; replays are ignored', () => {
  const m = new RunsModel();
  m.upsertAll([{ run_id: 'r1', state: 'queued', step: 0, total_steps: 20, last_loss: null, created: 10 }]);
  assert.ok(m.apply(ev('r1', 1, 'status', { state: 'running' })));
  assert.ok(m.apply(ev('r1', 2, 'metrics', { step: 3, total_steps: 20, loss: 2.25 })));
  assert.equal(m.apply(ev('r1', 2, 'metrics', { step: 99, loss: 0 })), false);
  const r = m.get('r1')!;
  assert.equal(r.state, 'running');
  assert.equal(r.step, 3);
  assert.equal(r.last_loss, 2.25);
  assert.equal(m.activeRun()?.run_id, 'r1');
  m.apply(ev('r1', 3, 'status', { state: 'completed', adapter_path: '/x/runs/r1/adapter' }));
  assert.equal(m.activeRun(), undefined);
  assert.equal(m.get('r1')!.adapter_path, '/x/runs/r1/adapter');
});

test('an event for an unknown run creates it; a later run.list keeps the event-derived seq', () => {
  const m = new RunsModel();
  m.apply(ev('new', 1, 'metrics', { step: 1, loss: 3 }));
  m.upsert({ run_id: 'new', state: 'running', step: 1 });
  assert.equal(m.apply(ev('new', 1, 'metrics', { step: 1, loss: 3 })), false);
});

test('list is newest first', () => {
  const m = new RunsModel();
  m.upsertAll([
    { run_id: 'old', state: 'completed', created: 1 },
    { run_id: 'new', state: 'running', created: 5 },
    { run_id: 'mid', state: 'failed', created: '1970-01-01T00:00:03Z' },
  ]);
  assert.deepEqual(m.list().map((r) => r.run_id), ['new', 'mid', 'old']);
});

test('describeRun sets context capabilities and icons by state', () => {
  const running = describeRun({ run_id: 'a', state: 'running', step: 4, total_steps: 10, last_loss: 1.23456 });
  assert.equal(running.contextValue, 'run run:active');
  assert.equal(running.description, 'running · 4/10 · loss 1.235');
  assert.equal(running.icon, 'sync~spin');
  const stopped = describeRun({ run_id: 'b', state: 'stopped', adapter_path: '/p' });
  assert.equal(stopped.contextValue, 'run run:resumable run:adapter');
  assert.equal(describeRun({ run_id: 'c', state: 'weird' }).icon, 'circle-outline');
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
  assert.equal(deviceLabel(undefined), 'CPU');
  assert.equal(deviceLabel({ devices: [{ index: 0, type: 'cpu', name: 'cpu', memory_total_mb: null }] }), 'CPU');
  assert.equal(deviceLabel({ devices: [{ index: 0, type: 'cuda', name: 'NVIDIA H200', memory_total_mb: 143771 }] }), 'NVIDIA H200 140 GiB');
  assert.equal(
    deviceLabel({ devices: [0, 1].map((index) => ({ index, type: 'cuda', name: 'A100', memory_total_mb: 40960 })) }),
    '2× A100 40 GiB',
  );
});
