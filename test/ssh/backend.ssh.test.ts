/**
 * The SSH backend against a private OpenSSH server on loopback, in one remote folder: bootstrap
 * from nothing and reuse; the tiny run with its inputs synced over ssh, started through the
 * tunnel, the tunnel's ssh process killed 5 times mid-run (the client's events equal the remote
 * events.jsonl: nothing lost, nothing twice); an extension restart that re-attaches; the token in
 * no process list and no log; clear errors for a changed host key and a refused key.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectWebSocket } from '../../src/backend/wsConnection';
import { sshExec } from '../../src/backend/sshRunner';
import type { BackendConnection } from '../../src/backend/connection';
import { RemoteSync } from '../../src/backend/sshSync';
import { PROTOCOL_VERSION, TERMINAL_STATES, type RunEvent } from '../../src/protocol';
import { killRemote, launcher, memoryLogger, processTable, remoteEvents, startSshd, tinyWorkspace, until, type SshFixture } from './harness';

const terminal = (evs: RunEvent[]): boolean => evs.some((e) => e.type === 'status' && (TERMINAL_STATES as readonly string[]).includes(String(e.data['state'])));

describe('SSH backend through a private sshd', () => {
  let fx: SshFixture;
  let home: string;
  let ws: string;
  before(() => {
    fx = startSshd();
    home = mkdtempSync(join(tmpdir(), 'qls-remote-home-'));
    ws = tinyWorkspace(40); // long enough that five cuts land while it trains, short enough for the tier
  });
  after(() => {
    killRemote(home);
    fx?.stop();
    rmSync(home, { recursive: true, force: true });
    rmSync(join(ws, '..'), { recursive: true, force: true });
  });

  it('bootstraps an empty remote folder, starts the server and connects through the tunnel; a second launcher reuses both', async () => {
    const remoteDir = join(home, '.qlora-studio');
    const log = memoryLogger();
    const t0 = Date.now();
    const l1 = launcher(fx, remoteDir, log);
    const ep = await l1.start();
    const conn = await connectWebSocket({ url: ep.url, token: ep.token, reconnect: false });
    const hello = await conn.request('hello', { protocol: PROTOCOL_VERSION, client: 'ssh-test' });
    const firstS = (Date.now() - t0) / 1000;
    assert.equal(hello.protocol, PROTOCOL_VERSION);
    assert.equal(l1.host?.installed, true, 'the first start installs the backend');
    assert.ok(existsSync(join(remoteDir, 'venv/bin/qlora-studio')), 'the venv holds our console script');
    // No GPU here: the report must say so and give the command to fix it.
    assert.ok(l1.host!.report.problems.some((p) => /no CUDA GPU/.test(p.what) && /pip install/.test(p.fix)), JSON.stringify(l1.host!.report));
    conn.dispose();
    await l1.stop();

    const t1 = Date.now();
    const l2 = launcher(fx, remoteDir, log);
    const ep2 = await l2.start();
    const conn2 = await connectWebSocket({ url: ep2.url, token: ep2.token, reconnect: false });
    await conn2.request('run.list', {});
    const againS = (Date.now() - t1) / 1000;
    assert.equal(l2.host?.installed, false, 'an unchanged backend is not installed again');
    assert.equal(l2.lastServe?.reused, true, 'a same-version server is reused');
    assert.equal(ep2.pid, ep.pid);
    // The 5 s target is measured by bench/ssh.ts; here only a bound a loaded shared machine keeps.
    assert.ok(againS < 15, `reconnect to an existing bootstrap took ${againS} s (target <= 5 s, see bench/results/ssh.json)`);
    conn2.dispose();
    await l2.stop();
    assert.ok(!log.lines.some((l) => l.includes(ep.token)), 'the token never reaches the log');
    console.log(`bootstrap ${firstS.toFixed(1)} s, reconnect ${againS.toFixed(1)} s`);
  });

  it('sync sends only what changed and resumes an interrupted upload from the bytes already there', async () => {
    const l = launcher(fx, join(home, '.qlora-studio'));
    await l.start();
    const local = mkdtempSync(join(tmpdir(), 'qls-sync-'));
    try {
      const big = join(local, 'big.bin');
      const small = join(local, 'sub', 'small.txt');
      const data = randomBytes(8 << 20);
      writeFileSync(big, data);
      mkdirSync(join(local, 'sub'));
      writeFileSync(small, 'one');
      const sync = new RemoteSync(fx.target, l.host!);
      const root = sync.remoteRootOf(local);
      // What an upload cut after 3 MB leaves behind: the partial file named by the content hash.
      const sha = createHash('sha256').update(data).digest('hex');
      mkdirSync(root, { recursive: true });
      writeFileSync(join(root, `.big.bin.qls-part-${sha.slice(0, 16)}`), data.subarray(0, 3 << 20));
      const progress: number[] = [];
      const first = await sync.syncFiles(local, [big, small], (p) => progress.push(p.sentBytes));
      assert.equal(first.bytesSent, (8 << 20) - (3 << 20) + 3, 'the big file resumes at 3 MB; the small one is sent whole');
      assert.ok(progress.length > 1 && progress.at(-1) === first.bytesSent, 'progress is reported as bytes go');
      assert.ok(readFileSync(join(root, 'big.bin')).equals(data), 'the resumed file is byte-identical');
      writeFileSync(small, 'two!');
      const second = await sync.syncFiles(local, [big, small]);
      assert.deepEqual([second.uploaded, second.bytesSent], [1, 4], 'only the changed file moves');
      assert.equal(readFileSync(join(root, 'sub/small.txt'), 'utf8'), 'two!');
    } finally {
      rmSync(local, { recursive: true, force: true });
      await l.stop();
    }
  });

  it('syncs, runs through the tunnel, survives 5 killed ssh processes, and re-attaches after an extension restart', async () => {
    const remoteDir = join(home, '.qlora-studio');
    const log = memoryLogger();
    const l1 = launcher(fx, remoteDir, log);
    const ep = await l1.start();
    const conn: BackendConnection = await connectWebSocket({
      url: ep.url,
      token: ep.token,
      logger: log,
      reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
      heartbeatMs: 2000,
      resolveEndpoint: async () => {
        const e = await l1.start();
        return { url: e.url, token: e.token };
      },
    });

    const sync = new RemoteSync(fx.target, l1.host!);
    const first = await sync.syncRecipe(join(ws, 'ssh.qlora.yaml'));
    assert.ok(first.uploaded >= 4, `recipe, data and model files are sent (${first.uploaded})`);
    const again = await sync.syncRecipe(join(ws, 'ssh.qlora.yaml'));
    assert.equal(again.bytesSent, 0, 'an unchanged workspace moves no data');

    const { issues } = await conn.request('recipe.validate', { path: first.remoteRecipe });
    assert.deepEqual(issues, []);
    const info = await conn.request('run.start', { recipe_path: first.remoteRecipe });
    const got: RunEvent[] = [];
    conn.onRunEvent((e) => got.push(e));
    await conn.attach(info.run_id, 0);

    const states: string[] = [];
    conn.onStateChange((s) => states.push(s));
    for (let cut = 1; cut <= 5; cut++) {
      const before = got.length;
      await until(() => got.length > before || terminal(got), 120_000, `events before cut ${cut}`);
      assert.ok(!terminal(got), `the run must still be going at cut ${cut} (it finished too early to test)`);
      const pid = l1.forwardPid;
      assert.ok(pid, 'a tunnel is open');
      process.kill(pid, 'SIGKILL');
      await until(() => conn.state !== 'connected', 10_000, `the connection to notice cut ${cut}`);
      await until(() => conn.state === 'connected', 30_000, `reconnect after cut ${cut}`);
      assert.notEqual(l1.forwardPid, pid, 'a new ssh process carries the tunnel');
      console.log(`cut ${cut}: ssh pid ${pid} killed at ${got.length} events; reconnected`);
    }
    // The backend owns the run folder (next to the synced recipe); the server's own home is runs/.
    const runDir = info.run_dir;
    const serverHome = join(remoteDir, 'runs');
    await until(() => terminal(got), 300_000, 'the run to finish').catch((e: Error) => {
      throw new Error(`${e.message}: the client holds ${got.length} events (last seq ${got.at(-1)?.seq}), the remote log ${remoteEvents(runDir).length}; state ${conn.state}`);
    });
    assert.ok(states.filter((s) => s === 'disconnected').length >= 5, `every cut was seen: ${states.join(',')}`);
    const truth = remoteEvents(runDir);
    assert.ok(runDir.startsWith(remoteDir), `the run lives in the remote folder: ${runDir}`);
    assert.equal(truth.at(-1)?.data['state'], 'completed', JSON.stringify(truth.at(-1)));
    assert.deepEqual(got.map((e) => e.seq), truth.map((e) => e.seq), '0 lost, 0 duplicated');
    assert.deepEqual(got, truth);
    conn.dispose();
    await l1.stop();

    // The editor restarts: a new launcher finds the running server and replays the whole run.
    const l2 = launcher(fx, remoteDir, log);
    const ep2 = await l2.start();
    assert.equal(l2.lastServe?.reused, true);
    const conn2 = await connectWebSocket({ url: ep2.url, token: ep2.token, reconnect: false });
    const { runs } = await conn2.request('run.list', {});
    assert.ok(runs.some((r) => r.run_id === info.run_id && r.state === 'completed'));
    const replay: RunEvent[] = [];
    conn2.onRunEvent((e) => replay.push(e));
    await conn2.attach(info.run_id, 0);
    await until(() => replay.length === truth.length, 30_000, 'the replay');
    assert.deepEqual(replay, truth);

    // The token: not in any process's command line, not in our log, not in the server's log.
    const ps = processTable();
    assert.ok(!ps.includes(ep2.token), 'the token is not in ps output');
    assert.ok(!log.lines.some((l) => l.includes(ep2.token)), 'the token is not in the client log');
    assert.ok(!readFileSync(join(serverHome, '.server/server.log'), 'utf8').includes(ep2.token), 'the token is not in the server log');

    // The adapter comes back to this side over ssh.
    const adapter = runs.find((r) => r.run_id === info.run_id)?.adapter_path;
    assert.ok(adapter, `run.list names the adapter of ${info.run_id}`);
    const back = mkdtempSync(join(tmpdir(), 'qls-adapter-back-'));
    try {
      const got = await new RemoteSync(fx.target, l2.host!).download(adapter, back);
      assert.ok(existsSync(join(got.dir, 'adapter_config.json')), `downloaded ${got.dir} holds adapter_config.json`);
      assert.ok(got.bytes > 0);
    } finally {
      rmSync(back, { recursive: true, force: true });
    }
    conn2.dispose();
    await l2.stop();
  });

  it('a changed host key is refused with a message that says how to fix it', async () => {
    const cfg = join(fx.dir, 'ssh_config_badhost');
    const kh = join(fx.dir, 'known_hosts_bad');
    // A known_hosts entry with another key for the same host and port: ssh must refuse.
    const other = join(fx.dir, 'other_host_key');
    const { execFileSync } = await import('node:child_process');
    if (!existsSync(other)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const port = readFileSync(join(fx.dir, 'port'), 'utf8').trim();
    writeFileSync(kh, `[127.0.0.1]:${port} ${readFileSync(`${other}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
    writeFileSync(cfg, readFileSync(fx.target.configFile!, 'utf8').replace(/UserKnownHostsFile .*/, `UserKnownHostsFile ${kh}`));
    await assert.rejects(sshExec({ ...fx.target, configFile: cfg }, 'true'), (e: Error) => {
      assert.match(e.message, /host key of qls-loopback does not match/);
      assert.match(e.message, /ssh-keygen -R/);
      return true;
    });
  });

  it('a key the server does not accept is refused with a message that says how to fix it', async () => {
    const cfg = join(fx.dir, 'ssh_config_badkey');
    const key = join(fx.dir, 'stranger_key');
    const { execFileSync } = await import('node:child_process');
    if (!existsSync(key)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    writeFileSync(cfg, readFileSync(fx.target.configFile!, 'utf8').replace(/IdentityFile .*/, `IdentityFile ${key}`));
    const l = launcher({ ...fx, target: { ...fx.target, configFile: cfg } }, join(home, 'never'));
    await assert.rejects(l.start(), (e: Error) => {
      assert.match(e.message, /qls-loopback refused our key/);
      assert.match(e.message, /never asks for passwords/);
      return true;
    });
  });
});
