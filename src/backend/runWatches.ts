/**
 * The runs a connection watches and the last seq it delivered of each. This is what makes
 * re-attach exact: after a reconnect every run is attached again from its last delivered seq, and
 * any event at or below it (an overlap) is dropped, so listeners see each seq exactly once.
 */
import type { RunEventEnvelope } from '../protocol';

/** What to do with an inbound event. */
export type Verdict = 'deliver' | 'duplicate' | 'gap' | 'unwatched';

/** Per-run delivery bookkeeping. */
export class RunWatches {
  private readonly lastSeq = new Map<string, number>();

  /** Start (or keep) watching; returns the seq to attach after. */
  watch(runId: string, afterSeq?: number): number {
    const seq = afterSeq ?? this.lastSeq.get(runId) ?? 0;
    this.lastSeq.set(runId, seq);
    return seq;
  }

  /** Stop watching. */
  unwatch(runId: string): void {
    this.lastSeq.delete(runId);
  }

  /** Whether the run is watched. */
  has(runId: string): boolean {
    return this.lastSeq.has(runId);
  }

  /** Every watched run with the seq to re-attach after. */
  entries(): Array<[string, number]> {
    return [...this.lastSeq.entries()];
  }

  /** Judge an event and, when it is the next one, record it as delivered. */
  accept(ev: Pick<RunEventEnvelope, 'run_id' | 'seq'>): Verdict {
    const last = this.lastSeq.get(ev.run_id);
    if (last === undefined) return 'unwatched';
    if (ev.seq <= last) return 'duplicate';
    if (ev.seq !== last + 1) return 'gap';
    this.lastSeq.set(ev.run_id, ev.seq);
    return 'deliver';
  }

  /** The last delivered seq of a run (0 when none). */
  last(runId: string): number {
    return this.lastSeq.get(runId) ?? 0;
  }
}
