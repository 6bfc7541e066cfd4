/**
 * Per-run logs as read-only virtual documents (`qlora-run-log:/<run id>.log`), written from the
 * run's own events (log lines, progress, errors, state changes): what the trainer said about one
 * run, apart from the backend's channel. Attaching replays a run's events, so a log is whole again
 * after a reload.
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { RunEvent } from '../protocol';

/** The URI scheme of run logs. */
export const RUN_LOG_SCHEME = 'qlora-run-log';

/** One log line for an event, or undefined for events that say nothing a reader needs (metrics). */
export function logLineOf(ev: RunEvent): string | undefined {
  const at = new Date(ev.time * 1000).toISOString().replace('T', ' ').slice(0, 19);
  switch (ev.type) {
    case 'log':
      return `${at} [${ev.data.level}] ${ev.data.message}`;
    case 'progress':
      return `${at} [${ev.data.phase}] ${ev.data.message}`;
    case 'error':
      return `${at} [error:${ev.data.kind}] ${ev.data.message}${ev.data.hint ? `\n    hint: ${ev.data.hint}` : ''}`;
    case 'status': {
      const why = ev.data.message ?? ev.data.reason;
      return `${at} [state] ${ev.data.state}${why ? `: ${why}` : ''}`;
    }
    case 'checkpoint':
      return `${at} [checkpoint] step ${ev.data.step}: ${ev.data.path}`;
    case 'eval':
      return `${at} [eval] step ${ev.data.step}: eval loss ${ev.data.eval_loss.toPrecision(4)}`;
    case 'metrics':
      return undefined;
    default: {
      const never: never = ev;
      return never;
    }
  }
}

/** Keeps each run's log lines and serves them as documents. */
export class RunLogs implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly lines = new Map<string, string[]>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private readonly subs: vscode.Disposable[];

  constructor(ctx: Ctx) {
    this.subs = [
      this.changed,
      vscode.workspace.registerTextDocumentContentProvider(RUN_LOG_SCHEME, this),
      ctx.onRunEvent((ev) => this.add(ev)),
    ];
  }

  /** The document URI of a run's log. */
  static uri(runId: string): vscode.Uri {
    return vscode.Uri.from({ scheme: RUN_LOG_SCHEME, path: `/${runId}.log` });
  }

  /** The log text of one run (empty when it said nothing yet). */
  text(runId: string): string {
    return (this.lines.get(runId) ?? []).join('\n') + '\n';
  }

  /** VS Code asks for a document's content. */
  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.text(uri.path.replace(/^\//, '').replace(/\.log$/, ''));
  }

  /** Opens a run's log in an editor. */
  async show(runId: string): Promise<void> {
    const doc = await vscode.workspace.openTextDocument(RunLogs.uri(runId));
    await vscode.window.showTextDocument(doc, { preview: false });
  }

  private add(ev: RunEvent): void {
    const line = logLineOf(ev);
    if (line === undefined) return;
    let list = this.lines.get(ev.run_id);
    if (!list) this.lines.set(ev.run_id, (list = []));
    list.push(line);
    this.changed.fire(RunLogs.uri(ev.run_id));
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
  }
}
