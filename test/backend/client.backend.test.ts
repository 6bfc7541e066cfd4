/**
 * The TypeScript client against the REAL Python server (started through LocalBackendLauncher in a
 * temp runs dir; no mock server). Runs use the fake engine (a test double of the training process)
 * so the protocol paths are fast; test/backend/engine.backend.test.ts uses the real engine.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { BackendError, type ConnectionState } from '../../src/backend/connection';
import { LocalBackendLauncher, type BackendEndpoint } from '../../src/backend/localLauncher';
import { connectWebSocket } from '../../src/backend/wsConnection';
import { PROTOCOL_VERSION, errorFrameSchema, type RunEvent } from '../../src/protocol';
import { CuttableProxy, killRuns, fakeEngineEnv, memoryLogger, python, readLog, until, workDir } from './harness';

describe('backend client against the real server', () => {
  const work = workDir();
  const log = memoryLogger();
  const launcher = new LocalBackendLauncher({
    python,
    runsDir: work.runsDir,
    env: fakeEngineEnv({ FAKE_ENGINE_STEPS: '300', FAKE_ENGINE_RATE: '100', FAKE_ENGINE_LOGS_PER_STEP: '1' }),
    logger: log,
  });
  let ep: BackendEndpoint;

  before(async () => {
    ep = await launcher.start();
  });
  after(async () => {
    await launcher.stop();
    killRuns(work.runsDir);
  });

  test('hello: versions and capabilities', async () => {
    const conn = await connectWebSocket({ url: ep.url, token: ep.token, reconnect: false });
    try {
      assert.equal(conn.state, 'connected');
      const hello = await conn.request('hello', { protocol: PROTOCOL_VERSION, client: 'test' });
      assert.equal(hello.protocol, PROTOCOL_VERSION);
      assert.equal(hello.server_pid, ep.pid);
      assert.deepEqual(conn.hello, hello, 'the connection keeps its own hello answer: nobody needs to ask twice');
      assert.ok(hello.capabilities.devices.length >= 1 && hello.capabilities.torch);
      assert.deepEqual(await conn.request('run.list', {}), { runs: [] });
    } finally {
      conn.dispose();
    }
  });

  test('missing or wrong token and a browser Origin are refused, every time', async () => {
    for (let i = 0; i < 3; i++) {
      await assert.rejects(connectWebSocket({ url: ep.url, token: 'wrong', reconnect: false }), (e: unknown) => {
        assert.ok(e instanceof BackendError && e.code === 'unauthorized' && /token/.test(e.message), String(e));
        return true;
      });
      await assert.rejects(connectWebSocket({ url: ep.url, token: '', reconnect: false }), /HTTP 401/);
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(ep.url, { headers: { Authorization: `Bearer ${ep.token}` }, origin: 'http://localhost:8080' });
        ws.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(101));
        ws.on('error', () => undefined);
      });
      assert.equal(status, 403);
    }
  });

  test('a protocol version mismatch is refused with a message naming the side to update', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(ep.url, { headers: { Authorization: `Bearer ${ep.token}` } });
      ws.on('open', () => ws.send(JSON.stringify({ id: 1, method: 'hello', params: { protocol: PROTOCOL_VERSION + 1, client: 'future' } })));
      ws.on('message', (d) => {
        resolve(d.toString());
        ws.close();
      });
      ws.on('error', reject);
    });
    const frame = errorFrameSchema.parse(JSON.parse(reply));
    assert.equal(frame.error.code, 'version_mismatch');
    assert.match(frame.error.message, /update it with `pip install -U qlora-studio`/);
  });

  test('bad requests: local param check, errors with codes, aborts', async () => {
    const conn = await connectWebSocket({ url: ep.url, token: ep.token, reconnect: false });
    try {
      await assert.rejects(conn.request('run.attach', { run_id: 'nope', after_seq: 0 }), (e: unknown) => e instanceof BackendError && e.code === 'not_found');
      // @ts-expect-error a wrong param type is caught before it leaves the client
      await assert.rejects(conn.request('run.stop', { run_id: 5 }), (e: unknown) => e instanceof BackendError && e.code === 'invalid_params');
      // A missing recipe inside the folders the server serves (one outside them is refused before that).
      await assert.rejects(conn.request('run.start', { recipe_path: join(work.runsDir, 'no-such.qlora.yaml') }), /does not exist/);
      const ac = new AbortController();
      const p = conn.request('run.list', {}, { signal: ac.signal });
      ac.abort();
      await assert.rejects(p, (e: unknown) => e instanceof BackendError && e.code === 'cancelled');
      assert.ok(Array.isArray((await conn.request('run.list', {})).runs)); // still usable
    } finally {
      conn.dispose();
    }
  });

  test('a stalled link: requests time out, the heartbeat drops the socket, the client reconnects', async () => {
    const proxy = new CuttableProxy(Number(new URL(ep.url).port));
    await proxy.listen();
    const conn = await connectWebSocket({ url: `ws://127.0.0.1:${proxy.port}`, token: ep.token, heartbeatMs: 300, reconnect: { initialDelayMs: 20 } });
    const states: ConnectionState[] = [];
    conn.onStateChange((s) => states.push(s));
    try {
      proxy.stalled = true;
      await assert.rejects(conn.request('run.list', {}, { timeoutMs: 200 }), (e: unknown) => e instanceof BackendError && e.code === 'timeout');
      await until(() => states.includes('disconnected'), 5000, 'the heartbeat to drop the stalled socket');
      proxy.stalled = false;
      await until(() => conn.state === 'connected', 5000, 'reconnect');
      assert.ok(Array.isArray((await conn.request('run.list', {})).runs));
    } finally {
      conn.dispose();
      proxy.close();
    }
  });

  test('connection cut 20 times during a run: events equal events.jsonl, 0 lost, 0 duplicated', async () => {
    const proxy = new CuttableProxy(Number(new URL(ep.url).port));
    await proxy.listen();
    const conn = await connectWebSocket({
      url: `ws://127.0.0.1:${proxy.port}`,
      token: ep.token,
      logger: log,
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    });
    const got: RunEvent[] = [];
    const states: ConnectionState[] = [];
    conn.onRunEvent((ev) => got.push(ev));
    conn.onStateChange((s) => states.push(s));
    try {
      const info = await conn.request('run.start', { recipe_path: work.recipe, run_id: 'cut20' });
      assert.equal(info.run_id, 'cut20');
      await conn.attach('cut20', 0);
      let cuts = 0;
      while (cuts < 20) {
        await until(() => conn.state === 'connected', 10_000, 'reconnect');
        const before = got.length;
        await until(() => got.length > before, 10_000, 'events after re-attach');
        const drops = states.filter((s) => s === 'disconnected').length;
        if (proxy.cut() > 0) cuts++;
        await until(() => states.filter((s) => s === 'disconnected').length > drops, 10_000, 'the client to notice the cut');
      }
      await until(() => got.some((e) => e.type === 'status' && e.data.state === 'completed'), 60_000, 'run completion');
      const file = readLog(work.runsDir, 'cut20');
      assert.deepEqual(got.map((e) => e.seq), file.map((_, i) => i + 1));
      assert.deepEqual(got, file);
      assert.equal(states.filter((s) => s === 'connected').length, 20, states.join(',')); // 20 reconnects
    } finally {
      conn.dispose();
      proxy.close();
    }
  });

  test('an event whose data this client cannot read uses up its seq and never stalls the stream', async () => {
    const conn = await connectWebSocket({ url: ep.url, token: ep.token, reconnect: false, logger: log });
    try {
      await conn.request('run.start', { recipe_path: work.recipe, run_id: 'odd-event' });
      const done = async () => (await conn.request('run.list', {})).runs.find((r) => r.run_id === 'odd-event')?.state === 'completed';
      for (let i = 0; i < 300 && !(await done()); i++) await new Promise((r) => setTimeout(r, 100));
      const file = join(work.runsDir, 'odd-event', 'events.jsonl');
      const last = readLog(work.runsDir, 'odd-event').length;
      // What a newer engine might write: a metrics event without the step this client needs, then a normal line.
      appendFileSync(file, JSON.stringify({ run_id: 'odd-event', seq: last + 1, type: 'metrics', time: 1, data: { loss: 1 } }) + '\n');
      appendFileSync(file, JSON.stringify({ run_id: 'odd-event', seq: last + 2, type: 'log', time: 1, data: { level: 'info', message: 'after' } }) + '\n');
      const got: number[] = [];
      conn.onRunEvent((ev) => got.push(ev.seq));
      await conn.attach('odd-event', 0);
      await until(() => got.includes(last + 2), 10_000, 'the event after the unreadable one');
      assert.deepEqual(got, [...Array.from({ length: last }, (_, i) => i + 1), last + 2]);
      assert.ok(log.lines.some((l) => l.includes(`skipped metrics event ${last + 1}`)), 'the skipped event is logged');
    } finally {
      conn.dispose();
    }
  });
});

