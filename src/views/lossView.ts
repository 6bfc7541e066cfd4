/**
 * Host side of the loss charts: the webview view in the QLoRA side bar and the full-size editor
 * panel that overlays several runs. Keeps every run's metrics and eval events so a re-shown,
 * reloaded or newly opened webview gets what it lacks, and forwards live events to both.
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { RunEvent } from '../protocol';
import type { HostToLoss } from '../protocol/webview';
import { LossLink, type LossPoints } from './lossWebview';
import { MetricStore } from './metricStore';

export type { LossPoints } from './lossWebview';

export const LOSS_VIEW_ID = 'qloraStudio.lossView';
/** The webview type of the editor panel. */
export const LOSS_PANEL_TYPE = 'qloraStudio.lossPanel';
/** How many runs the panel overlays when not told which. */
const PANEL_RUNS = 8;

export class LossViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  readonly store = new MetricStore();
  private view: { view: vscode.WebviewView; link: LossLink } | undefined;
  private panel: { panel: vscode.WebviewPanel; link: LossLink; runIds: string[] } | undefined;
  private proto: typeof import('../protocol/webview') | undefined;
  private focusRun: string | undefined;
  private readonly subs: vscode.Disposable[] = [];

  constructor(private readonly ctx: Ctx) {
    this.subs.push(
      ctx.onRunEvent((ev) => this.onEvent(ev)),
      ctx.onRunsChanged(() => this.links().forEach((l) => l.postRuns())),
    );
  }

  /** Called by VS Code each time the view becomes visible after being disposed (or first shown). */
  async resolveWebviewView(view: vscode.WebviewView): Promise<void> {
    // The message schemas load with the view, not at activation (zod is slow to initialise).
    this.proto ??= await import('../protocol/webview');
    const link = new LossLink(this.ctx, this.proto, view.webview, { store: this.store, onReady: () => this.sideFocus() }, this.subs);
    this.view = { view, link };
    // A hidden webview drops messages; it reports ready again when shown, and gets what it missed.
    view.onDidChangeVisibility(() => !view.visible && link.hidden(), undefined, this.subs);
    view.onDidDispose(() => this.view?.view === view && (this.view = undefined));
    this.replayAfterReload();
  }

  /** Shows the side view and makes `runId` the focused run. */
  async reveal(runId?: string): Promise<void> {
    if (runId) this.focusRun = runId;
    await vscode.commands.executeCommand(`${LOSS_VIEW_ID}.focus`);
    if (runId) this.view?.link.post({ type: 'focus', runId });
  }

  /** Opens (or brings forward) the editor panel overlaying `runIds`, by default the newest runs. */
  async openPanel(runIds?: readonly string[]): Promise<void> {
    this.proto ??= await import('../protocol/webview');
    const ids = runIds?.length ? [...runIds] : this.ctx.runs.list().slice(0, PANEL_RUNS).map((r) => r.run_id);
    if (this.panel) {
      this.panel.runIds = ids;
      this.panel.panel.reveal();
      this.panel.link.post({ type: 'overlay', runIds: ids });
      return;
    }
    const panel = vscode.window.createWebviewPanel(LOSS_PANEL_TYPE, 'QLoRA Loss', vscode.ViewColumn.Active, { retainContextWhenHidden: true });
    // The overlay is set when the page first loads; later readies (tab shown again) keep the user's picks.
    let placed = false;
    const onReady = (): HostToLoss[] => (placed ? [] : ((placed = true), [{ type: 'overlay', runIds: this.panel?.runIds ?? ids }]));
    const link = new LossLink(this.ctx, this.proto, panel.webview, { store: this.store, onReady }, this.subs);
    this.panel = { panel, link, runIds: ids };
    panel.onDidChangeViewState(() => !panel.visible && link.hidden(), undefined, this.subs);
    panel.onDidDispose(() => this.panel?.panel === panel && (this.panel = undefined), undefined, this.subs);
    this.replayAfterReload();
  }

  /** Test hook: the points the side view's chart holds for a run, by metric, read by a round trip. */
  async pointsInView(runId: string, timeoutMs = 15_000): Promise<LossPoints> {
    if (!this.view?.view.visible) await vscode.commands.executeCommand(`${LOSS_VIEW_ID}.focus`);
    const deadline = Date.now() + timeoutMs;
    while (!this.view && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (!this.view) throw new Error(`the loss view did not open within ${timeoutMs} ms`);
    return this.view.link.points(runId, timeoutMs);
  }

  /** Test hook: what the editor panel draws (its runs and colours), or undefined when it is closed. */
  async pointsInPanel(runId: string, timeoutMs = 15_000): Promise<LossPoints | undefined> {
    return this.panel?.link.points(runId, timeoutMs);
  }

  /** After a reload the host is empty: replay every run from the backend when one is allowed. */
  private replayAfterReload(): void {
    if (this.ctx.trusted && this.store.empty) {
      void this.ctx.refreshRuns().catch((err: unknown) => this.ctx.log.warn(`loss view could not list runs: ${String(err)}`));
    }
  }

  /** After a reload nothing was focused yet: the run that is still going is the one to watch. */
  private sideFocus(): HostToLoss[] {
    const focus = this.focusRun ?? this.ctx.runs.activeRun()?.run_id;
    return focus ? [{ type: 'focus', runId: focus }] : [];
  }

  private links(): LossLink[] {
    return [this.view?.link, this.panel?.link].filter((l): l is LossLink => !!l);
  }

  private onEvent(ev: RunEvent): void {
    const item = this.store.add(ev);
    if (item) for (const l of this.links()) l.post({ type: 'events', runId: ev.run_id, events: [item] });
  }

  dispose(): void {
    this.panel?.panel.dispose();
    for (const d of this.subs.splice(0)) d.dispose();
  }
}
