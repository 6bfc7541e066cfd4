/**
 * Host side of the loss view (a webview view in the QLoRA container): keeps every run's metrics
 * and eval events so a re-shown or reloaded view gets what it lacks, forwards live events, saves
 * exports, and answers the test hook that reads back what the chart holds.
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { HostToLoss, LossToHost } from '../protocol/webview';
import { assertNever } from '../util/assertNever';
import type { RunEvent } from '../protocol';
import { buildWebviewHtml, webviewOptions } from './html';
import { MetricStore } from './metricStore';

export const LOSS_VIEW_ID = 'qloraStudio.lossView';

/** What the loss view's webview holds for a run: every point by metric, and how many steps it drew. */
export interface LossPoints {
  points: Record<string, Array<[number, number]>>;
  drawnSteps: number;
}

export class LossViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  private ready = false;
  private readonly events = new MetricStore();
  private readonly waiters = new Map<number, (answer: LossPoints) => void>();
  private readonly readyWaiters: Array<() => void> = [];
  private nextRequest = 1;
  private proto: typeof import('../protocol/webview') | undefined;
  private focusRun: string | undefined;
  private readonly subs: vscode.Disposable[] = [];

  constructor(private readonly ctx: Ctx) {
    this.subs.push(
      ctx.onRunEvent((ev) => this.onEvent(ev)),
      ctx.onRunsChanged(() => this.postRuns()),
    );
  }

  /** Called by VS Code each time the view becomes visible after being disposed (or first shown). */
  async resolveWebviewView(view: vscode.WebviewView): Promise<void> {
    // The message schemas load with the view, not at activation (zod is slow to initialise).
    this.proto ??= await import('../protocol/webview');
    this.view = view;
    this.ready = false;
    view.webview.options = webviewOptions(this.ctx.ext.extensionUri);
    view.webview.html = buildWebviewHtml({ webview: view.webview, extensionUri: this.ctx.ext.extensionUri, bundle: 'loss', title: 'QLoRA Loss' });
    view.webview.onDidReceiveMessage((raw: unknown) => this.onMessage(raw), undefined, this.subs);
    // A hidden webview drops messages: stop sending until it reports ready again (it does when
    // shown, whether its content was kept or rebuilt), then replay what it missed.
    view.onDidChangeVisibility(
      () => {
        if (this.view === view && !view.visible) this.ready = false;
      },
      undefined,
      this.subs,
    );
    view.onDidDispose(() => {
      if (this.view === view) {
        this.view = undefined;
        this.ready = false;
      }
    });
    // A reload leaves the host empty: replay every run from the backend when one is allowed.
    if (this.ctx.trusted && this.events.empty) {
      void this.ctx.refreshRuns().catch((err: unknown) => this.ctx.log.warn(`loss view could not list runs: ${String(err)}`));
    }
  }

  /** Shows the view and makes `runId` the focused run. */
  async reveal(runId?: string): Promise<void> {
    if (runId) this.focusRun = runId;
    await vscode.commands.executeCommand(`${LOSS_VIEW_ID}.focus`);
    if (runId) this.post({ type: 'focus', runId });
  }

  /** Test hook: the points the webview's chart holds for a run, by metric, read by a round trip. */
  async pointsInView(runId: string, timeoutMs = 15_000): Promise<LossPoints> {
    if (!this.view || !this.view.visible || !this.ready) {
      await vscode.commands.executeCommand(`${LOSS_VIEW_ID}.focus`);
      await this.whenReady(timeoutMs);
    }
    const requestId = this.nextRequest++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(requestId);
        reject(new Error(`the loss view did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(requestId, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      this.post({ type: 'getPoints', requestId, runId });
    });
  }

  private whenReady(timeoutMs: number): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the loss view did not load within ${timeoutMs} ms`)), timeoutMs);
      this.readyWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private onEvent(ev: RunEvent): void {
    const item = this.events.add(ev);
    if (item && this.ready) this.post({ type: 'events', runId: ev.run_id, events: [item] });
  }

  private onMessage(raw: unknown): void {
    if (!this.proto) return;
    const parsed = this.proto.parseMessage(this.proto.lossToHost, raw);
    if (!parsed.ok) {
      this.ctx.log.warn(`loss view sent a malformed message: ${parsed.error}`);
      return;
    }
    const msg: LossToHost = parsed.msg;
    switch (msg.type) {
      case 'ready':
        this.ready = true;
        this.postRuns();
        for (const { runId, events } of this.events.missing(msg.lastSeq)) this.post({ type: 'events', runId, events });
        {
          // After a reload nothing was focused yet: the run that is still going is the one to watch.
          const focus = this.focusRun ?? this.ctx.runs.activeRun()?.run_id;
          if (focus) this.post({ type: 'focus', runId: focus });
        }
        for (const w of this.readyWaiters.splice(0)) w();
        return;
      case 'points':
        this.waiters.get(msg.requestId)?.({ points: msg.points, drawnSteps: msg.drawnSteps });
        this.waiters.delete(msg.requestId);
        return;
      case 'exportCsv':
        void this.save(Buffer.from(msg.csv, 'utf8'), 'loss.csv', { CSV: ['csv'] });
        return;
      case 'exportPng':
        void this.save(Buffer.from(msg.dataUrl.slice(msg.dataUrl.indexOf(',') + 1), 'base64'), 'loss.png', { PNG: ['png'] });
        return;
      case 'error':
        this.ctx.log.error(`loss view: ${msg.message}`);
        return;
      default:
        assertNever(msg);
    }
  }

  private async save(bytes: Uint8Array, name: string, filters: Record<string, string[]>): Promise<void> {
    const root = vscode.workspace.workspaceFolders?.[0]?.uri;
    const target = await vscode.window.showSaveDialog({ defaultUri: root ? vscode.Uri.joinPath(root, name) : undefined, filters });
    if (!target) return;
    try {
      await vscode.workspace.fs.writeFile(target, bytes);
      void vscode.window.showInformationMessage(`Saved ${target.fsPath}`);
    } catch (err) {
      await this.ctx.showError(err, `Could not save ${target.fsPath}`);
    }
  }

  private postRuns(): void {
    if (!this.ready) return;
    this.post({ type: 'runs', runs: this.ctx.runs.list().map((r) => ({ runId: r.run_id, state: r.state })) });
  }

  private post(msg: HostToLoss): void {
    // Validate outgoing messages too, so a host bug shows in the log rather than as a blank chart.
    if (!this.proto) return;
    const checked = this.proto.hostToLoss.safeParse(msg);
    if (!checked.success) {
      this.ctx.log.error(`refusing to send a malformed message to the loss view: ${checked.error.message}`);
      return;
    }
    void this.view?.webview.postMessage(checked.data);
  }

  dispose(): void {
    for (const d of this.subs.splice(0)) d.dispose();
  }
}
