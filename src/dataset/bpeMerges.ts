/**
 * The merge step of BPE: a pair table (left id, right id) -> (rank, merged id) in open addressing
 * over typed arrays, and the merge loop over one word's symbols with a binary heap ordered by
 * (rank, position), the order of the Rust `tokenizers` (lowest rank first, leftmost on ties), so
 * each merge costs O(log n) instead of a rescan of the word.
 */

/** (left, right) -> (rank, merged id), both ids non-negative int32. */
export class PairTable {
  private keysA: Int32Array;
  private keysB: Int32Array;
  private ranks: Int32Array;
  private merged: Int32Array;
  private mask: number;

  constructor(expected: number) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.keysA = new Int32Array(cap).fill(-1);
    this.keysB = new Int32Array(cap);
    this.ranks = new Int32Array(cap);
    this.merged = new Int32Array(cap);
    this.mask = cap - 1;
  }

  private slot(a: number, b: number): number {
    let h = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca6b)) >>> 0;
    h ^= h >>> 15;
    let i = h & this.mask;
    while (this.keysA[i] !== -1 && (this.keysA[i] !== a || this.keysB[i] !== b)) i = (i + 1) & this.mask;
    return i;
  }

  /** Sets the pair (a later rank for the same pair replaces the earlier, as in Rust). */
  set(a: number, b: number, rank: number, merged: number): void {
    const i = this.slot(a, b);
    this.keysA[i] = a;
    this.keysB[i] = b;
    this.ranks[i] = rank;
    this.merged[i] = merged;
  }

  /** Rank of the pair, or -1. */
  rank(a: number, b: number): number {
    const i = this.slot(a, b);
    return this.keysA[i] === -1 ? -1 : this.ranks[i]!;
  }

  /** Merged id of a pair known to exist. */
  mergedId(a: number, b: number): number {
    return this.merged[this.slot(a, b)]!;
  }
}

/** Symbols of one word: ids and `[start, end)` in the caller's units; merged in place. */
export interface Symbols {
  ids: Int32Array;
  starts: Int32Array;
  ends: Int32Array;
  length: number;
}

let heap = new Float64Array(1024);
let prev = new Int32Array(256);
let next = new Int32Array(256);

/**
 * Applies every merge of `table` to `sym` (first `sym.length` entries), lowest rank first and
 * leftmost first among equal ranks, and compacts the survivors to the front. Returns the count.
 */
export function mergeSymbols(sym: Symbols, table: PairTable): number {
  const n = sym.length;
  if (n < 2) return n;
  // Heap keys are rank * scale + position: exact in a double while rank * scale < 2^53.
  let scale = 1 << 16;
  while (scale < n) scale *= 2;
  if (prev.length < n) {
    prev = new Int32Array(n * 2);
    next = new Int32Array(n * 2);
  }
  const ids = sym.ids;
  let size = 0;
  const push = (key: number): void => {
    if (size === heap.length) {
      const h = new Float64Array(heap.length * 2);
      h.set(heap);
      heap = h;
    }
    let i = size;
    size += 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (heap[p]! <= key) break;
      heap[i] = heap[p]!;
      i = p;
    }
    heap[i] = key;
  };
  const pop = (): number => {
    const top = heap[0]!;
    size -= 1;
    const last = heap[size]!;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) break;
      const r = l + 1;
      const c = r < size && heap[r]! < heap[l]! ? r : l;
      if (heap[c]! >= last) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = last;
    return top;
  };
  for (let i = 0; i < n; i += 1) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
    if (i + 1 < n) {
      const r = table.rank(ids[i]!, ids[i + 1]!);
      if (r >= 0) push(r * scale + i);
    }
  }
  const dead = sym.ends; // a merged-away symbol gets end = -1
  while (size > 0) {
    const key = pop();
    const pos = key % scale;
    const rank = (key - pos) / scale;
    if (dead[pos] === -1) continue;
    const q = next[pos]!;
    if (q === -1 || table.rank(ids[pos]!, ids[q]!) !== rank) continue;
    ids[pos] = table.mergedId(ids[pos]!, ids[q]!);
    sym.ends[pos] = sym.ends[q]!;
    dead[q] = -1;
    const after = next[q]!;
    next[pos] = after;
    if (after !== -1) prev[after] = pos;
    const before = prev[pos]!;
    if (before !== -1) {
      const r = table.rank(ids[before]!, ids[pos]!);
      if (r >= 0) push(r * scale + before);
    }
    if (after !== -1) {
      const r = table.rank(ids[pos]!, ids[after]!);
      if (r >= 0) push(r * scale + pos);
    }
  }
  let out = 0;
  for (let i = 0; i < n; i += 1) {
    if (dead[i] === -1) continue;
    ids[out] = ids[i]!;
    sym.starts[out] = sym.starts[i]!;
    sym.ends[out] = sym.ends[i]!;
    out += 1;
  }
  sym.length = out;
  return out;
}
