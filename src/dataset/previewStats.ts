/**
 * Running totals for the preview panel: counts, a length histogram and how many sequences the
 * examples pack into (best-fit decreasing at max_seq_len, as python data/packing.py bins them).
 */
import type { PreviewStats } from './previewProtocol';

/** Accumulates per-line results; `stats()` snapshots them. */
export class StatsBuilder {
  private readonly lengths: number[] = [];
  private examples = 0;
  private tokens = 0;
  private trained = 0;
  private truncated = 0;
  private badRows = 0;
  scannedLines = 0;

  constructor(private readonly maxSeqLen: number, private readonly bins = 32) {}

  /** Adds one good example (`length` tokens after truncation). */
  addExample(length: number, trained: number, truncated: boolean): void {
    this.examples += 1;
    this.tokens += length;
    this.trained += trained;
    if (truncated) this.truncated += 1;
    this.lengths.push(length);
  }

  /** Adds one bad row. */
  addBad(): void {
    this.badRows += 1;
  }

  /** A snapshot of the totals. */
  stats(totalLines: number, done: boolean): PreviewStats {
    const binWidth = Math.max(1, Math.ceil(this.maxSeqLen / this.bins));
    const histogram = new Array<number>(this.bins).fill(0);
    for (const n of this.lengths) histogram[Math.min(this.bins - 1, Math.floor(n / binWidth))]! += 1;
    return {
      scannedLines: this.scannedLines, totalLines, examples: this.examples, tokens: this.tokens, trained: this.trained,
      truncated: this.truncated, badRows: this.badRows, histogram, binWidth, packedSequences: packedCount(this.lengths, this.maxSeqLen), done,
    };
  }
}

/** Number of sequences best-fit decreasing packs `lengths` into. */
export function packedCount(lengths: readonly number[], maxSeqLen: number): number {
  const free: number[] = []; // room left per bin, kept sorted ascending
  for (const n of [...lengths].sort((a, b) => b - a)) {
    let lo = 0;
    let hi = free.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (free[mid]! < n) lo = mid + 1;
      else hi = mid;
    }
    const room = lo < free.length ? free.splice(lo, 1)[0]! : maxSeqLen;
    const left = room - n;
    let at = 0;
    while (at < free.length && free[at]! < left) at += 1;
    free.splice(at, 0, left);
  }
  return free.length;
}
