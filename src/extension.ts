/**
 * Entry point: builds the Ctx, registers commands and views, returns the API used by the
 * integration suite. Nothing is spawned here; the backend starts on first need.
 */
import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { Ctx } from './ctx';
import { RecipeLanguageClient } from './languageClient';
import { registerViews } from './views';
import type { LossPoints } from './views/lossView';
import type { PlaygroundRun, PlaygroundTarget } from './views/playground';
import type { RunRecord } from './runs/runsModel';
import type { RunNotice } from './views/runOutcome';

/** What `activate` returns: hooks for tests and other extensions, all read-only. */
export interface QloraStudioApi {
  /** Resolves once the run reaches a terminal state. */
  waitForRun(runId: string, timeoutMs?: number): Promise<RunRecord>;
  /** The points the loss view's webview holds for a run, by metric, and the steps it drew (postMessage round trip). */
  getLossViewPoints(runId: string): Promise<LossPoints>;
  /** What the loss editor panel holds and draws (runs, colours, size), if it is open. */
  getLossPanelPoints(runId: string): Promise<LossPoints | undefined>;
  /** The run as the runs tree knows it (state, step, last loss), if known. */
  run(runId: string): RunRecord | undefined;
  /** The backend connection phase. */
  backendPhase(): string;
  /** The last error a command reported, if any. */
  lastCommandError(): string | undefined;
  /** Types a prompt into the open playground and presses Generate; resolves with both sides' text. */
  playgroundPrompt(prompt: string): Promise<PlaygroundRun>;
  /** Adapter folders the explorer's "Merge adapter" currently applies to (last automatic scan). */
  adapterFolders(): readonly string[];
  /** The recipe language server's process id, once a recipe started it. */
  recipeServerPid(): Promise<number | undefined>;
  /** What the dataset preview panel of `file` last drew (rows, coloured tokens), if open. */
  datasetPanelDrawn(file: string): { rows: number; trainedTokens: number; maskedTokens: number; specialTokens: number } | undefined;
  /** What the open playground shows (model, labelled adapters, mode), if one is open. */
  playgroundTarget(): PlaygroundTarget | undefined;
  /** How the Runs tree shows a run: its row's label and tooltip. */
  runTreeRow(runId: string): { label: string; tooltip: string };
  /** The labels of a run's children in the Runs tree (its adapter and checkpoints). */
  runTreeChildren(runId: string): Promise<string[]>;
  /** The run failure and completion notifications shown so far. */
  runNotices(): readonly RunNotice[];
  /** The text of a run's log document. */
  runLog(runId: string): string;
}

/** Activates the extension; failures are shown and rethrown. */
export function activate(context: vscode.ExtensionContext): QloraStudioApi {
  try {
    const ctx = new Ctx(context);
    context.subscriptions.push(ctx);
    const views = registerViews(ctx);
    registerCommands(ctx, views);
    const recipes = new RecipeLanguageClient(context, ctx.log);
    context.subscriptions.push(recipes, ctx.onPhase((p) => recipes.setBackendDevices({ devices: p === 'connected' ? [...ctx.devices] : [] })));
    return {
      waitForRun: (runId, timeoutMs) => ctx.waitForRun(runId, timeoutMs),
      getLossViewPoints: (runId) => views.loss.pointsInView(runId),
      getLossPanelPoints: (runId) => views.loss.pointsInPanel(runId),
      run: (runId) => ctx.runs.get(runId),
      backendPhase: () => ctx.phase,
      lastCommandError: () => ctx.lastCommandError,
      adapterFolders: () => views.adapters.current(),
      playgroundPrompt: (prompt) => views.playground.runPrompt(prompt),
      recipeServerPid: () => recipes.serverPid(),
      datasetPanelDrawn: (file) => views.panels.drawn(file),
      playgroundTarget: () => views.playground.current(),
      runTreeRow: (runId) => views.runs.row(runId),
      runTreeChildren: (runId) => views.runs.childLabels(runId),
      runNotices: () => views.outcomes.notices(),
      runLog: (runId) => views.logs.text(runId),
    };
  } catch (err) {
    void vscode.window.showErrorMessage(`QLoRA Studio failed to activate: ${err instanceof Error ? err.message : String(err)}`);
    throw err;
  }
}

/** Deactivates: the Ctx (in context.subscriptions) releases everything. */
export function deactivate(): void {
  // Nothing beyond the subscriptions: VS Code disposes them in order.
}
