/**
 * Run commands: start (with validation first), stop, resume, attach, and the runs tree's helpers.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { RecipeIssue, RunInfo } from '../protocol';
import { isTerminal } from '../protocol/states';
import type { Views } from '../views';
import { pickRecipe, pickRun, runIdOf } from './pickers';
import { backendRecipePath } from './syncProgress';

/** Problems of the last validation per recipe, shown in the Problems panel. */
export function recipeDiagnostics(ctx: Ctx): vscode.DiagnosticCollection {
  const d = vscode.languages.createDiagnosticCollection('qlora-run');
  ctx.push(d);
  return d;
}

function toDiagnostic(issue: RecipeIssue): vscode.Diagnostic {
  const line = Math.max(0, issue.line - 1);
  const col = Math.max(0, issue.column - 1);
  const d = new vscode.Diagnostic(new vscode.Range(line, col, line, col + 1000), `${issue.path}: ${issue.message}`, vscode.DiagnosticSeverity.Error);
  d.source = 'QLoRA';
  return d;
}

/**
 * Start QLoRA Run: resolves the recipe, saves it, validates it on the backend (errors become
 * diagnostics and the run does not start), starts it and reveals the loss view.
 * Returns the new run id, or undefined when nothing started.
 */
export function startRun(ctx: Ctx, views: Views, diags: vscode.DiagnosticCollection) {
  return async (arg?: unknown): Promise<string | undefined> => {
    const recipe = await pickRecipe(arg);
    if (!recipe) return undefined;
    const uri = vscode.Uri.file(recipe);
    const open = vscode.workspace.textDocuments.find((d) => d.uri.fsPath === uri.fsPath);
    if (open?.isDirty) await open.save();
    const conn = await ctx.backend();
    const onBackend = await backendRecipePath(ctx, recipe);
    const { issues } = await conn.request('recipe.validate', { path: onBackend });
    diags.set(uri, issues.map(toDiagnostic));
    if (issues.length) {
      const first = issues[0]!;
      // Not awaited: the command finishes now; the button opens the recipe whenever it is clicked.
      void vscode.window
        .showErrorMessage(
          `${path.basename(recipe)} has ${issues.length} problem(s), so the run did not start. First: line ${first.line}: ${first.path}: ${first.message}`,
          'Open Recipe',
        )
        .then((pick) => pick && vscode.window.showTextDocument(uri, { selection: new vscode.Range(first.line - 1, 0, first.line - 1, 0) }));
      return undefined;
    }
    if (!(await waitForDevice(ctx, arg, recipe))) return undefined;
    const runsDir = ctx.runsDirOverride();
    const info = await conn.request('run.start', { recipe_path: onBackend, ...(runsDir ? { runs_dir: runsDir } : {}) });
    ctx.runs.upsert(info);
    await ctx.attach(info.run_id);
    await views.loss.reveal(info.run_id);
    ctx.log.info(`started run ${info.run_id} from ${recipe}`);
    return info.run_id;
  };
}

/** What to do when a run is already training: from a test's `{whenBusy}`, else asked. */
function whenBusyOf(arg: unknown): 'Queue' | 'Start anyway' | undefined {
  const v = arg && typeof arg === 'object' ? (arg as { whenBusy?: unknown }).whenBusy : undefined;
  return v === 'queue' ? 'Queue' : v === 'parallel' ? 'Start anyway' : undefined;
}

/**
 * One training run per device by default: while another run is active, warns and offers to queue
 * this one (it starts when the active runs end) or to start it anyway. False when the user declined.
 */
async function waitForDevice(ctx: Ctx, arg: unknown, recipe: string): Promise<boolean> {
  const busy = ctx.runs.list().filter((r) => !isTerminal(r.state));
  if (busy.length === 0) return true;
  const names = busy.map((r) => r.run_id).join(', ');
  const choice =
    whenBusyOf(arg) ??
    (await vscode.window.showWarningMessage(
      `${names} is already training on ${ctx.device ?? 'this device'}. Two runs on one GPU usually both run out of memory. Queue ${path.basename(recipe)} to start when it ends, or start it anyway?`,
      'Queue',
      'Start anyway',
    ));
  if (!choice) return false;
  if (choice === 'Start anyway') return true;
  ctx.log.info(`queued ${recipe} behind ${names}`);
  void vscode.window.showInformationMessage(`Queued ${path.basename(recipe)}: it starts when ${names} ends.`);
  for (const r of busy) await ctx.waitForRun(r.run_id, 7 * 24 * 3600_000);
  return true;
}

/** Stop Run: asks the run to checkpoint and stop at the next step boundary. */
export function stopRun(ctx: Ctx) {
  return async (arg?: unknown) => {
    const runId = await pickRun(ctx, arg, 'Stop Run', (r) => !isTerminal(r.state));
    if (!runId) return undefined;
    const res = await (await ctx.backend()).request('run.stop', { run_id: runId });
    void vscode.window.showInformationMessage(
      res.action === 'not_running' ? `Run ${runId} is not running.` : `Run ${runId} will save a checkpoint and stop.`,
    );
    return res;
  };
}

