/**
 * One loss webview as the host talks to it, wherever it is shown (the side view or the editor
 * panel): its page, whether it is ready for messages, the replay of what it missed, exports, and
 * the test hook's round trip that reads back what the chart holds.
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { HostToLoss, LossToHost } from '../protocol/webview';
import { assertNever } from '../util/assertNever';
import { buildWebviewHtml, webviewOptions } from './html';
import type { MetricStore } from './metricStore';

/** What a loss webview holds for a run: its points by metric, the steps it drew, the runs shown. */
export interface LossPoints {
  points: Record<string, Array<[number, number]>>;
  drawnSteps: number;
  /** The runs drawn, each with its line colour. */
  shown: Array<{ runId: string; color: string }>;
  /** The loss chart's size in CSS pixels. */
  chart: { width: number; height: number };
}

/** What a link needs from its owner: the shared events and what to show once the page is ready. */
export interface LossLinkHost {
  readonly store: MetricStore;
  /** Messages that put a freshly loaded page in its place (focus or overlay). */
  onReady(link: LossLink): HostToLoss[];
}

/** The host's end of one loss webview. */
export class LossLink {
  private ready = false;
  private readonly waiters = new Map<number, (answer: LossPoints) => void>();
  private readonly readyWaiters: Array<() => void> = [];
  private nextRequest = 1;

  constructor(
    private readonly ctx: Ctx,
    private readonly proto: typeof import('../protocol/webview'),
    readonly webview: vscode.Webview,
    private readonly host: LossLinkHost,
    subs: vscode.Disposable[],
  ) {
    webview.options = webviewOptions(ctx.ext.extensionUri);
    webview.html = buildWebviewHtml({ webview, extensionUri: ctx.ext.extensionUri, bundle: 'loss', title: 'QLoRA Loss' });
    webview.onDidReceiveMessage((raw: unknown) => this.onMessage(raw), undefined, subs);
  }

  /** A hidden webview drops messages: stop sending until it reports ready again. */
  hidden(): void {
    this.ready = false;
  }

  /** Validates and sends one message (only once the page said it is ready). */
  post(msg: HostToLoss): void {
    if (!this.ready) return;
    // Validate outgoing messages too, so a host bug shows in the log rather than as a blank chart.
    const checked = this.proto.hostToLoss.safeParse(msg);
    if (!checked.success) {
      this.ctx.log.error(`refusing to send a malformed message to the loss view: ${checked.error.message}`);
      return;
    }
    void this.webview.postMessage(checked.data);
  }

  /** Sends the run list and states. */
  postRuns(): void {
    this.post({ type: 'runs', runs: this.ctx.runs.list().map((r) => ({ runId: r.run_id, state: r.state })) });
  }

  /** Test hook: what the chart holds for a run, read by a round trip once the page is ready. */
  async points(runId: string, timeoutMs: number): Promise<LossPoints> {
    await this.whenReady(timeoutMs);
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

  private onMessage(raw: unknown): void {
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
        for (const { runId, events } of this.host.store.missing(msg.lastSeq)) this.post({ type: 'events', runId, events });
        for (const m of this.host.onReady(this)) this.post(m);
        for (const w of this.readyWaiters.splice(0)) w();
        return;
      case 'points': {
        const { requestId, points, drawnSteps, shown, chart } = msg;
        this.waiters.get(requestId)?.({ points, drawnSteps, shown, chart });
        this.waiters.delete(requestId);
        return;
      }
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
}
