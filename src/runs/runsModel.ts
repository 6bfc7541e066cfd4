/**
 * The runs the extension knows, free of `vscode`: RunInfo snapshots from the backend (`run.list`,
 * `run.start`) kept current by run events, and how each run is described in the tree. Events come
 * from the connection, which parsed them and delivers each seq once: this model trusts them and
 * keeps no seq bookkeeping of its own. Every verdict about a run (its folders, whether it can
 * resume) is the backend's, copied from its RunInfo, never derived here.
 */
import type { RunEvent, RunInfo } from '../protocol';
import { isTerminal } from '../protocol/states';
import { shortRunLabel } from './runLabel';

/** A run as the backend describes it; everything but the id and state may be unknown yet. */
export type RunSummary = Pick<RunInfo, 'run_id' | 'state'> & Partial<Omit<RunInfo, 'run_id' | 'state'>>;

/** A run as the model keeps it: the backend's summary and the latest message of its events. */
export type RunRecord = RunSummary & { message?: string };

/** Runs by id, updated from backend snapshots and live events. */
export class RunsModel {
  private readonly runs = new Map<string, RunRecord>();

  /** Merges a run.list answer; runs the backend no longer lists are kept (their folder may be gone). */
  upsertAll(list: readonly RunSummary[]): void {
    for (const r of list) this.upsert(r);
  }

  /** Forgets every run (another backend, with runs of its own, is now the one shown). */
  clear(): void {
    this.runs.clear();
  }

  /** Inserts or refreshes one run with the backend's newest snapshot of it. */
  upsert(r: RunSummary): void {
    this.runs.set(r.run_id, { ...this.runs.get(r.run_id), ...r });
  }

  /** Applies one delivered event; returns whether what the tree shows changed. */
  apply(ev: RunEvent): boolean {
    let run = this.runs.get(ev.run_id);
    if (!run) {
      run = { run_id: ev.run_id, state: 'queued' };
      this.runs.set(ev.run_id, run);
    }
    switch (ev.type) {
      case 'status':
        run.state = ev.data.state;
        if (ev.data.adapter_path) run.adapter_path = ev.data.adapter_path;
        run.message = ev.data.message ?? ev.data.reason;
        // A run that moved on may have become resumable or stopped being so: only the backend can say.
        run.resumable = undefined;
        return true;
      case 'metrics':
        run.step = ev.data.step;
        if (typeof ev.data.total_steps === 'number') run.total_steps = ev.data.total_steps;
        if (typeof ev.data.loss === 'number') run.last_loss = ev.data.loss;
        return true;
      case 'error':
        run.message = ev.data.hint ? `${ev.data.message} ${ev.data.hint}` : ev.data.message;
        return true;
      case 'progress':
        run.message = ev.data.message;
        return true;
      case 'log':
      case 'eval':
      case 'checkpoint':
        return false;
      default: {
        const never: never = ev;
        return never;
      }
    }
  }

  /** One run, if known. */
  get(runId: string): RunRecord | undefined {
    return this.runs.get(runId);
  }

  /** Runs newest first (by created, then id). */
  list(): RunRecord[] {
    return [...this.runs.values()].sort((a, b) => (b.created ?? 0) - (a.created ?? 0) || b.run_id.localeCompare(a.run_id));
  }

  /** The newest run that is still active, for the status bar. */
  activeRun(): RunRecord | undefined {
    return this.list().find((r) => !isTerminal(r.state));
  }
}

const ICONS: Record<RunSummary['state'], [string, string | undefined]> = {
  queued: ['clock', undefined],
  loading: ['loading~spin', undefined],
  running: ['sync~spin', 'charts.blue'],
  saving: ['save', 'charts.blue'],
  completed: ['pass', 'testing.iconPassed'],
  failed: ['error', 'testing.iconFailed'],
  stopped: ['debug-stop', 'charts.yellow'],
  interrupted: ['warning', 'charts.orange'],
};

/** How a run appears in the tree; `contextValue` drives which context-menu actions show. */
export interface RunItemView {
  id: string;
  label: string;
  description: string;
  tooltip: string;
  icon: string;
  iconColor?: string;
  contextValue: string;
}

/** Formats a loss for narrow UI: 4 significant digits, or a dash. */
export function formatLoss(loss: number | null | undefined): string {
  return typeof loss === 'number' && Number.isFinite(loss) ? loss.toPrecision(4) : '–';
}

/**
 * Describes a run for the tree. The context value lists capabilities (`run:active`,
 * `run:resumable`, `run:adapter`) joined by spaces so menus can match with regular expressions;
 * `run:resumable` only where the backend said `resumable`. The label is the run's short name; the
 * tooltip starts with its whole id.
 */
export function describeRun(r: RunRecord, label: string = shortRunLabel(r.run_id)): RunItemView {
  const [icon, iconColor] = ICONS[r.state];
  const step = r.step ?? 0;
  const total = r.total_steps ? `/${r.total_steps}` : '';
  const caps = ['run'];
  if (!isTerminal(r.state)) caps.push('run:active');
  if (r.resumable === true) caps.push('run:resumable');
  if (r.adapter_path) caps.push('run:adapter');
  const lines = [`${r.run_id} — ${r.state}`, `step ${step}${total}, loss ${formatLoss(r.last_loss)}`];
  if (r.recipe_path) lines.push(`recipe: ${r.recipe_path}`);
  if (r.run_dir) lines.push(`folder: ${r.run_dir}`);
  if (r.message) lines.push(r.message);
  return {
    id: r.run_id,
    label,
    description: `${r.state} · ${step}${total} · loss ${formatLoss(r.last_loss)}`,
    tooltip: lines.join('\n'),
    icon,
    iconColor,
    contextValue: caps.join(' '),
  };
}