/**
 * Resume Run: continues a run the backend called resumable, from its own frozen recipe. Only such
 * runs are offered; a run named directly (tree, test) is asked about anyway, and the backend's
 * refusal (`not_resumable`, `run_live`) reaches the user with its message.
 */
export function resumeRun(ctx: Ctx, views: Views) {
  return async (arg?: unknown): Promise<string | undefined> => {
    const runId = await pickRun(ctx, arg, 'Resume Run', (r) => r.resumable === true);
    if (!runId) return undefined;
    const info = await startResume(ctx, runId);
    ctx.runs.upsert(info);
    await ctx.attach(runId);
    await views.loss.reveal(runId);
    return runId;
  };
}

/**
 * Asks the backend to resume. A run reports `stopped` just before its process exits, so a resume
 * right after a stop can meet `run_live`; while the run already says it ended, retry briefly.
 */
async function startResume(ctx: Ctx, runId: string): Promise<RunInfo> {
  const conn = await ctx.backend();
  const runsDir = ctx.runsDirOverride();
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await conn.request('run.start', { run_id: runId, resume: true, ...(runsDir ? { runs_dir: runsDir } : {}) });
    } catch (err) {
      const live = (err as { code?: unknown }).code === 'run_live';
      const ended = isTerminal(ctx.runs.get(runId)?.state ?? '');
      if (!live || !ended || Date.now() > deadline) throw err;
      ctx.log.info(`run ${runId} is still exiting; retrying the resume`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** Attach to Run: replays a run's events into the views and follows it live. */
export function attachRun(ctx: Ctx, views: Views) {
  return async (arg?: unknown): Promise<string | undefined> => {
    const runId = await pickRun(ctx, arg, 'Attach to Run', () => true);
    if (!runId) return undefined;
    await ctx.attach(runId);
    await views.loss.reveal(runId);
    return runId;
  };
}

/** Refresh Runs: lists runs again (and retries a failed backend start). */
export function refreshRuns(ctx: Ctx, views: Views) {
  return async () => {
    views.runs.retry();
    return (await ctx.refreshRuns()).length;
  };
}

/** Show Loss Chart: focuses the loss view on one run. */
export function showRunLoss(ctx: Ctx, views: Views) {
  return async (arg?: unknown) => {
    const runId = runIdOf(arg) ?? ctx.runs.activeRun()?.run_id;
    if (runId) await ctx.attach(runId);
    await views.loss.reveal(runId);
  };
}

/**
 * Open Loss Chart in Editor: a full-size panel overlaying runs, each in its own colour. Takes the
 * runs selected in the tree (or `{runIds}`); with none, the newest runs.
 */
export function openLossPanel(ctx: Ctx, views: Views) {
  return async (arg?: unknown, selected?: unknown) => {
    const given = Array.isArray(selected) ? selected : arg && typeof arg === 'object' && Array.isArray((arg as { runIds?: unknown }).runIds) ? (arg as { runIds: unknown[] }).runIds : [arg];
    const runIds = given.map(runIdOf).filter((id): id is string => !!id);
    await Promise.all(runIds.map((id) => ctx.attach(id)));
    await views.loss.openPanel(runIds);
  };
}

/** Open Run Folder: reveals the run directory in the explorer (or the OS when outside the workspace). */
export function openRunFolder(ctx: Ctx) {
  return async (arg?: unknown) => {
    const runId = runIdOf(arg);
    const dir = runId ? ctx.runs.get(runId)?.run_dir : undefined;
    if (!dir) throw new Error('Pick a run in the Runs view to open its folder.');
    const uri = vscode.Uri.file(dir);
    if (vscode.workspace.getWorkspaceFolder(uri)) await vscode.commands.executeCommand('revealInExplorer', uri);
    else await vscode.commands.executeCommand('revealFileInOS', uri);
  };
}

/** Open Run Recipe: opens the recipe a run was started from, else the copy frozen in its folder (paths the backend gave). */
export function openRunRecipe(ctx: Ctx) {
  return async (arg?: unknown) => {
    const runId = runIdOf(arg);
    const run = runId ? ctx.runs.get(runId) : undefined;
    if (!run) throw new Error('Pick a run in the Runs view to open its recipe.');
    const candidates = [run.recipe_path, run.frozen_recipe_path].filter((p): p is string => !!p);
    for (const c of candidates) {
      try {
        await vscode.window.showTextDocument(vscode.Uri.file(c));
        return;
      } catch {
        // try the frozen copy next
      }
    }
    throw new Error(`the recipe of run ${run.run_id} is gone (${candidates.join(', ') || 'no path recorded'})`);
  };
}
