/**
 * Registers every view (runs tree, loss view, status bar, CodeLens, adapter context key) and
 * returns the handles commands need.
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { PlaygroundHost } from '../commands/playgroundCommand';
import type { Views } from '../commands/types';
import { registerAdapterContext } from './adapterContext';
import { registerDatasetDoctor } from './datasetDoctorView';
import { DatasetPanels } from './datasetPanel';
import { registerDatasetPreview } from './datasetPreview';
import { LOSS_VIEW_ID, LossViewProvider } from './lossView';
import { registerRecipeLens } from './recipeLens';
import { RUNS_VIEW_ID, RunsTreeProvider } from './runsTree';
import { registerStatusBar } from './statusBar';

/** Creates the views; nothing here starts the backend (the runs tree does when first shown). */
export function registerViews(ctx: Ctx): Views {
  const loss = new LossViewProvider(ctx);
  const runs = new RunsTreeProvider(ctx);
  const playground = new PlaygroundHost(ctx);
  ctx.push(
    loss,
    runs,
    playground,
    vscode.window.registerWebviewViewProvider(LOSS_VIEW_ID, loss),
    vscode.window.createTreeView(RUNS_VIEW_ID, { treeDataProvider: runs, showCollapseAll: false }),
  );
  registerStatusBar(ctx);
  registerRecipeLens(ctx);
  const adapters = registerAdapterContext(ctx);
  const dataset = registerDatasetPreview(ctx);
  const doctor = registerDatasetDoctor(ctx, dataset);
  const panels = new DatasetPanels(ctx, dataset);
  ctx.push(panels);
  return { loss, runs, playground, adapters, dataset, doctor, panels };
}
