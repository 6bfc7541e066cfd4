/**
 * The Runs tree view: every run of the backend with a state icon, step/total and last loss.
 * Items carry their run id as the command argument so context-menu commands know the run.
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { isTerminal } from '../protocol/states';
import { distinctRunLabels, shortRunLabel } from '../runs/runLabel';
import { describeRun } from '../runs/runsModel';

export const RUNS_VIEW_ID = 'qloraStudio.runs';

/**
 * A tree node: a run, one of its adapters (the final one, `best`, a step checkpoint, as the
 * backend's adapter.info lists them), or a single hint row when there is nothing to list. An
 * adapter node carries `adapterDir`, so Open Playground and Merge adapter act on that folder.
 */
export type RunNode =
  | { kind: 'run'; runId: string; label?: string }
  | { kind: 'saved'; runId: string; adapterDir: string; label: string }
  | { kind: 'hint'; text: string; command?: string };

/** A readable name for one checkpoint of a run: "tiny 20:04:46 · adapter", "… · step 40", "… · best". */
export function checkpointLabel(runId: string | null, name: string, step: number | null): string {
  const what = /^step-\d+$/.test(name) && step !== null ? `step ${step}` : name;
  return runId ? `${shortRunLabel(runId)} · ${what}` : what;
}

export class RunsTreeProvider implements vscode.TreeDataProvider<RunNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<RunNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private loadError: string | undefined;
  private requested = false;
  private readonly subs: vscode.Disposable[] = [];

  constructor(private readonly ctx: Ctx) {
    this.subs.push(
      this.changed,
      ctx.onRunsChanged(() => this.changed.fire(undefined)),
      ctx.onPhase(() => this.changed.fire(undefined)),
      // Trusting the folder lifts the refusal: list the runs now instead of the hint row.
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.retry()),
    );
  }

  getTreeItem(node: RunNode): vscode.TreeItem {
    if (node.kind === 'saved') {
      const item = new vscode.TreeItem(node.label);
      item.id = `${node.runId}\0${node.adapterDir}`;
      item.tooltip = node.adapterDir;
      item.contextValue = 'adapter';
      item.iconPath = new vscode.ThemeIcon(/^step /.test(node.label) ? 'history' : 'package');
      item.command = { command: 'qloraStudio.openPlayground', title: 'Open Playground', arguments: [{ adapterDir: node.adapterDir }] };
      return item;
    }
    if (node.kind === 'hint') {
      const item = new vscode.TreeItem(node.text);
      if (node.command) item.command = { command: node.command, title: node.text };
      item.iconPath = new vscode.ThemeIcon('info');
      return item;
    }
    const run = this.ctx.runs.get(node.runId);
    const v = describeRun(run ?? { run_id: node.runId, state: 'queued' }, node.label);
    const item = new vscode.TreeItem(v.label);
    item.id = v.id;
    item.description = v.description;
    item.tooltip = v.tooltip;
    item.contextValue = v.contextValue;
    item.iconPath = new vscode.ThemeIcon(v.icon, v.iconColor ? new vscode.ThemeColor(v.iconColor) : undefined);
    item.command = { command: 'qloraStudio.showRunLoss', title: 'Show Loss Chart', arguments: [node] };
    // Runs that saved something have children: their adapter and checkpoints.
    if (run?.adapter_path || (run && isTerminal(run.state) && run.resumable)) item.collapsibleState = vscode.TreeItemCollapsibleState.Collapsed;
    return item;
  }

  /** The adapters of a run as the backend lists them; none when it has none yet. */
  private async adapterNodes(runId: string): Promise<RunNode[]> {
    try {
      const info = await (await this.ctx.backend()).request('adapter.info', { run_id: runId });
      return info.checkpoints.map((c) => ({ kind: 'saved', runId, adapterDir: c.path, label: checkpointLabel(null, c.name, c.step) }));
    } catch (err) {
      this.ctx.log.info(`run ${runId} has no adapter to list yet: ${err instanceof Error ? err.message : String(err)}`);
      return [];
    }
  }

  getChildren(node?: RunNode): RunNode[] | Promise<RunNode[]> {
    if (node?.kind === 'run') return this.adapterNodes(node.runId);
    if (node) return [];
    if (!this.ctx.trusted) return [{ kind: 'hint', text: 'Runs need a trusted workspace' }];
    // Listing runs is the first need that starts the backend, once; failures leave a hint row.
    if (!this.requested) {
      this.requested = true;
      void this.ctx.refreshRuns().then(
        () => (this.loadError = undefined),
        (err: unknown) => {
          this.loadError = err instanceof Error ? err.message : String(err);
          this.ctx.log.error(`could not list runs: ${this.loadError}`);
          this.changed.fire(undefined);
        },
      );
    }
    const runs = this.ctx.runs.list();
    if (runs.length) {
      const labels = distinctRunLabels(runs.map((r) => r.run_id));
      return runs.map((r) => ({ kind: 'run', runId: r.run_id, label: labels.get(r.run_id) }));
    }
    if (this.loadError) return [{ kind: 'hint', text: 'Backend unavailable — click to retry', command: 'qloraStudio.connectBackend' }];
    if (this.ctx.phase === 'connecting') return [{ kind: 'hint', text: 'Connecting to the backend…' }];
    return [{ kind: 'hint', text: 'No runs yet — Start QLoRA Run', command: 'qloraStudio.startRun' }];
  }

  /** How a run's row reads (test hook). */
  row(runId: string): { label: string; tooltip: string } {
    const item = this.getTreeItem({ kind: 'run', runId });
    return { label: String(item.label), tooltip: String(item.tooltip) };
  }

  /** The labels of a run's child rows (test hook). */
  async childLabels(runId: string): Promise<string[]> {
    return (await this.adapterNodes(runId)).flatMap((n) => (n.kind === 'saved' ? [n.label] : []));
  }

  /** Lets "Connect Backend" and refresh retry the listing. */
  retry(): void {
    this.requested = false;
    this.loadError = undefined;
    this.changed.fire(undefined);
  }

  dispose(): void {
    for (const d of this.subs.splice(0)) d.dispose();
  }
}
