/**
 * Starts `qlora-studio serve` on this machine with a given Python, reads its ready line and token
 * file, and stops it. It does not serialize anything: its one owner (LocalBackend) calls it
 * through the one start/restart serializer, so two servers never start at once. No `vscode` import.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PROTOCOL_VERSION } from '../protocol';
import { silentLogger, type Logger } from './logger';
import { parseReadyLine, readyInfoSchema, wsUrl, type ReadyInfo } from './readyLine';

export interface LauncherOptions {
  python: string;
  runsDir: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** How long the server may take to print its ready line (default 60 s). */
  readyTimeoutMs?: number;
}

/** Where to connect: what connectWebSocket needs. */
export interface BackendEndpoint {
  url: string;
  token: string;
  pid: number;
}

/** Exit code of a server that found another one serving the same runs directory (server/cli.py: "busy"). */
const EXIT_ALREADY_RUNNING = 5;

export class LocalBackendLauncher {
  private readonly log: Logger;
  private child: ChildProcess | undefined;
  private current: BackendEndpoint | undefined;

  constructor(private readonly opts: LauncherOptions) {
    this.log = opts.logger ?? silentLogger();
  }

  /** The running server's endpoint, starting one when none is alive. Callers serialize calls. */
  start(): Promise<BackendEndpoint> {
    if (this.current && this.isAlive()) return Promise.resolve(this.current);
    return this.spawnServer();
  }

  /** The endpoint of the server when it is alive; never starts one. */
  alive(): BackendEndpoint | undefined {
    return this.current && this.isAlive() ? this.current : undefined;
  }

  /** Stop the server this launcher started or adopted (runs keep going in their own processes). */
  stop(): Promise<void> {
    return this.stopNow();
  }

  private isAlive(): boolean {
    if (this.child) return this.child.exitCode === null && this.child.signalCode === null;
    if (!this.current) return false;
    try {
      process.kill(this.current.pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  private spawnServer(): Promise<BackendEndpoint> {
    const args = ['-m', 'qlora_studio.server', '--runs-dir', this.opts.runsDir, '--port', '0'];
    this.log.info(`starting backend: ${this.opts.python} ${args.join(' ')}`);
    const child = spawn(this.opts.python, args, { cwd: this.opts.cwd, env: this.opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const stderr: string[] = [];
    createInterface({ input: child.stderr! }).on('line', (l) => {
      stderr.push(l);
      if (stderr.length > 40) stderr.shift();
      this.log.debug(`[backend] ${l}`);
    });
    return new Promise<BackendEndpoint>((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | undefined, ep?: BackendEndpoint): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(ep!);
      };
      const timeoutMs = this.opts.readyTimeoutMs ?? 60_000;
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish(new Error(`the backend did not get ready within ${timeoutMs} ms. Last output:\n${stderr.join('\n')}`));
      }, timeoutMs);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let info: ReadyInfo | undefined;
        try {
          info = parseReadyLine(line);
        } catch (e) {
          return finish(new Error(`the backend printed a malformed ready line (${String(e)}): ${line}`));
        }
        if (info) this.adopt(info).then((ep) => finish(undefined, ep), (e: Error) => finish(e));
      });
      child.once('error', (e) => finish(new Error(`cannot start the backend with ${this.opts.python}: ${e.message}. Check the Python path setting.`)));
      child.once('exit', (code, signal) => {
        if (this.child === child) this.child = undefined;
        if (code === EXIT_ALREADY_RUNNING) {
          this.log.info('a backend already serves this runs directory; connecting to it');
          this.adoptExisting().then((ep) => finish(undefined, ep), (e: Error) => finish(e));
          return;
        }
        if (!settled) {
          const hint = stderr.some((l) => l.includes('No module named')) ? ' Install the backend into that Python: pip install -e python-backend' : '';
          finish(new Error(`the backend exited (${signal ?? `code ${code}`}) before it was ready.${hint}\n${stderr.join('\n')}`));
        } else if (this.current?.pid === child.pid) {
          this.log.warn(`the backend (pid ${child.pid}) exited (${signal ?? `code ${code}`})`);
          this.current = undefined;
        }
      });
    });
  }

  private async adopt(info: ReadyInfo): Promise<BackendEndpoint> {
    if (info.protocol !== PROTOCOL_VERSION) {
      throw new Error(`the backend speaks protocol ${info.protocol}, this extension ${PROTOCOL_VERSION}: ` +
        (info.protocol < PROTOCOL_VERSION ? 'update the backend (pip install -U qlora-studio)' : 'update the QLoRA Studio extension'));
    }
    const token = (await readFile(info.token_file, 'utf8')).trim();
    if (!token) throw new Error(`the backend's token file ${info.token_file} is empty`);
    this.current = { url: wsUrl(info), token, pid: info.pid };
    this.log.info(`backend ready on ${this.current.url} (pid ${info.pid})`);
    return this.current;
  }

  private async adoptExisting(): Promise<BackendEndpoint> {
    const file = join(this.opts.runsDir, '.server', 'server.json');
    const info = readyInfoSchema.parse(JSON.parse(await readFile(file, 'utf8')));
    return this.adopt(info);
  }

  private async stopNow(): Promise<void> {
    const child = this.child;
    const pid = child?.pid ?? this.current?.pid;
    this.current = undefined;
    if (!pid) return;
    if (child && (child.exitCode !== null || child.signalCode !== null)) return;
    const exited = child ? new Promise<void>((r) => child.once('exit', () => r())) : waitForPidExit(pid);
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000).unref());
    if ((await Promise.race([exited, timeout])) === 'timeout') {
      this.log.warn(`backend pid ${pid} ignored SIGTERM; killing it`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await exited;
    }
    if (this.child === child) this.child = undefined;
  }
}

async function waitForPidExit(pid: number): Promise<void> {
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
