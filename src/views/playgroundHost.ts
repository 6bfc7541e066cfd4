/**
 * Owns the single playground panel: created on demand (its module loads on first use), forgotten
 * when closed, and restored after a window reload from the state its webview kept (the last model,
 * adapters, mode and chat).
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { PlaygroundPanel, PlaygroundRun, PlaygroundTarget } from './playground';

/** The webview type of the panel (the same string as `PLAYGROUND_VIEW_TYPE`, without loading that module). */
const VIEW_TYPE = 'qloraStudio.playground';

/** The one playground panel's owner. */
export class PlaygroundHost implements vscode.Disposable {
  private panel: PlaygroundPanel | undefined;
  private readonly serializer: vscode.Disposable;
  constructor(private readonly ctx: Ctx) {
    this.serializer = vscode.window.registerWebviewPanelSerializer(VIEW_TYPE, {
      deserializeWebviewPanel: (panel, state) => this.restore(panel, state),
    });
  }

  /** Shows the panel for `target`, creating it when needed. */
  async open(target: PlaygroundTarget): Promise<void> {
    if (!this.panel) {
      const { PlaygroundPanel: Panel } = await import('./playground');
      this.panel ??= new Panel(this.ctx, target, () => (this.panel = undefined));
    }
    this.panel.show(target);
  }

  /** What the open panel shows (model, labelled adapters, mode), if one is open. */
  current(): PlaygroundTarget | undefined {
    return this.panel?.current();
  }

  /** Test hook: runs a prompt through the open panel's own UI. */
  runPrompt(prompt: string): Promise<PlaygroundRun> {
    if (!this.panel) return Promise.reject(new Error('the playground is not open: run "QLoRA: Open Playground" first'));
    return this.panel.runPrompt(prompt);
  }

  private async restore(webviewPanel: vscode.WebviewPanel, state: unknown): Promise<void> {
    const { PlaygroundPanel: Panel, savedTarget } = await import('./playground');
    const target = savedTarget(state);
    if (!target || this.panel) {
      this.ctx.log.info('playground: nothing to restore after the reload; closing the empty panel');
      webviewPanel.dispose();
      return;
    }
    this.panel = new Panel(this.ctx, target, () => (this.panel = undefined), webviewPanel);
    this.panel.show(target);
  }

  dispose(): void {
    this.serializer.dispose();
    this.panel?.dispose();
  }
}
