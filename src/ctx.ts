/**
 * The one object that owns the extension's lifetimes: disposables, the log channel, settings,
 * the local backend (started on first need, restarts serialized) and the run models fed by its
 * events. Commands and views receive it; nothing else holds state.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { BackendConnection, ConnectionState } from './backend/connection';
import type { LocalBackendLauncher } from './backend/localLauncher';
import type { SshBackendLauncher } from './backend/sshLauncher';
import type { RemoteSync } from './backend/sshSync';
import { type BackendTarget, sshLauncherFor, targetKey, targetLabel, TARGET_STATE_KEY } from './backend/remoteTarget';
import type { RunEvent, RunInfo } from './protocol';
import { choosePython } from './util/paths';
import { SerialStarter } from './util/serialRestart';
import { RunsModel, isTerminal, type RunRecord } from './views/runsModel';
import { deviceLabel, type BackendPhase } from './views/statusBarText';

/** Thrown when a command needs Workspace Trust; callers show it once, without "Show Logs". */
export class UntrustedError extends Error {
  constructor(what: string) {
    super(`${what} needs a trusted workspace: this folder is in Restricted Mode. Use "Manage Workspace Trust" to trust it, then try again.`);
  }
}

/** Settings of the extension, read fresh on each use. */
export interface Settings {
  pythonPath: string;
  runsDir: string;
}

export class Ctx implements vscode.Disposable {
  readonly log: vscode.LogOutputChannel;
  readonly runs = new RunsModel();
  private readonly subs: vscode.Disposable[] = [];
  private readonly runEvents = new vscode.EventEmitter<RunEvent>();
  private readonly runsChangedEmitter = new vscode.EventEmitter<void>();
  private readonly phaseEmitter = new vscode.EventEmitter<BackendPhase>();
  /** Every run event of the connected backend, after the runs model saw it. */
  readonly onRunEvent = this.runEvents.event;
  /** The runs model changed (list refreshed or an event applied). */
  readonly onRunsChanged = this.runsChangedEmitter.event;
  /** The backend's connection phase changed. */
  readonly onPhase = this.phaseEmitter.event;
  private conn: BackendConnection | undefined;
  private connSubs: Array<{ dispose(): void }> = [];
  private launcher: LocalBackendLauncher | SshBackendLauncher | undefined;
  private remoteSync: RemoteSync | undefined;
  private readonly progressEmitter = new vscode.EventEmitter<string>();
  /** Progress of an SSH backend's bootstrap, start and file sync (for a notification). */
  readonly onBackendProgress = this.progressEmitter.event;
  private launcherKey = '';
  private restartRequested = false;
  private readonly attached = new Set<string>();
  private readonly starter = new SerialStarter(() => this.startBackend());
  private phaseValue: BackendPhase = 'disconnected';
  private lastShownError: string | undefined;
  device: string | undefined;
  /** The last error a command reported (for the test API and bug reports). */
  lastCommandError: string | undefined;

  constructor(readonly ext: vscode.ExtensionContext) {
    this.log = vscode.window.createOutputChannel('QLoRA Studio', { log: true });
    this.subs.push(this.log, this.runEvents, this.runsChangedEmitter, this.phaseEmitter, this.progressEmitter);
  }

  /** Takes ownership of disposables; they go when the extension deactivates. */
  push(...ds: vscode.Disposable[]): void {
    this.subs.push(...ds);
  }

  /** Current connection phase, for the status bar and tests. */
  get phase(): BackendPhase {
    return this.phaseValue;
  }

  /** True when Workspace Trust allows running code from this workspace. */
  get trusted(): boolean {
    return vscode.workspace.isTrusted;
  }

  /** The extension's settings. */
  settings(): Settings {
    const c = vscode.workspace.getConfiguration('qloraStudio');
    return {
      pythonPath: c.get<string>('pythonPath', ''),
      runsDir: c.get<string>('runsDir', ''),
    };
  }

  /** The folder where the local backend keeps runs: the setting, else `<first workspace folder>/runs`. */
  runsDir(): string {
    const s = this.settings().runsDir.trim();
    const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? this.ext.globalStorageUri.fsPath;
    if (!s) return path.join(root, 'runs');
    return path.isAbsolute(s) ? s : path.join(root, s);
  }

