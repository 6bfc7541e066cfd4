/**
 * The progress notification while a run loads: hub downloads (bytes done of total), tokenizer,
 * data, model loading, quantizing. One notification per run, closed when it trains or ends.
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { LoadingTracker, type LoadingUpdate } from '../runs/loadingProgress';
import { shortRunLabel } from '../runs/runLabel';

interface OpenNote {
  report: (u: { message: string; percent?: number }) => void;
  close: () => void;
}

/** Follows the run events of the Ctx and shows the notifications. */
export function registerLoadingProgress(ctx: Ctx): void {
  const tracker = new LoadingTracker();
  const notes = new Map<string, OpenNote>();
  const handle = (u: LoadingUpdate): void => {
    switch (u.kind) {
      case 'open':
        notes.set(u.runId, openNote(u.runId));
        notes.get(u.runId)!.report(u);
        return;
      case 'update':
        notes.get(u.runId)?.report(u);
        return;
      case 'close':
        notes.get(u.runId)?.close();
        notes.delete(u.runId);
        return;
      default: {
        const never: never = u;
        return never;
      }
    }
  };
  ctx.push(
    ctx.onRunEvent((ev) => {
      const u = tracker.apply(ev);
      if (u) handle(u);
    }),
    { dispose: () => notes.forEach((n) => n.close()) },
  );
}

function openNote(runId: string): OpenNote {
  let closed = false;
  let close: () => void = () => (closed = true);
  let reporter: vscode.Progress<{ message?: string; increment?: number }> | undefined;
  let shown = 0;
  const pending: Array<{ message: string; percent?: number }> = [];
  const report = (u: { message: string; percent?: number }): void => {
    if (!reporter) {
      pending.push(u);
      return;
    }
    // The bar only moves forward: a later phase starting at 0% keeps it where it is.
    const increment = u.percent !== undefined && u.percent > shown ? u.percent - shown : undefined;
    if (increment) shown = u.percent!;
    reporter.report({ message: u.message, increment });
  };
  void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `QLoRA run ${shortRunLabel(runId)}` }, (progress) => {
    reporter = progress;
    for (const u of pending.splice(0)) report(u);
    return new Promise<void>((resolve) => {
      if (closed) resolve();
      else close = resolve;
    });
  });
  return { report, close: () => close() };
}
