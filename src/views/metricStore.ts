/**
 * The loss view host's memory of every run's metrics and eval events, free of `vscode`: what it
 * forwards live, and what it replays to a view that was hidden, reloaded or restored from state.
 */

/** An event the chart draws from (metrics or eval), as sent to the webview. */
export interface ChartEventOut {
  seq: number;
  type: 'metrics' | 'eval';
  data: Record<string, unknown>;
}

export class MetricStore {
  private readonly byRun = new Map<string, ChartEventOut[]>();

  /** Whether nothing was stored yet (after a reload: time to replay from the backend). */
  get empty(): boolean {
    return this.byRun.size === 0;
  }

  /**
   * Keeps a chart event; returns it when new, undefined for other types and for seqs already
   * held (replays after a re-attach).
   */
  add(ev: { run_id: string; seq: number; type: string; data: Record<string, unknown> }): ChartEventOut | undefined {
    if (ev.type !== 'metrics' && ev.type !== 'eval') return undefined;
    let list = this.byRun.get(ev.run_id);
    if (!list) {
      list = [];
      this.byRun.set(ev.run_id, list);
    }
    const last = list[list.length - 1];
    if (last && ev.seq <= last.seq) return undefined;
    const item: ChartEventOut = { seq: ev.seq, type: ev.type, data: ev.data };
    list.push(item);
    return item;
  }

  /** Per run, the events after what a view reports holding (`lastSeq`, 0 for unknown runs). */
  missing(lastSeq: Readonly<Record<string, number>>): Array<{ runId: string; events: ChartEventOut[] }> {
    const out: Array<{ runId: string; events: ChartEventOut[] }> = [];
    for (const [runId, list] of this.byRun) {
      const after = lastSeq[runId] ?? 0;
      // Seqs are increasing: binary search for the first one after `after`.
      let lo = 0;
      let hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (list[mid]!.seq <= after) lo = mid + 1;
        else hi = mid;
      }
      if (lo < list.length) out.push({ runId, events: list.slice(lo) });
    }
    return out;
  }
}
