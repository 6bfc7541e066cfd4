/**
 * The backend as one object: its server (the local process of LocalBackendLauncher, or a launcher
 * the launch spec builds, such as the SSH host's server behind a tunnel), the one connection
 * to it, and the ONE serializer every start and restart goes through, so two servers never start
 * at once and nothing restarts the server behind its owner's back. A connection that loses its
 * server does not start one: it asks this object, which starts a fresh server through the same
 * serializer and replaces the connection. The delivery state of run events (RunWatches) outlives
 * connections, so every event reaches listeners exactly once, also across server restarts.
 * No `vscode` import: the Ctx owns one of these; the backend tests drive it directly.
 */
import type { RunEvent } from '../protocol';
import type { BackendPhase } from '../runs/backendState';
import { BackendError, type BackendConnection } from './connection';
import { LocalBackendLauncher, type BackendEndpoint, type LauncherOptions } from './localLauncher';
import { silentLogger, type Logger } from './logger';
import { RunWatches } from './runWatches';
import { SerialStarter } from './serialStarter';
import { connectWebSocket, type ReconnectOptions } from './wsConnection';

/**
 * A server launcher this object owns and calls only through its serializer. `alive()` never
 * starts anything; `restart()`, when present, replaces the server in place (else a restart
 * stops the launcher and builds a new one).
 */
export interface BackendLauncher {
  start(): Promise<BackendEndpoint>;
  alive(): BackendEndpoint | undefined;
  stop(): Promise<void>;
  restart?(): Promise<BackendEndpoint>;
}

/** A server on this machine: the local launcher's options. */
export interface LocalLaunchSpec extends Omit<LauncherOptions, 'logger'> {
  kind?: 'local';
  /** Changes when a different server is needed (interpreter, runs folder, environment). */
  key: string;
}

/** A server elsewhere (an SSH host): the spec builds its launcher. */
export interface RemoteLaunchSpec {
  kind: 'remote';
  /** Changes when a different server is needed (another host or other options). */
  key: string;
  create: () => Promise<BackendLauncher>;
}

/** What a start needs, resolved fresh each time (the target, interpreter or token may have changed). */
export type LaunchSpec = LocalLaunchSpec | RemoteLaunchSpec;

/** How to build and follow the local backend. */
export interface LocalBackendOptions {
  launchSpec: () => Promise<LaunchSpec>;
  logger?: Logger;
  clientName: string;
  clientVersion?: string;
  reconnect?: ReconnectOptions;
  onPhase?: (p: BackendPhase) => void;
  onEvent?: (ev: RunEvent) => void;
  /** Called once a fresh connection says hello, before waiting callers get it. */
  onConnected?: (conn: BackendConnection) => Promise<void>;
}

/** The backend: server + connection + the one start/restart serializer. */
export class LocalBackend {
  private readonly log: Logger;
  private readonly serial = new SerialStarter(() => this.startOnce());
  private readonly watches = new RunWatches();
  private launcher: BackendLauncher | undefined;
  private launcherKey = '';
  private conn: BackendConnection | undefined;
  private restartRequested = false;
  private phaseValue: BackendPhase = 'disconnected';
  private disposed = false;
  private recoveryTimer: ReturnType<typeof setTimeout> | undefined;
  private recoveries = 0;

  constructor(private readonly opts: LocalBackendOptions) {
    this.log = opts.logger ?? silentLogger();
  }

  /** The connection phase. */
  get phase(): BackendPhase {
    return this.phaseValue;
  }

  /** The connected backend, started on first need; concurrent callers share one start. */
  connection(): Promise<BackendConnection> {
    if (this.conn && this.phaseValue === 'connected') return Promise.resolve(this.conn);
    return this.serial.current() ?? this.serial.request();
  }

  /** Stops the server (when this window started it) and starts a fresh one; calls meanwhile fold into one. */
  restart(): Promise<BackendConnection> {
    this.restartRequested = true;
    return this.serial.request();
  }

