/**
 * Owns the single playground panel: created on demand (its module loads on first use), forgotten
 * when closed.
 */
import type * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { PlaygroundPanel, PlaygroundRun, PlaygroundTarget } from './playground';

/** The one playground panel's owner. */
export class PlaygroundHost implements vscode.Disposable {
  private panel: PlaygroundPanel | undefined;
  constructor(private readonly ctx: Ctx) {}

  /** Shows the panel for `target`, creating it when needed. */
  async open(target: PlaygroundTarget): Promise<void> {
    if (!this.panel) {
      const { PlaygroundPanel: Panel } = await import('./playground');
      this.panel ??= new Panel(this.ctx, target, () => (this.panel = undefined));
    }
    this.panel.show(target);
  }

  /** Test hook: runs a prompt through the open panel's own UI. */
  runPrompt(prompt: string): Promise<PlaygroundRun> {
    if (!this.panel) return Promise.reject(new Error('the playground is not open: run "QLoRA: Open Playground" first'));
    return this.panel.runPrompt(prompt);
  }

  dispose(): void {
    this.panel?.dispose();
  }
}
