/**
 * The one object that owns the extension's lifetimes: disposables, the log channel, settings,
 * the backend (LocalBackend: started on first need, every start and restart through its one
 * serializer; its launcher is the local server or an SSH host's, as the chosen target says) and
 * the run state fed by its events. Commands and views receive it; nothing else
 * holds state.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { BackendConnection } from './backend/connection';
import type { LaunchSpec, LocalBackend } from './backend/localBackend';
import { type BackendTarget, sshLauncherFor, targetKey, targetLabel, TARGET_STATE_KEY } from './backend/remoteTarget';
import type { SshBackendLauncher } from './backend/sshLauncher';
import type { RemoteSync, SyncProgress } from './backend/sshSync';
import type { RunEvent, RunInfo } from './protocol';
import { isTerminal } from './protocol/states';
import { deviceLabel, type BackendPhase } from './runs/backendState';
import { RunsModel, type RunRecord } from './runs/runsModel';
import { readHfToken } from './secrets';
import { choosePython, RECIPE_GLOB, recipesOutsideRuns, SEARCH_EXCLUDE } from './util/paths';

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
  private local: LocalBackend | undefined;
  /** The SSH launcher the backend uses while the target is a host, and its file sync once connected. */
  private remote: { launcher: SshBackendLauncher; sync?: RemoteSync } | undefined;
  private readonly progressEmitter = new vscode.EventEmitter<string>();
  /** Progress of an SSH backend's bootstrap, start and file sync (for a notification). */
  readonly onBackendProgress = this.progressEmitter.event;
  private phaseValue: BackendPhase = 'disconnected';
  private lastShownError: string | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  device: string | undefined;
  /** The devices the connected backend's hello reported (the recipe language server compares memory with them). */
  devices: ReadonlyArray<{ type: string; name: string; memory_total_mb: number | null }> = [];
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

  /**
   * The user's `qloraStudio.runsDir`, absolute, when set: sent with `run.start` so the backend
   * puts runs there instead of the recipe's `output.dir`. A local folder means nothing to an SSH
   * host, so there the runs go where the synced recipe's `output.dir` says.
   */
  runsDirOverride(): string | undefined {
    return this.target.kind === 'local' && this.settings().runsDir.trim() ? this.runsDir() : undefined;
  }

  /** The local server's home (its .server/ state): the setting, else `<first workspace folder>/runs`. */
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
    return (await this.localBackend()).connection();
  }

  /** Stops the current backend (if this window started it) and starts a fresh one. */
  async restartBackend(): Promise<BackendConnection> {
    if (!this.trusted) throw new UntrustedError('Restarting the QLoRA backend');
    return (await this.localBackend()).restart();
  }

  /**
   * Restarts the local backend only when one is running (a new token or setting applies to the
   * next start anyway); an SSH host's server does not take this machine's environment.
   */
  async restartBackendIfRunning(): Promise<void> {
    if (this.target.kind === 'local' && this.local && this.phaseValue !== 'disconnected' && this.trusted) await this.restartBackend();
  }

  /** Where the backend runs: local, or the SSH host picked with Connect Backend (kept per workspace). */
  get target(): BackendTarget {
    return this.ext.workspaceState.get<BackendTarget>(TARGET_STATE_KEY) ?? { kind: 'local' };
  }

  /** The SSH host's label while it is the target (undefined for the local backend). */
  remoteLabel(): string | undefined {
    return targetLabel(this.target);
  }

  /** What the SSH host's bootstrap found missing, each with the command that fixes it. */
  remoteProblems(): Array<{ what: string; fix: string }> {
    return this.target.kind === 'ssh' ? (this.remote?.launcher.host?.report.problems ?? []) : [];
  }

  /**
   * Switches to another backend (local or an SSH host) and connects to it, through the backend's
   * one serializer; runs on the old one go on.
   */
  async connectTo(target: BackendTarget): Promise<BackendConnection> {
    if (!this.trusted) throw new UntrustedError('Connecting the QLoRA backend');
    const changed = targetKey(target, '') !== targetKey(this.target, '');
    await this.ext.workspaceState.update(TARGET_STATE_KEY, target);
    if (changed) {
      // The runs shown are the old backend's; the new one's arrive with its run list.
      this.runs.clear();
      this.runsChangedEmitter.fire();
    }
    return (await this.localBackend()).reload();
  }

  /**
   * The path the backend knows a local recipe by: the same path for a local backend; for an SSH
   * backend the recipe and its inputs are synced to the host first (only what changed).
   */
  async backendRecipePath(recipe: string, onProgress?: (p: SyncProgress) => void): Promise<string> {
    const sync = await this.remoteSync();
    if (!sync) return recipe;
    const res = await sync.syncRecipe(recipe, onProgress);
    this.log.info(`[ssh] synced ${res.files} file(s) for ${recipe}: ${res.uploaded} sent (${res.bytesSent} bytes) in ${res.seconds.toFixed(1)} s`);
    return res.remoteRecipe;
  }

  /** Copies a folder of the SSH host (an adapter) into a local folder; only for an SSH backend. */
  async downloadFromBackend(remotePath: string, localParent: string, onBytes?: (n: number) => void): Promise<{ dir: string; bytes: number }> {
    const sync = await this.remoteSync();
    if (!sync) throw new Error('the backend runs on this machine: its files are already here');
    return sync.download(remotePath, localParent, onBytes);
  }

  /** The connected SSH host's file sync; undefined for a local backend. */
  private async remoteSync(): Promise<RemoteSync | undefined> {
    await this.backend();
    const remote = this.target.kind === 'ssh' ? this.remote : undefined;
    const host = remote?.launcher.host;
    if (!remote || !host) return undefined;
    if (!remote.sync) {
      const { RemoteSync: Sync } = await import('./backend/sshSync');
      remote.sync = new Sync(remote.launcher.target, host);
    }
    return remote.sync;
  }

  private async localBackend(): Promise<LocalBackend> {
    if (this.local) return this.local;
    // Loaded on first need: the client pulls in ws and the zod protocol, too slow for activation.
    const { LocalBackend: Backend } = await import('./backend/localBackend');
    this.local ??= new Backend({
      launchSpec: () => this.launchSpec(),
      logger: this.log,
      clientName: 'qlora-studio-vscode',
      clientVersion: String(this.ext.extension.packageJSON.version ?? ''),
      onPhase: (p) => this.setPhase(p),
      onEvent: (ev) => this.handleEvent(ev),
      onConnected: async (conn) => {
        this.device = deviceLabel(conn.hello.capabilities);
        this.devices = conn.hello.capabilities.devices;
        await this.refreshRuns();
      },
    });
    return this.local;
  }

  /**
   * What the next server start needs. The Hugging Face token goes into the server's environment
   * only (runs inherit it); the key carries a digest of it so a new token means a new server.
   */
  private async launchSpec(): Promise<LaunchSpec> {
    const target = this.target;
    if (target.kind === 'ssh') {
      return {
        kind: 'remote',
        key: targetKey(target, ''),
        create: async () => {
          const launcher = await sshLauncherFor(target, this.ext.extensionUri.fsPath, this.log, (m) => this.progressEmitter.fire(m));
          this.remote = { launcher };
          return launcher;
        },
      };
    }
    this.remote = undefined;
    const { python, source } = await this.python();
    const runsDir = this.runsDir();
    const token = await readHfToken(this.ext.secrets);
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (token) env['HF_TOKEN'] = token;
    const digest = token ? createHash('sha256').update(token).digest('hex').slice(0, 12) : '';
    this.log.info(`backend: ${python} (from ${source}), server home ${runsDir}${token ? ', Hugging Face token set' : ''}`);
    return { python, runsDir, cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath, env, key: targetKey(target, `${python}\0${runsDir}\0${digest}`) };
  }

  private setPhase(p: BackendPhase): void {
    if (p === this.phaseValue) return;
    this.phaseValue = p;
    this.phaseEmitter.fire(p);
  }

  private handleEvent(ev: RunEvent): void {
    if (this.runs.apply(ev)) this.runsChangedEmitter.fire();
    this.runEvents.fire(ev);
    // A run that changed state may have become resumable (or stopped being so): ask the backend.
    if (ev.type === 'status') this.scheduleRefresh();
  }

  private scheduleRefresh(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => void this.refreshRuns().catch((err: unknown) => this.log.warn(`refreshing runs: ${String(err)}`)), 300);
  }

  /** Reloads the run list from the backend and attaches to every run so views get their events. */
  async refreshRuns(): Promise<RunInfo[]> {
    const conn = await this.backend();
    // Runs the CLI made next to a recipe live in that recipe's runs folder: the backend lists those too.
    const recipes = this.target.kind === 'local' ? await this.workspaceRecipes() : [];
    const { runs } = await conn.request('run.list', recipes.length ? { recipe_paths: recipes } : {});
    this.runs.upsertAll(runs);
    this.runsChangedEmitter.fire();
    await Promise.all(runs.map((r) => this.attach(r.run_id)));
    return runs;
  }

  /** The workspace's recipes, without the frozen copies inside run folders. */
  private async workspaceRecipes(): Promise<string[]> {
    const files = await vscode.workspace.findFiles(RECIPE_GLOB, SEARCH_EXCLUDE, 500);
    const runDirs = this.runs.list().flatMap((r) => (r.run_dir ? [r.run_dir] : []));
    return recipesOutsideRuns(files.map((f) => f.fsPath), runDirs);
  }

  /** Subscribes to a run's events; the connection replays what was not delivered yet, then follows it. */
  async attach(runId: string): Promise<void> {
    const conn = await this.backend();
    if (!conn.isWatching(runId)) await conn.attach(runId);
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
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    void this.local?.dispose();
    for (const d of this.subs.splice(0).reverse()) d.dispose();
  }
}
