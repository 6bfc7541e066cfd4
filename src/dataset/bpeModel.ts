/**
 * The BPE model of a `tokenizer.json` (`model.type == "BPE"`): vocabulary, merges, unknown-token
 * and byte-fallback rules, applied to one pre-tokenized word the way the Rust `tokenizers` crate
 * does (`BPE::merge_word`). Options it does not implement make `loadBpeModel` return a reason, and
 * the caller keeps the library tokenizer.
 */
import { z } from 'zod';
import { mergeSymbols, PairTable, type Symbols } from './bpeMerges';

/** The model's options (vocab and merges, large, are checked entry by entry while loading). */
const modelSchema = z.object({
  type: z.literal('BPE'),
  vocab: z.custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), 'vocab is not an object'),
  merges: z.custom<unknown[]>((v) => Array.isArray(v), 'merges is not a list'),
  dropout: z.number().nullish(),
  unk_token: z.string().nullish(),
  continuing_subword_prefix: z.string().nullish(),
  end_of_word_suffix: z.string().nullish(),
  fuse_unk: z.boolean().nullish(),
  byte_fallback: z.boolean().nullish(),
  ignore_merges: z.boolean().nullish(),
});

/** GPT-2's byte -> printable character table (the byte-level alphabet). */
export const BYTE_CHARS: readonly string[] = (() => {
  const direct = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const out: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b += 1) {
    out.push(String.fromCharCode(direct(b) ? b : 256 + extra));
    if (!direct(b)) extra += 1;
  }
  return out;
})();

/** A loaded BPE model. */
export class BpeModel {
  /** Id of each single-code-point token. */
  private readonly charId = new Map<number, number>();
  private readonly byteFallback = new Int32Array(256).fill(-1);
  private readonly hasByteFallback: boolean;
  /** Id of each byte's byte-level character token (-1 when absent). */
  readonly byteLevelId = new Int32Array(256).fill(-1);
  private readonly unkId: number | undefined;
  private readonly fuseUnk: boolean;
  /** True when a word that is itself a vocabulary token is taken whole (`ignore_merges`). */
  readonly ignoreMerges: boolean;

  constructor(readonly vocab: Map<string, number>, private readonly table: PairTable, opts: { unkId: number | undefined; fuseUnk: boolean; byteFallback: boolean; ignoreMerges: boolean }) {
    let longest = 0;
    for (const [tok, id] of vocab) {
      if (tok.length > longest) longest = tok.length;
      if (tok.length <= 2) {
        const cp = tok.codePointAt(0);
        if (cp !== undefined && tok.length === (cp > 0xffff ? 2 : 1)) this.charId.set(cp, id);
      } else if (tok.length === 6 && tok.startsWith('<0x')) {
        const m = /^<0x([0-9A-F]{2})>$/.exec(tok);
        if (m) this.byteFallback[parseInt(m[1]!, 16)] = id;
      }
    }
    this.longest = longest;
    for (let b = 0; b < 256; b += 1) this.byteLevelId[b] = vocab.get(BYTE_CHARS[b]!) ?? -1;
    this.unkId = opts.unkId;
    this.fuseUnk = opts.fuseUnk;
    this.hasByteFallback = opts.byteFallback;
    this.ignoreMerges = opts.ignoreMerges;
  }

  private inside: PairTable | undefined;
  /** Longest vocabulary token, in UTF-16 units. */
  readonly longest: number;

  /**
   * True when no merge can ever join a symbol ending in `x` to one starting with `y`: both are
   * single-character tokens (so neither is unknown or byte fallback) and no vocabulary token holds
   * `x` followed by `y`, while every merge yields a vocabulary token. A word may then be cut
   * between them and its halves encoded alone with the same result.
   */
  splittable(x: number, y: number): boolean {
    if (!this.charId.has(x) || !this.charId.has(y)) return false;
    if (!this.inside) {
      this.inside = new PairTable(this.vocab.size * 4);
      for (const tok of this.vocab.keys()) {
        let prev = -1;
        for (const ch of tok) {
          const cp = ch.codePointAt(0)!;
          if (prev >= 0) this.inside.set(prev, cp, 0, 0);
          prev = cp;
        }
      }
    }
    return this.inside.rank(x, y) < 0;
  }

