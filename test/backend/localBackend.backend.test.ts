/**
 * LocalBackend against the REAL Python server: it is the one owner of the server process. Every
 * start and restart goes through its one serializer (a burst of restarts folds into one), a
 * server that dies is replaced by it (the connection never starts one behind its back), run events
 * reach listeners exactly once across server restarts, and the Hugging Face token reaches the
 * server's environment and nothing else.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LocalBackend } from '../../src/backend/localBackend';
import type { RunEvent } from '../../src/protocol';
import type { BackendPhase } from '../../src/runs/backendState';
import { fakeEngineEnv, killRuns, memoryLogger, python, readLog, until, workDir } from './harness';

const TOKEN = 'hf_backendTestSecret0123456789';

describe('LocalBackend owns the server', () => {
  const work = workDir();
  const log = memoryLogger();
  const got: RunEvent[] = [];
  const phases: BackendPhase[] = [];
  const backend = new LocalBackend({
    launchSpec: async () => ({
      python,
      runsDir: work.runsDir,
      env: fakeEngineEnv({ HF_TOKEN: TOKEN, FAKE_ENGINE_STEPS: '300', FAKE_ENGINE_RATE: '100' }),
      key: 'one',
    }),
    logger: log,
    clientName: 'backend-test',
    reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    onEvent: (ev) => got.push(ev),
    onPhase: (p) => phases.push(p),
  });
  const starts = (): number => log.lines.filter((l) => l.startsWith('info starting backend')).length;

  after(async () => {
    await backend.dispose();
    killRuns(work.runsDir);
  });

  test('restarts fold into one; the run streams exactly once across servers', async () => {
    const first = await backend.connection();
    assert.equal(starts(), 1);
    const oldPid = first.hello.server_pid;
    await first.request('run.start', { recipe_path: work.recipe, run_id: 'across-restart' });
    await first.attach('across-restart');
    await until(() => got.length > 20, 20_000, 'first events');
    const conns = await Promise.all([backend.restart(), backend.restart(), backend.restart()]);
    assert.equal(conns[1], conns[2], 'restarts asked during a restart fold into one');
    assert.equal(starts(), 3, 'initial start + one restart + one folded restart');
    const now = conns[2]!;
    assert.notEqual(now.hello.server_pid, oldPid);
    assert.throws(() => process.kill(oldPid, 0), 'the old server is gone');
    assert.equal(first.state, 'disconnected', 'the old connection was replaced, not left reconnecting');
    await until(() => got.some((e) => e.type === 'status' && e.data.state === 'completed'), 60_000, 'completion');
    assert.deepEqual(got, readLog(work.runsDir, 'across-restart'), 'every event once, in order, across three servers');
  });

  test('a server that dies is replaced by its owner, through the same serializer', async () => {
    const conn = await backend.connection();
    const pid = conn.hello.server_pid;
    const before = starts();
    phases.length = 0;
    process.kill(pid, 'SIGKILL');
    await until(() => starts() === before + 1 && backend.phase === 'connected', 30_000, 'a new server');
    const next = await backend.connection();
    assert.notEqual(next, conn, 'a new connection to the new server');
    assert.notEqual(next.hello.server_pid, pid);
    assert.equal(conn.state, 'disconnected');
    assert.deepEqual(phases.slice(-2), ['connecting', 'connected']);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(starts(), before + 1, 'exactly one new server, started once');
  });

  test('the Hugging Face token is in the server environment, never in logs or files', async () => {
    const pid = (await backend.connection()).hello.server_pid;
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    assert.ok(environ.includes(`HF_TOKEN=${TOKEN}`), 'the server got HF_TOKEN');
    assert.ok(!log.lines.some((l) => l.includes(TOKEN)), 'no log line carries the token');
    for (const file of filesUnder(work.dir)) assert.ok(!readFileSync(file, 'latin1').includes(TOKEN), `${file} carries the token`);
  });
});

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}