  /**
   * Connects again through the serializer without restarting: a launch spec with a new key (another
   * target) replaces the launcher; the same key keeps the server and reconnects to it.
   */
  reload(): Promise<BackendConnection> {
    return this.serial.request();
  }

  /** Releases the connection and stops the server this object started (runs keep training). */
  async dispose(): Promise<void> {
    this.disposed = true;
    if (this.recoveryTimer) clearTimeout(this.recoveryTimer);
    this.teardown();
    await this.launcher?.stop();
  }

  private async startOnce(): Promise<BackendConnection> {
    if (this.disposed) throw new BackendError('disconnected', 'the QLoRA backend was shut down');
    const restart = this.restartRequested;
    this.restartRequested = false;
    this.teardown();
    this.setPhase('connecting');
    try {
      const spec = await this.opts.launchSpec();
      const { launcher, endpoint } = await this.launch(spec, restart);
      const { url, token, pid } = endpoint;
      this.log.info(`backend pid ${pid} listening at ${url}`);
      const conn = await connectWebSocket({
        url,
        token,
        logger: this.log,
        reconnect: this.opts.reconnect ?? true,
        clientName: this.opts.clientName,
        clientVersion: this.opts.clientVersion,
        watches: this.watches,
        onRunEvent: (ev) => this.opts.onEvent?.(ev),
        resolveEndpoint: async () => {
          const ep = launcher.alive();
          if (ep) return ep;
          // The server is gone: a fresh one starts through the serializer, which replaces this connection.
          this.log.warn('the backend is gone (its process, or the tunnel to it); connecting afresh');
          this.recover();
          throw new BackendError('disconnected', 'the backend process is gone; a new one is starting');
        },
      });
      this.conn = conn;
      conn.onStateChange((s) => {
        if (this.conn === conn) this.setPhase(s);
      });
      this.setPhase('connected');
      await this.opts.onConnected?.(conn);
      return conn;
    } catch (err) {
      this.setPhase('failed');
      throw err;
    }
  }

  /**
   * Starts afresh through the serializer after the server (or the tunnel to it) went away. A
   * failed attempt (an SSH host out of reach) is tried again with backoff until one connects,
   * another start succeeds, or this object is disposed.
   */
  private recover(): void {
    void (this.serial.current() ?? this.serial.request()).then(
      () => (this.recoveries = 0),
      (e: unknown) => {
        this.log.error(`reconnecting the backend failed: ${String(e)}`);
        if (this.disposed || this.conn || this.recoveryTimer) return;
        const cfg = typeof this.opts.reconnect === 'object' ? this.opts.reconnect : {};
        const delay = Math.min(cfg.maxDelayMs ?? 5000, (cfg.initialDelayMs ?? 200) * 2 ** this.recoveries++);
        this.log.info(`trying again in ${delay} ms`);
        this.recoveryTimer = setTimeout(() => {
          this.recoveryTimer = undefined;
          if (!this.disposed && !this.conn) this.recover();
        }, delay);
      },
    );
  }

  /**
   * The launcher for this spec and its server's endpoint: the same launcher while the key holds
   * (restarted in place when asked and able), else the old one stopped and a new one built.
   */
  private async launch(spec: LaunchSpec, restart: boolean): Promise<{ launcher: BackendLauncher; endpoint: BackendEndpoint }> {
    const current = this.launcher;
    if (current && this.launcherKey === spec.key) {
      if (!restart) return { launcher: current, endpoint: await current.start() };
      if (current.restart) return { launcher: current, endpoint: await current.restart() };
    }
    this.launcher = undefined;
    await current?.stop();
    const launcher = spec.kind === 'remote' ? await spec.create() : new LocalBackendLauncher({ ...spec, logger: this.log });
    this.launcher = launcher;
    this.launcherKey = spec.key;
    return { launcher, endpoint: await launcher.start() };
  }

  private teardown(): void {
    const conn = this.conn;
    this.conn = undefined;
    conn?.dispose();
  }

  private setPhase(p: BackendPhase): void {
    if (p === this.phaseValue) return;
    this.phaseValue = p;
    this.opts.onPhase?.(p);
  }
}
