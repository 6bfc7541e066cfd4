/**
 * The loss view host's memory of every run's metrics and eval events, free of `vscode`: what it
 * forwards live, and what it replays to a view that was hidden, reloaded or restored from state.
 */
import type { RunEvent } from '../protocol';
import type { ChartEvent } from '../protocol/webview';

/** Chart events per run, in delivery order. */
export class MetricStore {
  private readonly byRun = new Map<string, ChartEvent[]>();

  /** Whether nothing was stored yet (after a reload: time to replay from the backend). */
  get empty(): boolean {
    return this.byRun.size === 0;
  }

  /**
   * Keeps a chart event and returns it; undefined for other types. Events come from the
   * connection, which delivers each seq once, so nothing is checked again here.
   */
  add(ev: RunEvent): ChartEvent | undefined {
    let item: ChartEvent;
    if (ev.type === 'metrics') item = { seq: ev.seq, type: ev.type, data: ev.data };
    else if (ev.type === 'eval') item = { seq: ev.seq, type: ev.type, data: ev.data };
    else return undefined;
    let list = this.byRun.get(ev.run_id);
    if (!list) {
      list = [];
      this.byRun.set(ev.run_id, list);
    }
    list.push(item);
    return item;
  }

  /** Per run, the events after what a view reports holding (`lastSeq`, 0 for unknown runs). */
  missing(lastSeq: Readonly<Record<string, number>>): Array<{ runId: string; events: ChartEvent[] }> {
    const out: Array<{ runId: string; events: ChartEvent[] }> = [];
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