  /** Resolves the interpreter for the backend (see `choosePython` for the order). */
  async python(): Promise<{ python: string; source: string }> {
    let fromExtension: string | undefined;
    const pyExt = vscode.extensions.getExtension('ms-python.python');
    if (pyExt && !this.settings().pythonPath.trim()) {
      try {
        const api = (await pyExt.activate()) as { environments?: { getActiveEnvironmentPath?: (r?: vscode.Uri) => { path?: string } } };
        fromExtension = api.environments?.getActiveEnvironmentPath?.(vscode.workspace.workspaceFolders?.[0]?.uri)?.path;
      } catch (err) {
        this.log.warn(`Python extension did not answer: ${String(err)}`);
      }
    }
    const dirs: string[] = [];
    for (const f of vscode.workspace.workspaceFolders ?? []) dirs.push(f.uri.fsPath, path.dirname(f.uri.fsPath));
    dirs.push(this.ext.extensionUri.fsPath);
    return choosePython({
      setting: this.settings().pythonPath,
      envOverride: process.env['QLORA_STUDIO_PYTHON'],
      pythonExtension: fromExtension,
      candidateDirs: dirs,
      exists: (p) => fs.existsSync(p),
    });
  }

  /**
   * The connected backend, started on first need. Refuses in untrusted workspaces; concurrent
   * callers share one start.
   */
  async backend(): Promise<BackendConnection> {
    if (!this.trusted) throw new UntrustedError('Starting the QLoRA backend');
    if (this.conn && this.phaseValue === 'connected') return this.conn;
    return this.starter.current() ?? this.starter.request();
  }

  /** Where the backend runs: local, or the SSH host picked with Connect Backend (kept per workspace). */
  get target(): BackendTarget {
    return this.ext.workspaceState.get<BackendTarget>(TARGET_STATE_KEY) ?? { kind: 'local' };
  }

  /** The SSH host's label while connected to one (undefined for the local backend). */
  remoteLabel(): string | undefined {
    return targetLabel(this.target);
  }

  /** What the SSH host's bootstrap found missing, each with the command that fixes it. */
  remoteProblems(): Array<{ what: string; fix: string }> {
    return this.launcher && 'host' in this.launcher ? (this.launcher.host?.report.problems ?? []) : [];
  }

  /** Switch to another backend (local or an SSH host) and connect to it; runs on the old one go on. */
  async connectTo(target: BackendTarget): Promise<BackendConnection> {
    if (!this.trusted) throw new UntrustedError('Connecting the QLoRA backend');
    await this.ext.workspaceState.update(TARGET_STATE_KEY, target);
    return this.starter.request();
  }

  /**
   * The path the backend knows a local recipe by: the same path for a local backend; for an SSH
   * backend the recipe and its inputs are synced to the host first (only what changed).
   */
  async backendRecipePath(recipe: string, onProgress?: (p: { file: string; sentBytes: number; totalBytes: number }) => void): Promise<string> {
    await this.backend();
    if (!this.remoteSync) return recipe;
    const res = await this.remoteSync.syncRecipe(recipe, onProgress);
    this.log.info(`[ssh] synced ${res.files} file(s) for ${recipe}: ${res.uploaded} sent (${res.bytesSent} bytes) in ${res.seconds.toFixed(1)} s`);
    return res.remoteRecipe;
  }

  /** Copies a folder of the SSH host (an adapter) into a local folder; only for an SSH backend. */
  async downloadFromBackend(remotePath: string, localParent: string, onBytes?: (n: number) => void): Promise<{ dir: string; bytes: number }> {
    await this.backend();
    if (!this.remoteSync) throw new Error('the backend runs on this machine: its files are already here');
    return this.remoteSync.download(remotePath, localParent, onBytes);
  }

  /** Stops the current backend (if this window started it) and starts a fresh one. */
  async restartBackend(): Promise<BackendConnection> {
    if (!this.trusted) throw new UntrustedError('Restarting the QLoRA backend');
    this.restartRequested = true;
    return this.starter.request();
  }

