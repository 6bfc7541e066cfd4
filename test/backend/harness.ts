/**
 * Helpers for the backend tests: the REAL Python server (through LocalBackendLauncher) in a temp
 * runs dir, a loopback TCP proxy whose connections a test can cut, and small waiting utilities.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from '../../src/backend/logger';
import type { RunEvent } from '../../src/protocol';

export const repo = resolve(__dirname, '../..');
export const python = join(repo, '.venv/bin/python');
export const fakeEngine = join(repo, 'test/fixtures/protocol/fake_engine_for_tests.py');

/** A fresh temp dir with a runs/ folder and a recipe file the fake engine accepts. */
export function workDir(): { dir: string; runsDir: string; recipe: string } {
  const dir = mkdtempSync(join(tmpdir(), 'qls-backend-'));
  const recipe = join(dir, 'fake.qlora.yaml');
  writeFileSync(recipe, 'base_model: fake\ndata:\n  train: data.jsonl\n');
  // The backend checks that the data exists before it starts a run.
  writeFileSync(join(dir, 'data.jsonl'), '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n');
  return { dir, runsDir: join(dir, 'runs'), recipe };
}

/** Environment that makes the server start runs with the fake engine (protocol-level tests). */
export function fakeEngineEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, OMP_NUM_THREADS: '1', QLORA_STUDIO_ENGINE_CMD: JSON.stringify([python, fakeEngine]), ...extra };
}

/** A logger that keeps every line (assertions read it; failures print it). */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const add = (lvl: string) => (m: string) => void lines.push(`${lvl} ${m}`);
  return { lines, info: add('info'), warn: add('warn'), error: add('error'), debug: add('debug') };
}

/** The run's events.jsonl, parsed. */
export function readLog(runsDir: string, runId: string): RunEvent[] {
  return readFileSync(join(runsDir, runId, 'events.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as RunEvent);
}

/**
 * SIGKILL every process that has `runsDir` as one of its arguments (the runs a test started: they
 * outlive the server by design, but a failed test must not leave them on a shared machine).
 */
export function killRuns(runsDir: string): void {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (args.some((a) => a === runsDir || a.startsWith(runsDir + '/')) && Number(pid) !== process.pid) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}

/** Poll until `cond` is true (or fail after timeoutMs). */
export async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A TCP proxy on loopback to a target port; cut() destroys every live connection (a dropped tunnel). */
export class CuttableProxy {
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  port = 0;
  target: number;
  /** While true, nothing the server sends reaches the client. */
  stalled = false;

  constructor(target: number) {
    this.target = target;
  }

  /** Listen on a free port. */
  async listen(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = createConnection({ host: '127.0.0.1', port: this.target });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream);
      // Server -> client bytes go through `stalled`: a stalled link delivers nothing (a hung tunnel).
      upstream.on('data', (chunk: Buffer) => {
        if (!this.stalled) client.write(chunk);
      });
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
  }

  /** Drop every connection now, without a close handshake. */
  cut(): number {
    const n = this.sockets.size;
    for (const s of this.sockets) s.destroy();
    return n;
  }

  /** Stop listening and drop connections. */
  close(): void {
    this.cut();
    this.server?.close();
  }
}