  /**
   * Initial symbols of a word of code points `cps[from..to)` (units: index in `cps`), with unknown
   * characters as byte-fallback tokens or the (fused) unknown token, then merged. Returns the
   * symbol count in `sym`.
   */
  encodeChars(cps: ArrayLike<number>, from: number, to: number, sym: Symbols): number {
    grow(sym, (to - from) * 4);
    let n = 0;
    const add = (id: number, s: number, e: number) => {
      sym.ids[n] = id;
      sym.starts[n] = s;
      sym.ends[n] = e;
      n += 1;
    };
    let unkS = -1;
    let unkE = -1;
    for (let k = from; k < to; k += 1) {
      const cp = cps[k]!;
      const id = this.charId.get(cp);
      if (id !== undefined) {
        if (unkS >= 0) add(this.unkId!, unkS, unkE);
        unkS = -1;
        add(id, k, k + 1);
        continue;
      }
      if (this.hasByteFallback) {
        const bytes = utf8Of(cp);
        if (bytes.every((b) => this.byteFallback[b]! >= 0)) {
          for (const b of bytes) add(this.byteFallback[b]!, k, k + 1);
          continue;
        }
      }
      if (this.unkId === undefined) continue;
      if (unkS >= 0 && this.fuseUnk) unkE = k + 1;
      else {
        if (unkS >= 0) add(this.unkId, unkS, unkE);
        unkS = k;
        unkE = k + 1;
      }
    }
    if (unkS >= 0) add(this.unkId!, unkS, unkE);
    sym.length = n;
    return mergeSymbols(sym, this.table);
  }

  /** Symbols of a byte-level word `bytes[from..to)` (units: byte index), merged. */
  encodeBytes(bytes: Uint8Array, from: number, to: number, sym: Symbols): number {
    grow(sym, to - from);
    let n = 0;
    for (let k = from; k < to; k += 1) {
      sym.ids[n] = this.byteLevelId[bytes[k]!]!;
      sym.starts[n] = k;
      sym.ends[n] = k + 1;
      n += 1;
    }
    sym.length = n;
    return mergeSymbols(sym, this.table);
  }
}

function utf8Of(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 63)];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
}

/** A reusable symbol buffer. */
export function newSymbols(): Symbols {
  return { ids: new Int32Array(64), starts: new Int32Array(64), ends: new Int32Array(64), length: 0 };
}

function grow(sym: Symbols, n: number): void {
  if (sym.ids.length >= n) return;
  const size = Math.max(n, sym.ids.length * 2);
  sym.ids = new Int32Array(size);
  sym.starts = new Int32Array(size);
  sym.ends = new Int32Array(size);
}

/** The model of `tokenizer.json`, or the reason this encoder does not handle it. */
export function loadBpeModel(json: unknown): BpeModel | string {
  const parsed = modelSchema.safeParse(json);
  if (!parsed.success) return `model is not a plain BPE model (${parsed.error.issues[0]?.message ?? 'unreadable'})`;
  const m = parsed.data;
  if (m.dropout) return 'BPE dropout';
  if (m.continuing_subword_prefix || m.end_of_word_suffix) return 'BPE subword prefix/suffix';
  const vocab = new Map<string, number>();
  for (const tok in m.vocab) {
    const id = m.vocab[tok];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0x7fffffff) return `vocabulary entry "${tok}" has no valid id`;
    vocab.set(tok, id);
  }
  const table = new PairTable(m.merges.length);
  for (let rank = 0; rank < m.merges.length; rank += 1) {
    const merge = m.merges[rank];
    let a: string;
    let b: string;
    if (typeof merge === 'string') {
      const sp = merge.indexOf(' ');
      if (sp < 0 || merge.indexOf(' ', sp + 1) >= 0) return `merge "${merge}" is not two tokens`;
      a = merge.slice(0, sp);
      b = merge.slice(sp + 1);
    } else if (Array.isArray(merge) && merge.length === 2 && typeof merge[0] === 'string' && typeof merge[1] === 'string') {
      [a, b] = merge as [string, string];
    } else return `merge ${JSON.stringify(merge)} is not two tokens`;
    const ia = vocab.get(a);
    const ib = vocab.get(b);
    const im = vocab.get(a + b);
    if (ia === undefined || ib === undefined || im === undefined) return `merge "${a} ${b}" uses a token outside the vocabulary`;
    table.set(ia, ib, rank, im);
  }
  let unkId: number | undefined;
  if (m.unk_token) {
    unkId = vocab.get(m.unk_token);
    if (unkId === undefined) return 'unknown token outside the vocabulary';
  }
  return new BpeModel(vocab, table, { unkId, fuseUnk: m.fuse_unk === true, byteFallback: m.byte_fallback === true, ignoreMerges: m.ignore_merges === true });
}
