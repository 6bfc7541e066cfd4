/**
 * Shared argument resolution for commands: a command may get a URI (explorer, editor title,
 * CodeLens), a runs-tree node, a plain object from tests, or nothing (palette → quick pick).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { RECIPE_GLOB, SEARCH_EXCLUDE, isRecipeFile, sortRecipes } from '../util/paths';
import type { RunRecord } from '../runs/runsModel';

/** The run id carried by a tree node, a string, or `{runId}`; undefined otherwise. */
export function runIdOf(arg: unknown): string | undefined {
  if (typeof arg === 'string') return arg;
  if (arg && typeof arg === 'object') {
    const o = arg as { runId?: unknown; run_id?: unknown };
    if (typeof o.runId === 'string') return o.runId;
    if (typeof o.run_id === 'string') return o.run_id;
  }
  return undefined;
}

/** A file-system path from a URI, a string path, or `{recipePath}` / `{path}`. */
export function pathOf(arg: unknown, key = 'recipePath'): string | undefined {
  if (arg instanceof vscode.Uri) return arg.fsPath;
  if (typeof arg === 'string' && path.isAbsolute(arg)) return arg;
  if (arg && typeof arg === 'object') {
    const v = (arg as Record<string, unknown>)[key];
    if (typeof v === 'string') return v;
  }
  return undefined;
}

/** The recipe to act on: the argument, else the active editor's recipe, else a quick pick. */
export async function pickRecipe(arg: unknown): Promise<string | undefined> {
  const given = pathOf(arg);
  if (given) return given;
  const active = vscode.window.activeTextEditor?.document;
  if (active && isRecipeFile(active.uri.fsPath)) return active.uri.fsPath;
  const files = await vscode.workspace.findFiles(RECIPE_GLOB, SEARCH_EXCLUDE, 200);
  if (files.length === 0) {
    void vscode.window
      .showWarningMessage('No *.qlora.yaml recipe in this workspace.', 'New Recipe')
      .then((pick) => pick && vscode.commands.executeCommand('qloraStudio.newRecipe'));
    return undefined;
  }
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const sorted = sortRecipes(files.map((f) => f.fsPath), root);
  if (sorted.length === 1) return sorted[0];
  const pick = await vscode.window.showQuickPick(
    sorted.map((f) => ({ label: path.basename(f), description: root ? path.relative(root, path.dirname(f)) : path.dirname(f), file: f })),
    { title: 'Start QLoRA Run', placeHolder: 'Pick the recipe to train' },
  );
  return pick?.file;
}

/** The run to act on: the argument, else a quick pick among runs matching `filter`. */
export async function pickRun(ctx: Ctx, arg: unknown, title: string, filter: (r: RunRecord) => boolean): Promise<string | undefined> {
  const given = runIdOf(arg);
  if (given) return given;
  await ctx.refreshRuns();
  const runs = ctx.runs.list().filter(filter);
  if (runs.length === 0) {
    void vscode.window.showInformationMessage(`${title}: no run fits.`);
    return undefined;
  }
  const pick = await vscode.window.showQuickPick(
    runs.map((r) => ({ label: r.run_id, description: `${r.state} · step ${r.step ?? 0}${r.total_steps ? '/' + r.total_steps : ''}`, runId: r.run_id })),
    { title },
  );
  return pick?.runId;
}

/**
 * A string the command was given as `{[key]: string}` (tests, other commands), else what the user
 * types into an input box; undefined when dismissed.
 */
export async function givenOrAsked(arg: unknown, key: string, ask: vscode.InputBoxOptions): Promise<string | undefined> {
  const given = arg && typeof arg === 'object' ? (arg as Record<string, unknown>)[key] : undefined;
  return typeof given === 'string' ? given : vscode.window.showInputBox(ask);
}
