/**
 * The loss chart's data model, free of DOM and uPlot so that unit tests and the benchmark reach
 * it: one growable series per (run, metric), EMA smoothing,
 * min/max downsampling for very long runs, alignment of several runs on one step axis, and CSV.
 */

/** Metrics the chart can show; `eval_loss` comes from eval events, the rest from metrics events. */
export const METRICS = [
  'loss',
  'eval_loss',
  'lr',
  'grad_norm',
  'tokens_per_s',
  'mem_allocated_mb',
  'mem_peak_mb',
  'rss_mb',
] as const;
export type Metric = (typeof METRICS)[number];
const TRAIN_METRICS = METRICS.filter((m): m is Exclude<Metric, 'eval_loss'> => m !== 'eval_loss');

import type { ChartEvent } from '../../src/protocol/webview';

export type { ChartEvent };

/** A step-indexed series backed by typed arrays that double when full. */
export class Series {
  private xs = new Float64Array(64);
  private ys = new Float64Array(64);
  private n = 0;

  get length(): number {
    return this.n;
  }

  /** Appends (x, y); a step at or before the last one (a resumed run) drops the points it replaces. */
  push(x: number, y: number): void {
    if (this.n > 0 && x <= this.xs[this.n - 1]!) {
      let keep = this.n;
      while (keep > 0 && this.xs[keep - 1]! >= x) keep--;
      this.n = keep;
    }
    if (this.n === this.xs.length) {
      const nx = new Float64Array(this.xs.length * 2);
      nx.set(this.xs);
      const ny = new Float64Array(this.ys.length * 2);
      ny.set(this.ys);
      this.xs = nx;
      this.ys = ny;
    }
    this.xs[this.n] = x;
    this.ys[this.n] = y;
    this.n++;
  }

  /** Views (no copy) of the filled part. */
  view(): { x: Float64Array; y: Float64Array } {
    return { x: this.xs.subarray(0, this.n), y: this.ys.subarray(0, this.n) };
  }

  /** The points as [step, value] pairs (for state, tests and export). */
  pairs(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < this.n; i++) out.push([this.xs[i]!, this.ys[i]!]);
    return out;
  }
}

/** Serializable form of the model, kept with the webview's setState. */
export interface ChartSnapshot {
  runs: Record<string, { lastSeq: number; series: Partial<Record<Metric, Array<[number, number]>>> }>;
}

/**
 * Every run's series plus the last seq applied per run. The host forwards each event once (it
 * got them once from the connection and replays only what a reloaded view says it lacks), so
 * the model trusts the order and keeps the seq only to tell the host what it holds.
 */
export class ChartModel {
  private readonly runs = new Map<string, { lastSeq: number; series: Map<Metric, Series> }>();

  /** Run ids in the order they were first seen. */
  runIds(): string[] {
    return [...this.runs.keys()];
  }

  /** The highest seq applied for `runId` (0 when none): replay resumes after it. */
  lastSeq(runId: string): number {
    return this.runs.get(runId)?.lastSeq ?? 0;
  }

  /** Applies events in order; returns how many points they added. */
  apply(runId: string, events: readonly ChartEvent[]): number {
    const run = this.ensureRun(runId);
    let added = 0;
    for (const ev of events) {
      run.lastSeq = ev.seq;
      if (ev.type === 'eval') {
        added += addPoint(run.series, 'eval_loss', ev.data.step, ev.data.eval_loss);
        continue;
      }
      for (const key of TRAIN_METRICS) added += addPoint(run.series, key, ev.data.step, ev.data[key]);
    }
    return added;
  }

  /** The series of one run and metric, if it has any points. */
  series(runId: string, metric: Metric): Series | undefined {
    return this.runs.get(runId)?.series.get(metric);
  }

  /** Forgets a run (the user removed it from the overlay). */
  remove(runId: string): void {
    this.runs.delete(runId);
  }

  /** Every point of a run by metric, as the test hook and the CSV export see them. */
  points(runId: string): Partial<Record<Metric, Array<[number, number]>>> {
    const out: Partial<Record<Metric, Array<[number, number]>>> = {};
    const run = this.runs.get(runId);
    if (!run) return out;
    for (const [k, s] of run.series) out[k] = s.pairs();
    return out;
  }

  /** A snapshot for setState. */
  snapshot(): ChartSnapshot {
    const runs: ChartSnapshot['runs'] = {};
    for (const [id, r] of this.runs) runs[id] = { lastSeq: r.lastSeq, series: this.points(id) };
    return { runs };
  }

  /** Rebuilds a model from a snapshot; malformed parts are dropped rather than trusted. */
  static restore(snap: unknown): ChartModel {
    const m = new ChartModel();
    if (!snap || typeof snap !== 'object' || !('runs' in snap)) return m;
    const runs = (snap as { runs: unknown }).runs;
    if (!runs || typeof runs !== 'object') return m;
    for (const [id, r] of Object.entries(runs as Record<string, unknown>)) {
      if (!r || typeof r !== 'object') continue;
      const rec = r as { lastSeq?: unknown; series?: unknown };
      const run = m.ensureRun(id);
      run.lastSeq = num(rec.lastSeq) ?? 0;
      const series = rec.series && typeof rec.series === 'object' ? (rec.series as Record<string, unknown>) : {};
      for (const metric of METRICS) {
        const pts = series[metric];
        if (!Array.isArray(pts)) continue;
        const s = new Series();
        for (const p of pts) {
          if (Array.isArray(p) && typeof p[0] === 'number' && typeof p[1] === 'number') s.push(p[0], p[1]);
        }
        if (s.length) run.series.set(metric, s);
      }
    }
    return m;
  }

