import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runEventSchema } from '../../src/protocol';
import { MetricStore } from '../../src/views/metricStore';

const ev = (run_id: string, seq: number, type = 'metrics') =>
  runEventSchema.parse({ run_id, seq, type, time: 0, data: type === 'status' ? { state: 'running' } : type === 'eval' ? { step: seq, eval_loss: 1 } : { step: seq, loss: 1 / seq } });

test('keeps only chart events, as delivered', () => {
  const s = new MetricStore();
  assert.ok(s.empty);
  assert.equal(s.add(ev('a', 1, 'status')), undefined);
  assert.ok(s.empty, 'a status event stores nothing');
  assert.deepEqual(s.add(ev('a', 2)), { seq: 2, type: 'metrics', data: { step: 2, loss: 0.5 } });
  assert.ok(s.add(ev('a', 3, 'eval')));
  assert.ok(!s.empty);
});

test('missing returns per run what a view lacks, nothing for a view that is current', () => {
  const s = new MetricStore();
  for (let i = 1; i <= 10; i++) s.add(ev('a', i));
  for (let i = 4; i <= 6; i++) s.add(ev('b', i));
  const all = s.missing({});
  assert.deepEqual(all.map((m) => [m.runId, m.events.length]), [['a', 10], ['b', 3]]);
  const partial = s.missing({ a: 7, b: 6 });
  assert.deepEqual(partial.map((m) => [m.runId, m.events.map((e) => e.seq)]), [['a', [8, 9, 10]]]);
  assert.deepEqual(s.missing({ a: 10, b: 99 }), []);
  assert.deepEqual(s.missing({ a: 5.5 }).find((m) => m.runId === 'a')?.events[0]?.seq, 6);
});
