/**
 * Dataset preview commands: pick the recipe a dataset's preview follows, and run the dataset
 * doctor over a whole file with progress and cancel. Both work without a backend.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { recipeDataFiles, isRecipeFile } from '../dataset/recipeLink';
import type { Views } from '../views';

function datasetUri(arg: unknown): vscode.Uri | undefined {
  if (arg instanceof vscode.Uri) return arg;
  const doc = vscode.window.activeTextEditor?.document;
  return doc && doc.uri.fsPath.endsWith('.jsonl') ? doc.uri : undefined;
}

/** "Pick Recipe for Dataset Preview": lists the workspace's recipes. */
export function pickDatasetRecipe(_ctx: Ctx, views: Views) {
  return async (arg?: unknown): Promise<string | undefined> => {
    const uri = datasetUri(arg);
    if (!uri) throw new Error('open a .jsonl dataset first, then pick the recipe its preview should follow');
    const recipes = await vscode.workspace.findFiles('**/*.qlora.{yaml,yml}', '**/node_modules/**', 200);
    if (recipes.length === 0) throw new Error('no *.qlora.yaml recipe in this workspace; create one with "QLoRA: New Recipe"');
    const current = views.dataset.recipeFor(uri.fsPath);
    const chosen = await vscode.window.showQuickPick(
      recipes.map((r) => ({ label: path.basename(r.fsPath), description: vscode.workspace.asRelativePath(r), picked: r.fsPath === current, fsPath: r.fsPath })),
      { title: `Recipe for the preview of ${path.basename(uri.fsPath)}` },
    );
    if (!chosen) return undefined;
    views.dataset.pick(uri.fsPath, chosen.fsPath);
    return chosen.fsPath;
  };
}

/** "Run Dataset Doctor": the whole file, streamed, with a cancellable progress notification. */
export function runDatasetDoctor(_ctx: Ctx, views: Views) {
  return async (arg?: unknown) => {
    const uri = datasetUri(arg);
    if (!uri) throw new Error('open a .jsonl dataset (or right-click one in the explorer) to run the dataset doctor');
    const summary = await views.doctor.check(uri, true);
    if (summary && !summary.cancelled) {
      void vscode.window.showInformationMessage(`Dataset doctor: ${summary.lines} lines, ${summary.examples} examples, ${summary.badRows} bad rows, ${summary.truncated} truncated. See the Problems panel.`);
    }
    return summary;
  };
}

/** "Open Dataset Preview": the panel for a dataset, or for a recipe's training data. */
export function openDatasetPreview(_ctx: Ctx, views: Views) {
  return (arg?: unknown): string => {
    const uri = arg instanceof vscode.Uri ? arg : vscode.window.activeTextEditor?.document.uri;
    if (!uri) throw new Error('open a .jsonl dataset or a *.qlora.yaml recipe first, then open its preview');
    let file = uri.fsPath;
    if (isRecipeFile(file)) {
      const data = recipeDataFiles(file).find((f) => f.endsWith('.jsonl'));
      if (!data) throw new Error(`${path.basename(file)} names no local .jsonl file in data.train or data.eval; the panel previews JSONL files`);
      views.dataset.pick(data, file);
      file = data;
    }
    if (!file.endsWith('.jsonl')) throw new Error(`${path.basename(file)} is not a .jsonl dataset; the panel previews JSONL files`);
    views.panels.show(file);
    return file;
  };
}