  /** CSV with one row per (run, step) and one column per metric; empty cells where absent. */
  toCsv(runIds: readonly string[] = this.runIds()): string {
    const lines = ['run_id,step,' + METRICS.join(',')];
    for (const id of runIds) {
      const rows = new Map<number, Partial<Record<Metric, number>>>();
      const run = this.runs.get(id);
      if (!run) continue;
      for (const [metric, s] of run.series) {
        const { x, y } = s.view();
        for (let i = 0; i < x.length; i++) {
          const row = rows.get(x[i]!) ?? {};
          row[metric] = y[i]!;
          rows.set(x[i]!, row);
        }
      }
      for (const step of [...rows.keys()].sort((a, b) => a - b)) {
        const row = rows.get(step)!;
        lines.push([csvCell(id), String(step), ...METRICS.map((k) => (row[k] === undefined ? '' : String(row[k])))].join(','));
      }
    }
    return lines.join('\n') + '\n';
  }

  private ensureRun(runId: string): { lastSeq: number; series: Map<Metric, Series> } {
    let run = this.runs.get(runId);
    if (!run) {
      run = { lastSeq: 0, series: new Map() };
      this.runs.set(runId, run);
    }
    return run;
  }
}

/** Appends one point when its value is a finite number; returns how many points it added. */
function addPoint(series: Map<Metric, Series>, key: Metric, step: number, raw: number | null | undefined): number {
  const v = num(raw);
  if (v === undefined) return 0;
  let s = series.get(key);
  if (!s) {
    s = new Series();
    series.set(key, s);
  }
  s.push(step, v);
  return 1;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function csvCell(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * Debiased exponential moving average (as TensorBoard draws it): `weight` 0 returns the input,
 * near 1 smooths hard; the debiasing keeps the first points from being pulled towards zero.
 */
export function ema(y: ArrayLike<number>, weight: number): Float64Array {
  const out = new Float64Array(y.length);
  if (weight <= 0) {
    for (let i = 0; i < y.length; i++) out[i] = y[i]!;
    return out;
  }
  const w = Math.min(weight, 0.999);
  let acc = 0;
  let debias = 1;
  for (let i = 0; i < y.length; i++) {
    acc = acc * w + (1 - w) * y[i]!;
    debias *= w;
    out[i] = acc / (1 - debias);
  }
  return out;
}

/**
 * Keeps at most about `maxPoints` points by emitting each bucket's minimum and maximum in step
 * order, so spikes (a loss blow-up) stay visible however long the run is.
 */
export function downsample(x: Float64Array, y: Float64Array, maxPoints: number): { x: Float64Array; y: Float64Array } {
  const n = x.length;
  if (n <= maxPoints || maxPoints < 4) return { x, y };
  const buckets = Math.floor(maxPoints / 2);
  const ox = new Float64Array(buckets * 2);
  const oy = new Float64Array(buckets * 2);
  let o = 0;
  for (let b = 0; b < buckets; b++) {
    const start = Math.floor((b * n) / buckets);
    const end = Math.floor(((b + 1) * n) / buckets);
    if (end <= start) continue;
    let lo = start;
    let hi = start;
    for (let i = start + 1; i < end; i++) {
      if (y[i]! < y[lo]!) lo = i;
      if (y[i]! > y[hi]!) hi = i;
    }
    const [a, c] = lo <= hi ? [lo, hi] : [hi, lo];
    ox[o] = x[a]!;
    oy[o++] = y[a]!;
    if (c !== a) {
      ox[o] = x[c]!;
      oy[o++] = y[c]!;
    }
  }
  return { x: ox.subarray(0, o), y: oy.subarray(0, o) };
}

/**
 * Puts several (x, y) series on one shared, sorted step axis, with null where a series has no
 * point at a step: the table shape uPlot wants for overlays.
 */
export function align(series: ReadonlyArray<{ x: ArrayLike<number>; y: ArrayLike<number> }>): [number[], ...Array<Array<number | null>>] {
  const steps = new Set<number>();
  for (const s of series) for (let i = 0; i < s.x.length; i++) steps.add(s.x[i]!);
  const xs = [...steps].sort((a, b) => a - b);
  const index = new Map<number, number>();
  xs.forEach((v, i) => index.set(v, i));
  const cols = series.map((s) => {
    const col: Array<number | null> = new Array<number | null>(xs.length).fill(null);
    for (let i = 0; i < s.x.length; i++) col[index.get(s.x[i]!)!] = s.y[i]!;
    return col;
  });
  return [xs, ...cols];
}
