/**
 * The command table: one factory per command id of `ids.ts`. Registration wraps every handler
 * the same way: commands that need Workspace Trust refuse in untrusted workspaces (the disabled
 * variant), and errors are logged and shown once with "Show Logs".
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { COMMANDS, type CommandId } from './ids';
import { openDatasetPreview, pickDatasetRecipe, runDatasetDoctor } from './datasetCommands';
import { mergeAdapter } from './mergeCommand';
import { openPlayground } from './playgroundCommand';
import { clearHfToken, setHfToken, showLogs } from './backendCommands';
import { connectBackend } from './connectCommand';
import { downloadAdapter } from './downloadCommand';
import { newRecipe } from './recipeCommands';
import { attachRun, openLossPanel, openRunFolder, openRunRecipe, recipeDiagnostics, refreshRuns, resumeRun, showRunLoss, startRun, stopRun } from './runCommands';
import type { Views } from '../views';

type Handler = (...args: unknown[]) => unknown;
type Factory = (ctx: Ctx, views: Views, diags: vscode.DiagnosticCollection) => Handler;

/** Every command's factory; the `Record` type makes a missing or extra id a compile error. */
export const COMMAND_FACTORIES: Record<CommandId, Factory> = {
  'qloraStudio.startRun': (ctx, views, diags) => startRun(ctx, views, diags),
  'qloraStudio.stopRun': (ctx) => stopRun(ctx),
  'qloraStudio.resumeRun': (ctx, views) => resumeRun(ctx, views),
  'qloraStudio.attachRun': (ctx, views) => attachRun(ctx, views),
  'qloraStudio.openPlayground': (ctx, views) => openPlayground(ctx, views),
  'qloraStudio.mergeAdapter': (ctx, views) => mergeAdapter(ctx, views),
  'qloraStudio.newRecipe': (ctx) => newRecipe(ctx),
  'qloraStudio.connectBackend': (ctx, views) => connectBackend(ctx, views),
  'qloraStudio.downloadAdapter': (ctx) => downloadAdapter(ctx),
  'qloraStudio.showLogs': (ctx) => showLogs(ctx),
  'qloraStudio.refreshRuns': (ctx, views) => refreshRuns(ctx, views),
  'qloraStudio.openRunFolder': (ctx) => openRunFolder(ctx),
  'qloraStudio.openRunRecipe': (ctx) => openRunRecipe(ctx),
  'qloraStudio.showRunLoss': (ctx, views) => showRunLoss(ctx, views),
  'qloraStudio.openLossPanel': (ctx, views) => openLossPanel(ctx, views),
  'qloraStudio.setHfToken': (ctx) => setHfToken(ctx),
  'qloraStudio.clearHfToken': (ctx) => clearHfToken(ctx),
  'qloraStudio.pickDatasetRecipe': (ctx, views) => pickDatasetRecipe(ctx, views),
  'qloraStudio.openDatasetPreview': (ctx, views) => openDatasetPreview(ctx, views),
  'qloraStudio.runDatasetDoctor': (ctx, views) => runDatasetDoctor(ctx, views),
};

/** What a refused command returns, so callers (and tests) can tell a refusal from a cancel. */
export interface Refusal {
  refused: 'untrusted';
  message: string;
}

/** Registers every command of the table. */
export function registerCommands(ctx: Ctx, views: Views): void {
  const diags = recipeDiagnostics(ctx);
  for (const meta of COMMANDS) {
    const handler = COMMAND_FACTORIES[meta.id](ctx, views, diags);
    ctx.push(
      vscode.commands.registerCommand(meta.id, async (...args: unknown[]) => {
        if (meta.needsTrust && !ctx.trusted) {
          const message = `"${meta.title}" needs a trusted workspace: this folder is in Restricted Mode, where recipes can be edited and previewed but nothing runs. Trust the folder ("Manage Workspace Trust") to run it.`;
          void vscode.window.showWarningMessage(message);
          ctx.log.warn(`refused ${meta.id}: workspace not trusted`);
          return { refused: 'untrusted', message } satisfies Refusal;
        }
        try {
          return await handler(...args);
        } catch (err) {
          // Not awaited: the notification stays open until dismissed, the command must not.
          ctx.lastCommandError = `${meta.id}: ${err instanceof Error ? err.message : String(err)}`;
          void ctx.showError(err, meta.title);
          return undefined;
        }
      }),
    );
  }
}
