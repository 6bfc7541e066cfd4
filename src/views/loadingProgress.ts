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

/** A run that fails or trains within this time shows no loading notification at all (no flash). */
const SHOW_AFTER_MS = 1000;

function openNote(runId: string): OpenNote {
  let closed = false;
  let resolveShown: (() => void) | undefined;
  let reporter: vscode.Progress<{ message?: string; increment?: number }> | undefined;
  let shown = 0;
  let latest: { message: string; percent?: number } | undefined;
  const report = (u: { message: string; percent?: number }): void => {
    latest = u;
    if (!reporter) return;
    // The bar only moves forward: a later phase starting at 0% keeps it where it is.
    const increment = u.percent !== undefined && u.percent > shown ? u.percent - shown : undefined;
    if (increment) shown = u.percent!;
    reporter.report({ message: u.message, increment });
  };
  const timer = setTimeout(() => {
    if (closed) return;
    void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `QLoRA run ${shortRunLabel(runId)}` }, (progress) => {
      reporter = progress;
      if (latest) report(latest);
      return new Promise<void>((resolve) => {
        if (closed) resolve();
        else resolveShown = resolve;
      });
    });
  }, SHOW_AFTER_MS);
  return {
    report,
    close: () => {
      closed = true;
      clearTimeout(timer);
      resolveShown?.();
    },
  };
}
