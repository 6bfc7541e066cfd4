/**
 * SSH backend benchmark over a private loopback sshd (test/ssh/sshd.sh): `bootstrap_s` from an
 * empty remote folder to a connected backend, `reconnect_s` to an existing bootstrap, and
 * `sync_mb_per_s` for a dataset file sent over ssh (then a second sync of the unchanged file,
 * which must move no data). Writes bench/results/ssh.{json,md}.
 *
 *   npx tsx bench/ssh.ts [--mb 500]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, writeSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { RemoteSync } from '../src/backend/sshSync';
import { connectWebSocket } from '../src/backend/wsConnection';
import { PROTOCOL_VERSION } from '../src/protocol';
import { killRemote, launcher, startSshd } from '../test/ssh/harness';

const mbArg = process.argv.indexOf('--mb');
const MB = mbArg > 0 ? Number(process.argv[mbArg + 1]) : 500;

async function connected(l: ReturnType<typeof launcher>): Promise<number> {
  const t0 = Date.now();
  const ep = await l.start();
  const conn = await connectWebSocket({ url: ep.url, token: ep.token, reconnect: false });
  await conn.request('hello', { protocol: PROTOCOL_VERSION, client: 'bench' });
  conn.dispose();
  await l.stop();
  return (Date.now() - t0) / 1000;
}

async function main(): Promise<void> {
  const load0 = loadavg()[0]!;
  const fx = startSshd();
  const home = mkdtempSync(join(tmpdir(), 'qls-bench-home-'));
  const local = mkdtempSync(join(tmpdir(), 'qls-bench-data-'));
  try {
    const remoteDir = join(home, '.qlora-studio');
    launcher(fx, remoteDir); // builds the wheel before the clock starts
    const bootstrapS = await connected(launcher(fx, remoteDir));
    const reconnectS = await connected(launcher(fx, remoteDir));

    // A dataset-like file of MB megabytes (JSONL rows, so compression would not flatter it: ssh does not compress by default).
    const file = join(local, 'train.jsonl');
    const fd = openSync(file, 'w');
    const row = (i: number) => `{"messages":[{"role":"user","content":"question ${i} ${Math.random().toString(36).repeat(8)}"},{"role":"assistant","content":"answer ${i} ${Math.random().toString(36).repeat(12)}"}]}\n`;
    let block = '';
    for (let i = 0; block.length < 1 << 20; i++) block += row(i);
    const buf = Buffer.from(block.slice(0, 1 << 20));
    for (let i = 0; i < MB; i++) writeSync(fd, buf);
    closeSync(fd);
    const l = launcher(fx, remoteDir);
    await l.start();
    const sync = new RemoteSync(fx.target, l.host!);
    const first = await sync.syncFiles(local, [file]);
    const second = await sync.syncFiles(local, [file]);
    await l.stop();
    const result = {
      bootstrap_s: round(bootstrapS),
      reconnect_s: round(reconnectS),
      sync_mb_per_s: round(first.bytesSent / 1e6 / first.seconds),
      sync: { file_mb: MB, bytes_sent: first.bytesSent, seconds: round(first.seconds), note: 'includes hashing the file on both sides' },
      second_sync: { bytes_sent: second.bytesSent, seconds: round(second.seconds) },
      targets: { bootstrap_s: 120, reconnect_s: 5, sync_mb_per_s: 50, second_sync_bytes: 0 },
      method:
        'Private OpenSSH server on 127.0.0.1 (test/ssh/sshd.sh), the system ssh client. bootstrap_s: empty remote folder -> venv created, the ' +
        'backend wheel sent over ssh and pip-installed, torch/CUDA/bitsandbytes checked, server started detached, port forward open, hello answered. ' +
        'The venv reuses the repo venv packages (basePython), so torch is not downloaded; on a fresh GPU host installing torch adds its download time. ' +
        'reconnect_s: a new launcher against that bootstrap (one probe, server reused, new forward). sync: one file through `ssh host helper put` (stdin), content-hashed.',
      command: `npx tsx bench/ssh.ts --mb ${MB}`,
      date: new Date().toISOString(),
      machine: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${process.platform}`,
      load_avg_1m: { start: round(load0), end: round(loadavg()[0]!) },
      versions: { node: process.versions.node, openssh: sshVersion() },
    };
    const out = resolve(__dirname, 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'ssh.json'), JSON.stringify(result, null, 2) + '\n');
    writeFileSync(join(out, 'ssh.md'), markdown(result));
    console.log(JSON.stringify(result, null, 2));
  } finally {
    killRemote(home);
    fx.stop();
    rmSync(home, { recursive: true, force: true });
    rmSync(local, { recursive: true, force: true });
  }
}

/** `ssh -V` prints its version on stderr. */
function sshVersion(): string {
  return spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim();
}

const round = (x: number) => Math.round(x * 100) / 100;

function markdown(r: { bootstrap_s: number; reconnect_s: number; sync_mb_per_s: number; sync: { file_mb: number; seconds: number }; second_sync: { bytes_sent: number; seconds: number }; method: string; command: string; date: string; machine: string; load_avg_1m: { start: number; end: number }; versions: Record<string, string> }): string {
  return `# SSH backend over loopback

| figure | value | target |
|---|---|---|
| bootstrap_s (empty remote folder -> connected) | ${r.bootstrap_s} | <= 120 |
| reconnect_s (existing bootstrap -> connected) | ${r.reconnect_s} | <= 5 |
| sync_mb_per_s (${r.sync.file_mb} MB file, ${r.sync.seconds} s) | ${r.sync_mb_per_s} | >= 50 |
| second sync of the unchanged file: bytes sent | ${r.second_sync.bytes_sent} (${r.second_sync.seconds} s) | 0 |

- Method: ${r.method}
- Command: \`${r.command}\`, ${r.date}
- Machine: ${r.machine}; 1-minute load average ${r.load_avg_1m.start} at the start, ${r.load_avg_1m.end} at the end (other jobs share it)
- Versions: node ${r.versions['node']}; ${r.versions['openssh']}
`;
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
