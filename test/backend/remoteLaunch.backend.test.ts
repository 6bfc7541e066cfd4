/**
 * LocalBackend with a launcher the launch spec builds (the shape of the SSH one): the REAL Python
 * server reached through a proxy that stands in for the ssh tunnel. A cut tunnel makes `alive()`
 * undefined, so the reconnect goes through the one serializer, which reopens it; events reach
 * listeners exactly once across cuts, and a tunnel that cannot reopen is tried again with backoff.
 * A restart uses the launcher's own in-place restart, and a new target key stops this launcher and
 * builds the next one. The SSH tier runs the real tunnel.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalBackend, type BackendLauncher, type LaunchSpec } from '../../src/backend/localBackend';
import { LocalBackendLauncher, type BackendEndpoint } from '../../src/backend/localLauncher';
import type { RunEvent } from '../../src/protocol';
import { CuttableProxy, fakeEngineEnv, killRuns, memoryLogger, python, readLog, until, workDir } from './harness';

/** A server behind a tunnel: the server outlives stop(), like an SSH host's. */
class TunnelledLauncher implements BackendLauncher {
  readonly server: LocalBackendLauncher;
  private tunnel: CuttableProxy | undefined;
  private ep: BackendEndpoint | undefined;
  opened = 0;
  restarts = 0;
  stops = 0;
  /** How many next tunnel openings fail (a host out of reach). */
  unreachable = 0;

  constructor(runsDir: string) {
    this.server = new LocalBackendLauncher({ python, runsDir, env: fakeEngineEnv({ FAKE_ENGINE_STEPS: '200', FAKE_ENGINE_RATE: '60' }) });
  }

  async start(): Promise<BackendEndpoint> {
    const ep = await this.server.start();
    if (!this.tunnel && this.unreachable > 0) {
      this.unreachable--;
      throw new Error('ssh: connect to host test port 22: Connection refused');
    }
    if (!this.tunnel) {
      const tunnel = new CuttableProxy(Number(new URL(ep.url).port));
      await tunnel.listen();
      this.tunnel = tunnel;
      this.opened++;
    }
    this.ep = { ...ep, url: `ws://127.0.0.1:${this.tunnel.port}` };
    return this.ep;
  }

  alive(): BackendEndpoint | undefined {
    return this.tunnel && this.server.alive() ? this.ep : undefined;
  }

  async restart(): Promise<BackendEndpoint> {
    this.restarts++;
    this.cutTunnel();
    await this.server.stop();
    return this.start();
  }

  stop(): Promise<void> {
    this.stops++;
    this.cutTunnel();
    return Promise.resolve();
  }

  /** What a killed ssh forward does: every connection through it drops and it is gone. */
  cutTunnel(): void {
    this.tunnel?.close();
    this.tunnel = undefined;
  }
}

describe('LocalBackend with a launcher from its launch spec', () => {
  const work = workDir();
  const log = memoryLogger();
  const got: RunEvent[] = [];
  const launchers: TunnelledLauncher[] = [];
  let spec: LaunchSpec = {
    kind: 'remote',
    key: 'host-a',
    create: () => {
      const l = new TunnelledLauncher(work.runsDir);
      launchers.push(l);
      return Promise.resolve(l);
    },
  };
  const backend = new LocalBackend({
    launchSpec: () => Promise.resolve(spec),
    logger: log,
    clientName: 'backend-test',
    reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    onEvent: (ev) => got.push(ev),
  });

  after(async () => {
    await backend.dispose();
    for (const l of launchers) await l.server.stop();
    killRuns(work.runsDir);
  });

  test('a cut tunnel is reopened through the serializer; every event once, in order', async () => {
    const first = await backend.connection();
    await first.request('run.start', { recipe_path: work.recipe, run_id: 'through-tunnel' });
    await first.attach('through-tunnel');
    const l = launchers[0]!;
    for (let cut = 1; cut <= 3; cut++) {
      const before = got.length;
      const conn = await backend.connection();
      await until(() => got.length > before + 5, 30_000, `events before cut ${cut}`);
      l.cutTunnel();
      await until(() => backend.phase === 'connected' && l.opened === cut + 1, 30_000, `the tunnel reopened after cut ${cut}`);
      assert.notEqual(await backend.connection(), conn, `cut ${cut}: a new connection replaced the old one`);
      assert.equal(conn.state, 'disconnected', `cut ${cut}: the old connection is not left reconnecting`);
    }
    assert.equal(launchers.length, 1, 'the launcher is kept: the key did not change');
    await until(() => got.some((e) => e.type === 'status' && e.data.state === 'completed'), 90_000, 'completion');
    assert.deepEqual(got, readLog(work.runsDir, 'through-tunnel'), 'every event once, in order, across the cuts');
  });

  test('a tunnel that cannot reopen for a while is tried again with backoff until it does', async () => {
    const l = launchers[0]!;
    const conn = await backend.connection();
    const opened = l.opened;
    l.unreachable = 3;
    l.cutTunnel();
    await until(() => backend.phase === 'connected' && l.opened === opened + 1, 30_000, 'the tunnel reopened after 3 failures');
    assert.equal(l.unreachable, 0, 'every failed opening was retried');
    assert.ok(log.lines.filter((x) => x.includes('trying again in')).length >= 3, 'each failure schedules the next try');
    assert.notEqual(await backend.connection(), conn);
    const { runs } = await (await backend.connection()).request('run.list', {});
    assert.ok(runs.some((r) => r.run_id === 'through-tunnel'), 'the new connection reaches the same server');
  });

  test('a restart uses the launcher\'s in-place restart; a new key stops it and builds the next', async () => {
    const pid = (await backend.connection()).hello.server_pid;
    const next = await backend.restart();
    const l = launchers[0]!;
    assert.equal(l.restarts, 1, 'restarted in place');
    assert.equal(launchers.length, 1, 'no second launcher for a restart');
    assert.notEqual(next.hello.server_pid, pid, 'a fresh server');
    spec = { ...spec, key: 'host-b' };
    await backend.reload();
    assert.equal(launchers.length, 2, 'another target, another launcher');
    assert.equal(l.stops, 1, 'the old launcher was stopped (its server keeps going, like a remote one)');
    assert.ok(l.server.alive(), 'stop() closed only the tunnel');
    assert.equal(backend.phase, 'connected');
  });
});
