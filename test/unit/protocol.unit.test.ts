/**
 * Golden frames (test/fixtures/protocol/{valid,invalid}) get the verdict their folder names from
 * zod; python-backend/tests/test_protocol.py checks the same files against the generated JSON Schema.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { z } from 'zod';
import {
  ERROR_CODES,
  METHOD_NAMES,
  PROTOCOL_VERSION,
  isMethodName,
  methods,
  requestFrameSchema,
  runEventSchema,
  serverFrameSchema,
  runEventEnvelopeSchema,
} from '../../src/protocol';
import { RunWatches } from '../../src/backend/runWatches';
import { parseReadyLine, wsUrl } from '../../src/backend/readyLine';

const dir = resolve(__dirname, '../fixtures/protocol');

interface Golden {
  kind: 'request' | 'server' | 'event' | 'result' | 'partial';
  method?: string;
  frame: unknown;
}

function schemaFor(g: Golden): z.ZodType {
  switch (g.kind) {
    case 'request':
      return requestFrameSchema;
    case 'server':
      return serverFrameSchema;
    case 'event':
      return runEventSchema;
    case 'result':
    case 'partial': {
      assert.ok(g.method && isMethodName(g.method), `fixture names an unknown method ${g.method}`);
      return methods[g.method][g.kind];
    }
    default: {
      const never: never = g.kind;
      throw new Error(`unknown fixture kind ${String(never)}`);
    }
  }
}

for (const verdict of ['valid', 'invalid'] as const) {
  const files = readdirSync(join(dir, verdict)).filter((f) => f.endsWith('.json'));
  test(`${verdict} golden frames exist`, () => assert.ok(files.length >= 20, `only ${files.length} files`));
  for (const file of files) {
    test(`${verdict}/${file}`, () => {
      const g = JSON.parse(readFileSync(join(dir, verdict, file), 'utf8')) as Golden;
      const r = schemaFor(g).safeParse(g.frame);
      assert.equal(r.success, verdict === 'valid', r.success ? 'accepted' : r.error.message);
    });
  }
}

test('protocol constants are the ones Python mirrors in the generated schema', () => {
  const gen = JSON.parse(readFileSync(resolve(__dirname, '../../python-backend/src/qlora_studio/server/protocol.schema.json'), 'utf8'));
  assert.equal(gen.properties.protocol_version.const, PROTOCOL_VERSION);
  assert.deepEqual(gen.properties.error_codes.enum, [...ERROR_CODES]);
  assert.deepEqual(Object.keys(gen.properties.methods.properties), METHOD_NAMES);
});

test('request params get their defaults filled by zod', () => {
  const r = requestFrameSchema.parse({ id: 1, method: 'run.attach', params: { run_id: 'a' } });
  assert.deepEqual(r.params, { run_id: 'a', after_seq: 0 });
});

test('events are typed by their type: known shapes parsed, a wrong shape refused while its envelope still reads', () => {
  const ok = runEventSchema.parse({ run_id: 'a', seq: 1, type: 'metrics', time: 1, data: { step: 3, loss: 1.5 } });
  assert.equal(ok.type === 'metrics' && ok.data.loss, 1.5);
  const bad = { run_id: 'a', seq: 2, type: 'status', time: 1, data: { state: 'dancing' } };
  assert.equal(runEventSchema.safeParse(bad).success, false);
  assert.equal(runEventEnvelopeSchema.safeParse(bad).success, true);
  const progress = runEventSchema.parse({ run_id: 'a', seq: 3, type: 'progress', time: 1, data: { phase: 'model_download', message: 'm', done: 5, total: null, unit: 'bytes' } });
  assert.equal(progress.type === 'progress' && progress.data.done, 5);
});

test('run watches deliver each seq once and flag gaps', () => {
  const w = new RunWatches();
  const ev = (seq: number) => ({ run_id: 'r', seq });
  assert.equal(w.accept(ev(1)), 'unwatched');
  assert.equal(w.watch('r'), 0);
  assert.deepEqual([1, 2, 2, 1, 4, 3, 4].map((s) => w.accept(ev(s))), ['deliver', 'deliver', 'duplicate', 'duplicate', 'gap', 'deliver', 'deliver']);
  assert.equal(w.watch('r'), 4); // re-attach after the last delivered seq
  w.unwatch('r');
  assert.equal(w.has('r'), false);
});

test('ready line parsing', () => {
  assert.equal(parseReadyLine('hello'), undefined);
  const info = parseReadyLine('QLORA_STUDIO_READY {"port":5,"pid":9,"host":"127.0.0.1","token_file":"/t","protocol":1}');
  assert.equal(info && wsUrl(info), 'ws://127.0.0.1:5');
  assert.throws(() => parseReadyLine('QLORA_STUDIO_READY {"port":"x"}'));
  assert.equal(wsUrl({ host: '::1', port: 7 }), 'ws://[::1]:7');
});
