/**
 * The runs tree's model, free of `vscode`: runs from `run.list` (RunInfo) kept current by run
 * events, and how each run is described in the tree (label, description, icon, context value).
 * The input types are structural so the backend's RunInfo / RunEvent fit them directly.
 */

/** The fields of the protocol's RunInfo the tree uses. */
export interface RunSummary {
  run_id: string;
  state: string;
  step?: number | null;
  total_steps?: number | null;
  last_loss?: number | null;
  recipe_path?: string | null;
  created?: string | number | null;
  run_dir?: string | null;
  adapter_path?: string | null;
}

/** The fields of the protocol's RunEvent the tree uses. */
export interface RunEventLike {
  run_id: string;
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

/** A run as the model keeps it: the summary, the last event seq applied, the latest message. */
export type RunRecord = RunSummary & { lastSeq: number; message?: string };

export const TERMINAL_STATES: readonly string[] = ['completed', 'failed', 'stopped', 'interrupted'];
const ACTIVE_STATES: readonly string[] = ['queued', 'loading', 'running', 'saving'];

/** True for states after which nothing more happens to a run unless it is resumed. */
export function isTerminal(state: string): boolean {
  return TERMINAL_STATES.includes(state);
}

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

/** Runs by id, updated from run.list snapshots and live events. */
export class RunsModel {
  private readonly runs = new Map<string, RunRecord>();

  /** Merges a run.list answer; runs the backend no longer lists are kept (their folder may be gone). */
  upsertAll(list: readonly RunSummary[]): void {
    for (const r of list) this.upsert(r);
  }

  /** Inserts or refreshes one run, keeping the newest event-derived fields. */
  upsert(r: RunSummary): void {
    const prev = this.runs.get(r.run_id);
    this.runs.set(r.run_id, { ...prev, ...r, lastSeq: prev?.lastSeq ?? 0 });
  }

  /** Applies one event; returns false when it changed nothing (a replayed duplicate). */
  apply(ev: RunEventLike): boolean {
    let run = this.runs.get(ev.run_id);
    if (!run) {
      run = { run_id: ev.run_id, state: 'queued', lastSeq: 0 };
      this.runs.set(ev.run_id, run);
    }
    if (ev.seq <= run.lastSeq) return false;
    run.lastSeq = ev.seq;
    const d = ev.data;
    switch (ev.type) {
      case 'status':
        if (typeof d['state'] === 'string') run.state = d['state'];
        if (typeof d['adapter_path'] === 'string') run.adapter_path = d['adapter_path'];
        run.message = typeof d['message'] === 'string' ? d['message'] : undefined;
        return true;
      case 'metrics':
        if (typeof d['step'] === 'number') run.step = d['step'];
        if (typeof d['total_steps'] === 'number') run.total_steps = d['total_steps'];
        if (typeof d['loss'] === 'number') run.last_loss = d['loss'];
        return true;
      case 'error':
        if (typeof d['message'] === 'string') run.message = d['message'];
        return true;
      default:
        return true;
    }
  }

  /** One run, if known. */
  get(runId: string): RunRecord | undefined {
    return this.runs.get(runId);
  }

  /** Runs newest first (by created, then id). */
  list(): RunRecord[] {
    // created is unix seconds from the backend; ISO strings are accepted too
    const key = (c: string | number | null | undefined) => (typeof c === 'number' ? c : c ? (Date.parse(c) || 0) / 1000 : 0);
    return [...this.runs.values()].sort((a, b) => key(b.created) - key(a.created) || b.run_id.localeCompare(a.run_id));
  }

  /** The newest run that is still active, for the status bar. */
  activeRun(): RunRecord | undefined {
    return this.list().find((r) => ACTIVE_STATES.includes(r.state));
  }
}

const ICONS: Record<string, [string, string | undefined]> = {
  queued: ['clock', undefined],
  loading: ['loading~spin', undefined],
  running: ['sync~spin', 'charts.blue'],
  saving: ['save', 'charts.blue'],
  completed: ['pass', 'testing.iconPassed'],
  failed: ['error', 'testing.iconFailed'],
  stopped: ['debug-stop', 'charts.yellow'],
  interrupted: ['warning', 'charts.orange'],
};

/** Formats a loss for narrow UI: 4 significant digits, or a dash. */
export function formatLoss(loss: number | null | undefined): string {
  return typeof loss === 'number' && Number.isFinite(loss) ? loss.toPrecision(4) : '–';
}

/**
 * Describes a run for the tree. The context value lists capabilities (`run:active`, `run:resumable`,
 * `run:adapter`) joined by spaces so menus can match with regular expressions.
 */
export function describeRun(r: RunSummary & { message?: string }): RunItemView {
  const [icon, iconColor] = ICONS[r.state] ?? ['circle-outline', undefined];
  const step = r.step ?? 0;
  const total = r.total_steps ? `/${r.total_steps}` : '';
  const caps = ['run'];
  if (!isTerminal(r.state)) caps.push('run:active');
  if (r.state === 'stopped' || r.state === 'interrupted' || r.state === 'failed') caps.push('run:resumable');
  if (r.adapter_path) caps.push('run:adapter');
  const lines = [`${r.run_id} — ${r.state}`, `step ${step}${total}, loss ${formatLoss(r.last_loss)}`];
  if (r.recipe_path) lines.push(`recipe: ${r.recipe_path}`);
  if (r.run_dir) lines.push(`folder: ${r.run_dir}`);
  if (r.message) lines.push(r.message);
  return {
    id: r.run_id,
    label: r.run_id,
    description: `${r.state} · ${step}${total} · loss ${formatLoss(r.last_loss)}`,
    tooltip: lines.join('\n'),
    icon,
    iconColor,
    contextValue: caps.join(' '),
  };
}
