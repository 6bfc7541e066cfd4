/**
 * The second backend launcher: the backend runs on an SSH host. It bootstraps the host (once per
 * backend version), starts `qlora-studio serve --detach` there or reuses a same-version server,
 * reads the token through the ssh channel, and forwards a local port to it. The WebSocket client
 * above it is the same as for a local backend. Stopping closes only the forward: the remote server
 * and its runs keep going, and the next start re-attaches. It does not serialize anything: its one
 * owner (LocalBackend, or a test) calls it one call at a time. No `vscode` import.
 */
import { z } from 'zod';
import { PROTOCOL_VERSION } from '../protocol';
import type { BackendEndpoint } from './localLauncher';
import { silentLogger, type Logger } from './logger';
import { readyInfoSchema } from './readyLine';
import { bootstrapRemote, runHelper, type BootstrapOptions, type RemoteHost } from './sshBootstrap';
import { openForward, type SshForward } from './sshForward';
import type { SshTarget } from './sshRunner';

/** Options of the SSH launcher: the bootstrap's, plus a logger. */
export interface SshLauncherOptions extends BootstrapOptions {
  logger?: Logger;
}

const serveAnswerSchema = z.object({ reused: z.boolean(), ready: readyInfoSchema, token: z.string().min(16), runs_dir: z.string() });

/** Starts (or reuses) the backend on an SSH host and tunnels to it. */
export class SshBackendLauncher {
  private readonly log: Logger;
  private remote: RemoteHost | undefined;
  private forward: SshForward | undefined;
  private current: BackendEndpoint | undefined;
  /** The remote server's pid and whether the last start reused a running server. */
  lastServe: { pid: number; reused: boolean; remotePort: number } | undefined;

  constructor(private readonly opts: SshLauncherOptions) {
    this.log = opts.logger ?? silentLogger();
  }

  /** The ssh destination. */
  get target(): SshTarget {
    return this.opts.target;
  }

  /** The bootstrapped remote (folder, helper, environment report), once start() has run. */
  get host(): RemoteHost | undefined {
    return this.remote;
  }

  /** The pid of the ssh process that carries the port forward (tests cut it). */
  get forwardPid(): number | undefined {
    return this.forward?.alive() ? this.forward.child.pid : undefined;
  }

  /**
   * Bootstrap if needed, make sure the remote server runs, make sure the forward is open. Called
   * again before every reconnect attempt, so a dead tunnel or server is replaced.
   */
  async start(): Promise<BackendEndpoint> {
    this.current = await this.startNow();
    return this.current;
  }

  /**
   * The endpoint while the tunnel is open; never starts anything. A closed tunnel gives undefined,
   * so the owner reconnects through start() (which reopens it and reuses or restarts the server).
   */
  alive(): BackendEndpoint | undefined {
    return this.current && this.forward?.alive() ? this.current : undefined;
  }

  /** Close the tunnel and start the remote server afresh (runs keep going in their processes). */
  async restart(): Promise<BackendEndpoint> {
    this.closeForward();
    if (this.remote) await runHelper(this.opts.target, this.remote, ['stop', this.remote.dir]);
    return this.start();
  }

  /** Close the tunnel only: the remote server and its runs outlive the editor. */
  stop(): Promise<void> {
    this.closeForward();
    return Promise.resolve();
  }

  private async startNow(): Promise<BackendEndpoint> {
    const t0 = Date.now();
    if (!this.remote) {
      this.remote = await bootstrapRemote({ ...this.opts, onProgress: (m) => (this.log.info(`[ssh] ${m}`), this.opts.onProgress?.(m)) });
      this.log.info(`[ssh] ${this.opts.target.host}: backend ${this.remote.installed ? 'installed' : 'up to date'} in ${this.remote.dir}`);
      for (const p of this.remote.report.problems) this.log.warn(`[ssh] ${this.opts.target.host}: ${p.what}. Fix: ${p.fix}`);
    }
    this.opts.onProgress?.(`starting the backend on ${this.opts.target.host}`);
    // The answer carries the token: parse it, never log it.
    const ans = serveAnswerSchema.parse(await runHelper(this.opts.target, this.remote, ['serve', this.remote.dir]));
    if (ans.ready.protocol !== PROTOCOL_VERSION) {
      throw new Error(`the backend on ${this.opts.target.host} speaks protocol ${ans.ready.protocol}, this extension ${PROTOCOL_VERSION}; reconnect to reinstall it`);
    }
    this.lastServe = { pid: ans.ready.pid, reused: ans.reused, remotePort: ans.ready.port };
    if (!this.forward?.alive() || this.forward.remotePort !== ans.ready.port) {
      this.closeForward();
      this.opts.onProgress?.(`opening the tunnel to ${this.opts.target.host}`);
      const fwd = await openForward(this.opts.target, ans.ready.port);
      this.forward = fwd;
      void fwd.closed.then(() => {
        if (this.forward === fwd) this.log.warn(`[ssh] the tunnel to ${this.opts.target.host} closed`);
      });
    }
    const url = `ws://127.0.0.1:${this.forward.localPort}`;
    this.log.info(`[ssh] ${this.opts.target.host}: ${ans.reused ? 'reusing' : 'started'} backend pid ${ans.ready.pid}, tunnel ${url} -> remote port ${ans.ready.port} (${Date.now() - t0} ms)`);
    return { url, token: ans.token, pid: ans.ready.pid };
  }

  private closeForward(): void {
    this.current = undefined;
    const f = this.forward;
    this.forward = undefined;
    f?.close();
  }
}
