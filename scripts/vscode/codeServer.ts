/**
 * Starts and stops a private code-server (VS Code's browser build with a Node extension host) for
 * the test tiers, the benchmark and `npm start`. Everything it writes (config, user data,
 * extensions, temp files) lives under one work folder, so runs never touch the user's home and
 * never see each other's state. See /work/shared/facts/vscode-e2e.md for why each flag is there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

/** Repository root (this file sits in scripts/vscode/). */
export const repoRoot = path.resolve(__dirname, '..', '..');

/** Where scripts/vscode/setup.sh installs code-server. */
export const codeServerBin = path.join(repoRoot, '.tools', 'code-server', 'node_modules', '.bin', 'code-server');

/** Options of {@link startCodeServer}. */
export interface CodeServerOptions {
  /** Folder for config, user data, extensions, temp and the server log; created when missing. */
  workDir: string;
  /** Keep VS Code's Workspace Trust on (untrusted-workspace tests); off by default. */
  workspaceTrust?: boolean;
  /** Fixed port; a free one is picked when omitted. */
  port?: number;
  /** Extra environment for the server and so for the extension host (e.g. where a suite logs). */
  env?: Record<string, string>;
  /** Extra VS Code user settings merged over the test defaults. */
  settings?: Record<string, unknown>;
  /** Echo the server's own output here as well as into its log file. */
  onOutput?: (line: string) => void;
  /** Called with the private folders once they exist, before the server starts (install extensions here). */
  beforeStart?: (dirs: CodeServerDirs) => void;
}

/** The private folders of one code-server. */
export interface CodeServerDirs {
  config: string;
  data: string;
  cache: string;
  userData: string;
  extensions: string;
  tmp: string;
}

/** A running code-server; `stop()` kills its whole process group, extension hosts included. */
export interface CodeServer {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly extensionsDir: string;
  readonly userDataDir: string;
  readonly logFile: string;
  /** Settles when the server process exits, with its exit code (null after a signal). */
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Asks the kernel for a free loopback port (closed again before code-server binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A work folder of its own for this process, `.test-work/<area>/<name>-<pid>`: several engineers
 * (or terminals) may run the same tier at once, and one run must never delete another's files.
 * Folders left by processes that are gone are removed on the way.
 */
export function freshWorkDir(area: string, name: string): string {
  const parent = path.join(repoRoot, '.test-work', area);
  mkdirSync(parent, { recursive: true });
  for (const entry of readdirSync(parent)) {
    const m = new RegExp(`^${name.replace(/[^\w-]/g, '')}-(\\d+)$`).exec(entry);
    if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) {
      rmSync(path.join(parent, entry), { recursive: true, force: true });
    }
  }
  const dir = path.join(parent, `${name}-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Fails with a message that says how to fix it when setup has not run. */
export function requireCodeServer(): void {
  if (!existsSync(codeServerBin)) {
    throw new Error(`code-server is not installed (${codeServerBin} missing). Run: bash scripts/vscode/setup.sh`);
  }
}

/** Builds the VS Code web URL that opens `folder`, optionally with extension-development payload. */
export function workbenchUrl(base: string, folder: string, payload?: [string, string][]): string {
  const u = new URL(base);
  u.searchParams.set('folder', folder);
  if (payload) u.searchParams.set('payload', JSON.stringify(payload));
  return u.toString();
}

/** The payload that makes the web client load an extension under development and run its suite. */
export function testPayload(extensionDir: string, testsEntry: string): [string, string][] {
  // code-server serves the local file system under the `vscode-remote://remote` authority.
  return [
    ['extensionDevelopmentPath', `vscode-remote://remote${extensionDir}`],
    ['extensionTestsPath', `vscode-remote://remote${testsEntry}`],
  ];
}

async function waitHealthy(url: string, child: ChildProcess, timeoutMs: number, logFile: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`code-server exited with code ${child.exitCode} before it was ready; see ${logFile}`);
    }
    try {
      const res = await fetch(new URL('/healthz', url));
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`code-server did not answer /healthz within ${timeoutMs} ms; see ${logFile}`);
}

function killGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts code-server in its own process group (so extension hosts, which outlive the browser,
 * die with it) and resolves once /healthz answers.
 */
export async function startCodeServer(opts: CodeServerOptions): Promise<CodeServer> {
  requireCodeServer();
  const dirs: CodeServerDirs = {
    config: path.join(opts.workDir, 'xdg-config'),
    data: path.join(opts.workDir, 'xdg-data'),
    cache: path.join(opts.workDir, 'xdg-cache'),
    userData: path.join(opts.workDir, 'user-data'),
    extensions: path.join(opts.workDir, 'extensions'),
    tmp: path.join(opts.workDir, 'tmp'),
  };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  mkdirSync(path.join(dirs.userData, 'User'), { recursive: true });
  const settings = {
    'workbench.startupEditor': 'none',
    'security.workspace.trust.startupPrompt': 'never',
    'telemetry.telemetryLevel': 'off',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'workbench.enableExperiments': false,
    'update.mode': 'none',
    ...opts.settings,
  };
  writeFileSync(path.join(dirs.userData, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
  opts.beforeStart?.(dirs);

  const port = opts.port ?? (await freePort());
  const logFile = path.join(opts.workDir, 'code-server.log');
  const logFd = openSync(logFile, 'a');
  const args = [
    '--bind-addr', `127.0.0.1:${port}`,
    '--auth', 'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-getting-started-override',
    '--user-data-dir', dirs.userData,
    '--extensions-dir', dirs.extensions,
  ];
  if (!opts.workspaceTrust) args.push('--disable-workspace-trust');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    XDG_CONFIG_HOME: dirs.config,
    XDG_DATA_HOME: dirs.data,
    XDG_CACHE_HOME: dirs.cache,
    // code-server leaves vscode-ipc-*.sock files in the temp folder.
    TMPDIR: dirs.tmp,
    ...opts.env,
  };
  // `detached` makes the child a process-group leader (setsid), so one kill reaches every host.
  const child = spawn(codeServerBin, args, {
    cwd: repoRoot,
    env,
    detached: true,
    stdio: ['ignore', opts.onOutput ? 'pipe' : logFd, opts.onOutput ? 'pipe' : logFd],
  });
  if (opts.onOutput) {
    const echo = (chunk: Buffer): void => {
      writeFileSync(logFile, chunk, { flag: 'a' });
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) opts.onOutput?.(line);
    };
    child.stdout?.on('data', echo);
    child.stderr?.on('data', echo);
  }
  closeSync(logFd);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn ${codeServerBin}`);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}/`;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (!killGroup(pid, 'SIGTERM')) return;
      const deadline = Date.now() + 5000;
      while (groupAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (groupAlive(pid)) killGroup(pid, 'SIGKILL');
    })();
    return stopped;
  };
  try {
    await waitHealthy(url, child, 60_000, logFile);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, port, pid, extensionsDir: dirs.extensions, userDataDir: dirs.userData, logFile, exited, stop };
}
