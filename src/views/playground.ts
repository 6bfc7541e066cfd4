/**
 * Host side of the playground (a webview panel): streams the backend's `generate` for the base
 * model and for base+adapter side by side, and stops both on request.
 */
import * as vscode from 'vscode';
import type { BackendConnection } from '../backend/connection';
import type { Ctx } from '../ctx';
import { assertNever, hostToPlayground, parseMessage, playgroundToHost, type HostToPlayground, type PlaygroundToHost, type Side } from '../protocol/webview';
import { buildWebviewHtml, webviewOptions } from './html';
import type { PlaygroundMode, SamplingParams } from '../protocol/webview';

/** The panel's view type; its serializer restores it after a reload. */
export const PLAYGROUND_VIEW_TYPE = 'qloraStudio.playground';

/** What the playground opens with. */
export interface PlaygroundTarget {
  baseModel: string;
  adapters: Array<{ label: string; path: string }>;
  adapter: string | null;
  defaults: SamplingParams;
  mode: PlaygroundMode;
}

/** What the playground showed for one prompt. */
export interface PlaygroundRun {
  adapter: string | null;
  mode: PlaygroundMode;
  outputs: { base: string; adapter: string };
  error: string;
}

/** Reads the target a restored panel's webview saved, or undefined when it saved none that parses. */
export function savedTarget(state: unknown): PlaygroundTarget | undefined {
  const init = state && typeof state === 'object' ? (state as { init?: unknown }).init : undefined;
  const parsed = hostToPlayground.safeParse(init);
  if (!parsed.success || parsed.data.type !== 'init') return undefined;
  const { baseModel, adapters, adapter, defaults, mode } = parsed.data;
  return { baseModel, adapters, adapter, defaults, mode };
}

export class PlaygroundPanel implements vscode.Disposable {
  private readonly panel: vscode.WebviewPanel;
  private readonly running = new Map<number, AbortController>();
  private readonly subs: vscode.Disposable[] = [];
  private disposed = false;
  private ready = false;
  private readonly readyWaiters: Array<() => void> = [];
  private readonly automation = new Map<number, (r: PlaygroundRun) => void>();
  private nextRequest = 1;

  constructor(
    private readonly ctx: Ctx,
    private target: PlaygroundTarget,
    private readonly onClosed: () => void,
    restored?: vscode.WebviewPanel,
  ) {
    const options = { ...webviewOptions(ctx.ext.extensionUri), retainContextWhenHidden: true };
    this.panel = restored ?? vscode.window.createWebviewPanel(PLAYGROUND_VIEW_TYPE, 'QLoRA Playground', vscode.ViewColumn.Active, options);
    if (restored) restored.webview.options = options;
    this.panel.webview.html = buildWebviewHtml({ webview: this.panel.webview, extensionUri: ctx.ext.extensionUri, bundle: 'playground', title: 'QLoRA Playground' });
    this.panel.webview.onDidReceiveMessage((raw: unknown) => this.onMessage(raw), undefined, this.subs);
    this.panel.onDidDispose(() => this.dispose(), undefined, this.subs);
  }

  /** The target the panel was last shown with. */
  current(): PlaygroundTarget {
    return this.target;
  }

  /** Shows the panel with a new model/adapter choice. */
  show(target: PlaygroundTarget): void {
    this.target = target;
    this.panel.reveal();
    this.sendInit();
  }

