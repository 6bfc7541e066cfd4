/**
 * What a user is told when a run ends while they watch: a failure is an error notification with
 * "Show Log" and "Open Recipe" (and "Resume" only where the backend calls the run resumable), and
 * a run that failed before its first step also becomes a Problems entry on its recipe; a completed
 * run is an information notification offering the next steps (playground, merge, loss chart).
 * Runs that ended before this window started (replayed events) notify nobody.
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { RunEventOf } from '../protocol';
import { shortRunLabel } from '../runs/runLabel';
import { formatLoss, type RunRecord } from '../runs/runsModel';
import type { RunLogs } from './runLog';

/** A notification this module showed, for the test API. */
export interface RunNotice {
  runId: string;
  kind: 'error' | 'info';
  message: string;
  actions: string[];
}

/** Events older than this before activation count as replayed history. */
const REPLAY_SLACK_MS = 2_000;

/** The failure text of a run: the message its events gave, else its state. */
export function failureText(r: RunRecord): string {
  return r.message?.trim() || `the run ended ${r.state} without a message; see its log`;
}

/** Shows run outcomes as notifications and failures before training as problems. */
export class RunOutcomes implements vscode.Disposable {
  private readonly since = Date.now() - REPLAY_SLACK_MS;
  private readonly shown: RunNotice[] = [];
  private readonly problems = vscode.languages.createDiagnosticCollection('qlora-run-failure');
  private readonly subs: vscode.Disposable[];

  constructor(
    private readonly ctx: Ctx,
    private readonly logs: RunLogs,
  ) {
    this.subs = [this.problems, ctx.onRunEvent((ev) => ev.type === 'status' && this.onStatus(ev))];
  }

  /** The notifications shown so far, oldest first. */
  notices(): readonly RunNotice[] {
    return this.shown;
  }

  private onStatus(ev: RunEventOf<'status'>): void {
    const state = ev.data.state;
    const run = this.ctx.runs.get(ev.run_id);
    // A new attempt on the recipe makes an old failure's problem stale.
    if ((state === 'queued' || state === 'loading' || state === 'running') && run?.recipe_path) this.problems.delete(vscode.Uri.file(run.recipe_path));
    if (ev.time * 1000 < this.since || !run) return;
    if (state === 'failed') void this.failed(run).catch((err: unknown) => this.ctx.log.warn(`failure notice: ${String(err)}`));
    if (state === 'completed') this.completed(run);
  }

  private async failed(run: RunRecord): Promise<void> {
    const text = failureText(run);
    const beforeTraining = !run.step;
    if (beforeTraining && run.recipe_path) {
      const d = new vscode.Diagnostic(new vscode.Range(0, 0, 0, 1000), `Run ${shortRunLabel(run.run_id)} failed before training: ${text}`, vscode.DiagnosticSeverity.Error);
      d.source = 'QLoRA run';
      this.problems.set(vscode.Uri.file(run.recipe_path), [d]);
    }
    // Whether a resume can help is the backend's verdict: ask it before offering one.
    await this.ctx.refreshRuns().catch(() => undefined);
    const actions = ['Show Log', 'Open Recipe'];
    if (this.ctx.runs.get(run.run_id)?.resumable === true) actions.push('Resume');
    const where = beforeTraining ? 'before training' : `at step ${run.step ?? 0}`;
    const message = `Run ${shortRunLabel(run.run_id)} failed ${where}: ${text}`;
    this.ctx.log.error(message);
    this.shown.push({ runId: run.run_id, kind: 'error', message, actions });
    const pick = await vscode.window.showErrorMessage(message, ...actions);
    if (pick === 'Show Log') await this.logs.show(run.run_id);
    else if (pick === 'Open Recipe') await vscode.commands.executeCommand('qloraStudio.openRunRecipe', run.run_id);
    else if (pick === 'Resume') await vscode.commands.executeCommand('qloraStudio.resumeRun', run.run_id);
  }

  private completed(run: RunRecord): void {
    const actions = ['Open Playground', 'Merge adapter', 'Show Loss'];
    const steps = run.step ? ` after ${run.step} steps` : '';
    const message = `Run ${shortRunLabel(run.run_id)} completed${steps}, final loss ${formatLoss(run.last_loss)}. Try the adapter in the playground or merge it.`;
    this.shown.push({ runId: run.run_id, kind: 'info', message, actions });
    void vscode.window.showInformationMessage(message, ...actions).then(async (pick) => {
      if (pick === 'Open Playground') await vscode.commands.executeCommand('qloraStudio.openPlayground', { runId: run.run_id });
      else if (pick === 'Merge adapter') await vscode.commands.executeCommand('qloraStudio.mergeAdapter', { runId: run.run_id });
      else if (pick === 'Show Loss') await vscode.commands.executeCommand('qloraStudio.showRunLoss', run.run_id);
    });
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
  }
}
