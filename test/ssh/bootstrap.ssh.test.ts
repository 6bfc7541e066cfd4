/**
 * Bootstrap from nothing over real OpenSSH, reuse of the install and of the running server, and
 * the clear errors of a host key mismatch and a refused key.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectWebSocket } from '../../src/backend/wsConnection';
import { sshExec } from '../../src/backend/sshRunner';
import { PROTOCOL_VERSION } from '../../src/protocol';
import { killRemote, launcher, memoryLogger, startSshd, type SshFixture } from './harness';

describe('SSH backend: bootstrap and connect through a private sshd', () => {
  let fx: SshFixture;
  let home: string;
  before(() => {
    fx = startSshd();
    home = mkdtempSync(join(tmpdir(), 'qls-remote-home-'));
  });
  after(() => {
    killRemote(home);
    fx?.stop();
    rmSync(home, { recursive: true, force: true });
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
    assert.ok(againS < 5, `reconnect to an existing bootstrap took ${againS} s (target <= 5 s)`);
    conn2.dispose();
    await l2.stop();
    assert.ok(!log.lines.some((l) => l.includes(ep.token)), 'the token never reaches the log');
    console.log(`bootstrap ${firstS.toFixed(1)} s, reconnect ${againS.toFixed(1)} s`);
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
    void copyFileSync;
  });
});