  /**
   * Test hook: types `prompt` into the view and presses Generate through the view's own code,
   * resolving with what each side shows once both are done.
   */
  async runPrompt(prompt: string, timeoutMs = 5 * 60_000): Promise<PlaygroundRun> {
    if (!this.ready) await new Promise<void>((resolve) => this.readyWaiters.push(resolve));
    const requestId = this.nextRequest++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.automation.delete(requestId);
        reject(new Error(`the playground did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      this.automation.set(requestId, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.post({ type: 'automation', requestId, prompt });
    });
  }

  private sendInit(): void {
    this.post({ type: 'init', ...this.target });
  }

  private onMessage(raw: unknown): void {
    const parsed = parseMessage(playgroundToHost, raw);
    if (!parsed.ok) {
      this.ctx.log.warn(`playground sent a malformed message: ${parsed.error}`);
      return;
    }
    const msg: PlaygroundToHost = parsed.msg;
    switch (msg.type) {
      case 'ready':
        this.sendInit();
        this.ready = true;
        for (const w of this.readyWaiters.splice(0)) w();
        return;
      case 'generate':
        void this.generate(msg);
        return;
      case 'stop':
        this.running.get(msg.genId)?.abort();
        return;
      case 'automationResult':
        this.automation.get(msg.requestId)?.({ adapter: msg.adapter, mode: msg.mode, outputs: msg.outputs, error: msg.error });
        this.automation.delete(msg.requestId);
        return;
      case 'error':
        this.ctx.log.error(`playground: ${msg.message}`);
        return;
      default:
        assertNever(msg);
    }
  }

  private async generate(msg: Extract<PlaygroundToHost, { type: 'generate' }>): Promise<void> {
    const abort = new AbortController();
    this.running.set(msg.genId, abort);
    const sides: Array<[Side, string | null]> = [['base', null]];
    if (msg.adapter) sides.push(['adapter', msg.adapter]);
    try {
      const conn = await this.ctx.backend();
      // One side after the other: two generations at once contend for the same device, and the
      // backend's lazy transformers imports are not safe to race (seen: ImportError).
      for (const [side, adapter] of sides) await this.generateSide(conn, msg, side, adapter, abort.signal);
    } catch (err) {
      for (const [side] of sides) this.post({ type: 'done', genId: msg.genId, side, stopped: false, error: errorText(err) });
      void this.ctx.showError(err, 'Playground could not reach the backend');
    } finally {
      this.running.delete(msg.genId);
    }
  }

  /** Streams one side into the view; always ends with a `done` for that side. */
  private async generateSide(
    conn: BackendConnection,
    msg: Extract<PlaygroundToHost, { type: 'generate' }>,
    side: Side,
    adapter: string | null,
    signal: AbortSignal,
  ): Promise<void> {
    if (signal.aborted) {
      this.post({ type: 'done', genId: msg.genId, side, stopped: true });
      return;
    }
    try {
      const prompt = msg.mode === 'chat' ? { messages: msg.messages ?? [] } : { prompt: msg.prompt ?? '' };
      await conn.request(
        'generate',
        { base_model: this.target.baseModel, adapter, ...prompt, ...msg.params },
        { signal, timeoutMs: 10 * 60_000, onPartial: (p) => this.post({ type: 'chunk', genId: msg.genId, side, text: p.text }) },
      );
      this.post({ type: 'done', genId: msg.genId, side, stopped: signal.aborted });
    } catch (err) {
      const stopped = signal.aborted;
      this.post({ type: 'done', genId: msg.genId, side, stopped, ...(stopped ? {} : { error: errorText(err) }) });
      if (!stopped) this.ctx.log.error(`generate (${side}): ${errorText(err)}`);
    }
  }

  private post(msg: HostToPlayground): void {
    const checked = hostToPlayground.safeParse(msg);
    if (!checked.success) {
      this.ctx.log.error(`refusing to send a malformed message to the playground: ${checked.error.message}`);
      return;
    }
    void this.panel.webview.postMessage(checked.data);
  }

  dispose(): void {
    // Reached twice when the user closes the panel (onDidDispose, then panel.dispose is a no-op).
    if (this.disposed) return;
    this.disposed = true;
    for (const a of this.running.values()) a.abort();
    this.running.clear();
    for (const d of this.subs.splice(0)) d.dispose();
    this.panel.dispose();
    this.onClosed();
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
