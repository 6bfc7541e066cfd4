/**
 * Registers every view (runs tree, loss view, status bar, CodeLens, adapter context key) and
 * returns the handles commands need.
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { registerAdapterContext, type AdapterFolders } from './adapterContext';
import { registerDatasetDoctor, type DatasetDoctorView } from './datasetDoctorView';
import { DatasetPanels } from './datasetPanel';
import { registerDatasetPreview, type DatasetPreview } from './datasetPreview';
import { registerLoadingProgress } from './loadingProgress';
import { LOSS_VIEW_ID, LossViewProvider } from './lossView';
import { PlaygroundHost } from './playgroundHost';
import { registerRecipeLens } from './recipeLens';
import { RunLogs } from './runLog';
import { RunOutcomes } from './runOutcome';
import { RUNS_VIEW_ID, RunsTreeProvider } from './runsTree';
import { registerStatusBar } from './statusBar';

/** The views commands act on; built once in `registerViews` and handed to the command table. */
export interface Views {
  readonly loss: LossViewProvider;
  readonly runs: RunsTreeProvider;
  readonly playground: PlaygroundHost;
  /** The adapter-folder scan behind the explorer's "Merge adapter". */
  readonly adapters: AdapterFolders;
  /** The inline dataset preview (recipe per dataset file, sessions). */
  readonly dataset: DatasetPreview;
  /** The dataset doctor's Problems-panel view. */
  readonly doctor: DatasetDoctorView;
  /** The dataset preview panels. */
  readonly panels: DatasetPanels;
  /** Per-run logs fed from run events. */
  readonly logs: RunLogs;
  /** Failure and completion notifications of runs. */
  readonly outcomes: RunOutcomes;
}

/** Creates the views; nothing here starts the backend (the runs tree does when first shown). */
export function registerViews(ctx: Ctx): Views {
  const loss = new LossViewProvider(ctx);
  const runs = new RunsTreeProvider(ctx);
  const playground = new PlaygroundHost(ctx);
  const logs = new RunLogs(ctx);
  const outcomes = new RunOutcomes(ctx, logs);
  ctx.push(
    logs,
    outcomes,
    loss,
    runs,
    playground,
    vscode.window.registerWebviewViewProvider(LOSS_VIEW_ID, loss),
    vscode.window.createTreeView(RUNS_VIEW_ID, { treeDataProvider: runs, showCollapseAll: false }),
  );
  registerStatusBar(ctx);
  registerRecipeLens(ctx);
  registerLoadingProgress(ctx);
  const adapters = registerAdapterContext(ctx);
  const dataset = registerDatasetPreview(ctx);
  const doctor = registerDatasetDoctor(ctx, dataset);
  const panels = new DatasetPanels(ctx, dataset);
  ctx.push(panels);
  return { loss, runs, playground, adapters, dataset, doctor, panels, logs, outcomes };
}
