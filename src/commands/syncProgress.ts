/**
 * The recipe path to hand the backend, with a progress notification while an SSH backend receives
 * the recipe's inputs (local backends need no copy: the path is returned at once).
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';

/** Sync (when remote) and return the path the backend knows the recipe by. */
export async function backendRecipePath(ctx: Ctx, recipe: string): Promise<string> {
  const host = ctx.remoteLabel();
  if (!host) return ctx.backendRecipePath(recipe);
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `QLoRA: sending the run's files to ${host}` }, async (progress) => {
    let shown = 0;
    return ctx.backendRecipePath(recipe, (p) => {
      const pct = p.totalBytes ? Math.floor((100 * p.sentBytes) / p.totalBytes) : 100;
      if (pct > shown) progress.report({ increment: pct - shown, message: `${p.file} (${(p.sentBytes / 1e6).toFixed(1)} of ${(p.totalBytes / 1e6).toFixed(1)} MB)` });
      shown = Math.max(shown, pct);
    });
  });
}
