/**
 * The SSH tier's set-up: a PRIVATE OpenSSH server on loopback (test/ssh/sshd.sh: generated host and
 * client keys, its own config, nothing in /etc/ssh or ~/.ssh), the shipped backend wheel, and a
 * fresh "remote home" folder per test file. The remote is this machine, reached only through ssh.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from '../../src/backend/logger';
import { SshBackendLauncher } from '../../src/backend/sshLauncher';
import type { SshTarget } from '../../src/backend/sshRunner';
import type { RunEvent } from '../../src/protocol';

export const repo = resolve(__dirname, '../..');
export const python = join(repo, '.venv/bin/python');

/** A running private sshd and where its files are. */
export interface SshFixture {
  dir: string;
  target: SshTarget;
  stop(): void;
}

/** Start the private sshd (installing openssh-server first when it is missing). */
export function startSshd(): SshFixture {
  const dir = mkdtempSync(join(tmpdir(), 'qls-sshd-'));
  execFileSync('bash', [join(repo, 'test/ssh/sshd.sh'), 'start', dir], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 300_000 });
  return {
    dir,
    target: { host: 'qls-loopback', configFile: join(dir, 'ssh_config'), connectTimeoutS: 10 },
    stop: () => {
      execFileSync('bash', [join(repo, 'test/ssh/sshd.sh'), 'stop', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The backend wheel the extension ships (built when its sources changed). */
export function backendWheel(): string {
  execFileSync('bash', [join(repo, 'scripts/buildBackendWheel.sh')], { stdio: 'inherit', timeout: 120_000 });
  const dir = join(repo, 'out/backend');
  const whl = readdirSync(dir).find((f) => f.endsWith('.whl'));
  if (!whl) throw new Error('no wheel in out/backend');
  return join(dir, whl);
}

/**
 * A launcher for the loopback host with its own empty remote folder. The venv reuses the repo
 * venv's packages (`basePython`), so torch is not downloaded: our own package is installed from the
 * wheel sent over ssh.
 */
export function launcher(fx: SshFixture, remoteDir: string, logger?: Logger): SshBackendLauncher {
  return new SshBackendLauncher({ target: fx.target, remoteDir, wheelPath: backendWheel(), basePython: python, logger });
}

/** A logger that keeps every line (assertions read it). */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const add = (lvl: string) => (m: string) => void lines.push(`${lvl} ${m}`);
  return { lines, info: add('info'), warn: add('warn'), error: add('error'), debug: add('debug') };
}

/**
 * A copy of the tiny example with its model and data built (about 7 s), and `ssh.qlora.yaml`: the
 * same recipe cut to `steps` optimizer steps, so the tier stays short on a busy 2-core machine.
 */
export function tinyWorkspace(steps = 16): string {
  const dir = mkdtempSync(join(tmpdir(), 'qls-ssh-ws-'));
  cpSync(join(repo, 'examples/tiny'), join(dir, 'tiny'), { recursive: true, filter: (s) => !s.includes('/runs') && !s.includes('/model') && !s.includes('/data') });
  execFileSync(python, ['make_tiny.py'], { cwd: join(dir, 'tiny'), stdio: 'pipe', timeout: 300_000, env: { ...process.env, OMP_NUM_THREADS: '1' } });
  if (!existsSync(join(dir, 'tiny/model/config.json'))) throw new Error('make_tiny.py did not build the model');
  const recipe = readFileSync(join(dir, 'tiny/tiny.qlora.yaml'), 'utf8')
    .replace(/max_steps: \d+/, `max_steps: ${steps}`)
    .replace(/eval_every: \d+/, `eval_every: ${steps}`)
    .replace(/save_every: \d+/, `save_every: ${steps}`)
    .replace(/run_name: \w+/, 'run_name: ssh');
  writeFileSync(join(dir, 'tiny/ssh.qlora.yaml'), recipe);
  return join(dir, 'tiny');
}

/** A run's events.jsonl on the (loopback) remote, parsed; `runDir` is the folder the backend reported. */
export function remoteEvents(runDir: string): RunEvent[] {
  return readFileSync(join(runDir, 'events.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as RunEvent);
}

/** The command lines of every process on this machine, joined (what `ps` shows). */
export function processTable(): string {
  return execFileSync('ps', ['-eo', 'pid,args', '--no-headers', '-ww'], { encoding: 'utf8', maxBuffer: 64 << 20 });
}

/** Poll until `cond` holds (or fail after timeoutMs). */
export async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Stop the remote server of a test's remote folder and every process it left (runs). */
export function killRemote(remoteDir: string): void {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmd.includes(remoteDir) && Number(pid) !== process.pid) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}