  private async startBackend(): Promise<BackendConnection> {
    const restart = this.restartRequested;
    this.restartRequested = false;
    this.teardownConnection();
    this.setPhase('connecting');
    try {
      const target = this.target;
      const { python, source } = target.kind === 'local' ? await this.python() : { python: '', source: 'ssh' };
      const runsDir = this.runsDir();
      const key = targetKey(target, `${python}\0${runsDir}`);
      // Loaded on first need: the client pulls in ws and the zod protocol, too slow for activation.
      const [{ LocalBackendLauncher }, { connectWebSocket }, { PROTOCOL_VERSION }] = await Promise.all([
        import('./backend/localLauncher'),
        import('./backend/wsConnection'),
        import('./protocol'),
      ]);
      if (!this.launcher || this.launcherKey !== key) {
        await this.launcher?.stop();
        const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
        this.remoteSync = undefined;
        this.launcher = target.kind === 'ssh'
          ? await sshLauncherFor(target, this.ext.extensionUri.fsPath, this.log, (m) => this.progressEmitter.fire(m))
          : new LocalBackendLauncher({ python, runsDir, cwd, logger: this.log });
        this.launcherKey = key;
      }
      if (target.kind === 'local') this.log.info(`backend: ${python} (from ${source}), runs in ${runsDir}`);
      const launcher = this.launcher;
      const { url, token, pid } = restart ? await launcher.restart() : await launcher.start();
      this.log.info(`backend pid ${pid} listening at ${url}`);
      if (target.kind === 'ssh' && 'host' in launcher && launcher.host && !this.remoteSync) {
        const { RemoteSync } = await import('./backend/sshSync');
        this.remoteSync = new RemoteSync(launcher.target, launcher.host);
      }
      const conn = await connectWebSocket({
        url,
        token,
        logger: this.log,
        reconnect: true,
        clientName: 'qlora-studio-vscode',
        // A server that died is started again before the connection retries.
        resolveEndpoint: async () => {
          const ep = await launcher.start();
          return { url: ep.url, token: ep.token };
        },
      });
      this.conn = conn;
      this.connSubs.push(
        conn.onRunEvent((ev: RunEvent) => this.handleEvent(ev)),
        conn.onStateChange((s: ConnectionState) => {
          this.log.debug(`backend connection: ${String(s)}`);
          this.setPhase(s);
        }),
      );
      // The connection already said hello; asking again is harmless and returns the capabilities.
      const hello = await conn.request('hello', { protocol: PROTOCOL_VERSION, client: 'qlora-studio-vscode', client_version: String(this.ext.extension.packageJSON.version ?? '') });
      this.device = deviceLabel(hello.capabilities);
      this.setPhase('connected');
      await this.refreshRuns();
      return conn;
    } catch (err) {
      this.setPhase('failed');
      throw err;
    }
  }

  private teardownConnection(): void {
    for (const s of this.connSubs) s.dispose();
    this.connSubs = [];
    this.conn?.dispose();
    this.conn = undefined;
    this.attached.clear();
  }

  private setPhase(p: BackendPhase): void {
    if (p === this.phaseValue) return;
    this.phaseValue = p;
    this.phaseEmitter.fire(p);
  }

  private handleEvent(ev: RunEvent): void {
    if (this.runs.apply(ev)) this.runsChangedEmitter.fire();
    this.runEvents.fire(ev);
  }

  /** Reloads the run list from the backend and attaches to every run so views get their events. */
  async refreshRuns(): Promise<RunInfo[]> {
    const conn = await this.backend();
    const { runs } = await conn.request('run.list', {});
    this.runs.upsertAll(runs);
    this.runsChangedEmitter.fire();
    await Promise.all(runs.map((r) => this.attach(r.run_id)));
    return runs;
  }

  /** Subscribes to a run's events once per connection, replaying everything after what we hold. */
  async attach(runId: string): Promise<void> {
    if (this.attached.has(runId)) return;
    const conn = await this.backend();
    this.attached.add(runId);
    try {
      await conn.attach(runId, this.runs.get(runId)?.lastSeq ?? 0);
    } catch (err) {
      this.attached.delete(runId);
      throw err;
    }
  }

  /** Resolves with the run once it reaches a terminal state (completed, failed, stopped, interrupted). */
  waitForRun(runId: string, timeoutMs = 10 * 60_000): Promise<RunRecord> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const r = this.runs.get(runId);
        if (r && isTerminal(r.state)) {
          done();
          resolve(r);
          return true;
        }
        return false;
      };
      const sub = this.onRunsChanged(() => check());
      const timer = setTimeout(() => {
        done();
        reject(new Error(`run ${runId} did not finish within ${Math.round(timeoutMs / 1000)} s (state: ${this.runs.get(runId)?.state ?? 'unknown'})`));
      }, timeoutMs);
      const done = () => {
        sub.dispose();
        clearTimeout(timer);
      };
      if (!check()) void this.attach(runId).catch((err: unknown) => this.log.warn(`attach ${runId}: ${String(err)}`));
    });
  }

  /**
   * Shows an error once per distinct text, with "Show Logs"; untrusted refusals get a plain
   * warning because the logs would not help.
   */
  async showError(err: unknown, context: string): Promise<void> {
    const text = err instanceof Error ? err.message : String(err);
    if (err instanceof UntrustedError) {
      void vscode.window.showWarningMessage(text);
      return;
    }
    this.log.error(`${context}: ${text}`);
    if (this.lastShownError === text) return;
    this.lastShownError = text;
    const pick = await vscode.window.showErrorMessage(`QLoRA: ${context}: ${text}`, 'Show Logs');
    if (this.lastShownError === text) this.lastShownError = undefined;
    if (pick === 'Show Logs') this.log.show();
  }

  /**
   * Releases everything and stops the backend this window started; runs live in their own
   * processes and keep training, and the next window re-attaches to them.
   */
  dispose(): void {
    this.teardownConnection();
    void this.launcher?.stop();
    for (const d of this.subs.splice(0).reverse()) d.dispose();
  }
}
