/**
 * The loading notification's logic (src/runs/loadingProgress.ts): opened by `loading` or a
 * progress phase, updated with download bytes, closed when the run trains or ends, and never
 * opened by a replay of a run that loaded long ago.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runEventSchema, type RunEvent } from '../../src/protocol';
import { LoadingTracker, STALE_AFTER_S, formatAmount } from '../../src/runs/loadingProgress';
import { hfTokenProblem } from '../../src/secrets';

const NOW = 1_800_000_000;
const ev = (seq: number, type: string, data: Record<string, unknown>, time = NOW): RunEvent => runEventSchema.parse({ run_id: 'r', seq, type, time, data });

test('a run that loads opens a notification, follows download bytes and quantizing, and closes when it trains', () => {
  const t = new LoadingTracker(() => NOW);
  assert.deepEqual(t.apply(ev(1, 'status', { state: 'queued' })), undefined);
  assert.deepEqual(t.apply(ev(2, 'status', { state: 'loading' })), { kind: 'open', runId: 'r', message: 'Loading the model…', percent: undefined });
  const dl = t.apply(ev(3, 'progress', { phase: 'model_download', message: 'Downloading model.safetensors', done: 1.5e9, total: 6e9, unit: 'bytes' }));
  assert.deepEqual(dl, { kind: 'update', runId: 'r', message: 'Downloading model.safetensors — 1.5 of 6.0 GB (25%)', percent: 25 });
  const unknownSize = t.apply(ev(4, 'progress', { phase: 'dataset_download', message: 'Downloading train.jsonl', done: 2.5e6, total: null, unit: 'bytes' }));
  assert.equal(unknownSize?.kind === 'update' && unknownSize.message, 'Downloading train.jsonl — 2.5 MB');
  assert.equal(unknownSize?.kind === 'update' && unknownSize.percent, undefined);
  const q = t.apply(ev(5, 'progress', { phase: 'quantize', message: '' }));
  assert.equal(q?.kind === 'update' && q.message, 'Quantizing to 4 bits');
  assert.deepEqual(t.apply(ev(6, 'status', { state: 'running' })), { kind: 'close', runId: 'r' });
  assert.equal(t.apply(ev(7, 'metrics', { step: 1 })), undefined);
});

test('a run that fails while loading closes its notification; a progress event alone opens one', () => {
  const t = new LoadingTracker(() => NOW);
  assert.equal(t.apply(ev(1, 'progress', { phase: 'model_load', message: 'Loading weights' }))?.kind, 'open');
  assert.deepEqual(t.apply(ev(2, 'status', { state: 'failed', reason: 'oom' })), { kind: 'close', runId: 'r' });
  assert.equal(t.apply(ev(3, 'status', { state: 'failed' })), undefined, 'nothing left to close');
});

test('a replay of a run that loaded long ago opens nothing', () => {
  const t = new LoadingTracker(() => NOW);
  const old = NOW - STALE_AFTER_S - 1;
  assert.equal(t.apply(ev(1, 'status', { state: 'loading' }, old)), undefined);
  assert.equal(t.apply(ev(2, 'progress', { phase: 'quantize', message: 'q' }, old)), undefined);
  assert.equal(t.apply(ev(3, 'status', { state: 'running' }, old)), undefined);
});

test('amounts read naturally', () => {
  assert.equal(formatAmount(3, 7, 'files'), '3 of 7 files (43%)');
  assert.equal(formatAmount(512e3, undefined, 'bytes'), '512.0 kB');
  assert.equal(formatAmount(5, undefined, undefined), '5 steps');
});

test('a Hugging Face token is checked for shape before it is stored', () => {
  assert.equal(hfTokenProblem('hf_abcdefghijklmnopqrstuvwxyz012345'), undefined);
  assert.match(hfTokenProblem('') ?? '', /huggingface\.co\/settings\/tokens/);
  assert.match(hfTokenProblem('hf_abc def') ?? '', /one word/);
});
