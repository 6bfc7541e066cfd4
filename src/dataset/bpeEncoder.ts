/**
 * A BPE encoder that reads `tokenizer.json` and returns ids with code-point offsets computed while
 * encoding, equal to the Rust `tokenizers` (`encode(text, add_special_tokens=False)`): byte-level
 * BPE (GPT-2 pattern, or a Split pattern such as Llama-3's and Qwen2's) and SentencePiece-style
 * BPE (Metaspace, or no pre-tokenizer with Prepend/Replace normalizers, byte fallback).
 * `BpeEncoder.load` returns a reason for whatever it does not implement, and `encode` returns
 * undefined for a text it cannot follow exactly (ill-formed UTF-16, text that NFC would change);
 * in both cases the caller uses the library tokenizer.
 */
import { z } from 'zod';
import { AddedSplitter, type AddedToken } from './bpeAdded';
import type { Symbols } from './bpeMerges';
import { loadBpeModel, newSymbols, type BpeModel } from './bpeModel';
import { readTrim, spaceRuns, toCodePoints, trimOffsets, type Trim } from './bpeOffsets';
import { normalize, prepend, readNormalizer, readPreTokenizer, type Normalized, type NormStep, type PreTok } from './bpeText';
import { byteLevelWord, type WordResult } from './bpeWords';

/** Ids and `[start, end)` code-point offsets of one text. */
export interface BpeEncoding {
  ids: number[];
  offsets: Array<[number, number]>;
}

const addedSchema = z.array(z.object({
  id: z.number().int().nonnegative(),
  content: z.string(),
  single_word: z.boolean().optional(),
  lstrip: z.boolean().optional(),
  rstrip: z.boolean().optional(),
  normalized: z.boolean().optional(),
  special: z.boolean().optional(),
}));

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const CACHE_LIMIT = 50_000;
const CACHE_WORD_MAX = 100;
/** Char-level words longer than this (code points) are cut where no merge can cross. */
const CHUNK_MIN = 24;

/** A loaded encoder. */
export class BpeEncoder {
  private readonly sym: Symbols = newSymbols();
  private readonly cache = new Map<string, WordResult>();

  private constructor(
    private readonly model: BpeModel,
    private readonly steps: NormStep[],
    private readonly pre: PreTok,
    private readonly splitters: { normal: AddedSplitter; plain: AddedSplitter },
    private readonly trim: Trim | undefined,
    private readonly addedIds: Map<string, number>,
    /** An NFC step: text it would change goes to the library (see `normalize`). */
    private readonly nfc: boolean,
  ) {}

  private names: string[] | undefined;

  /** Text of a token id: the added token's, else the vocabulary's ('' when unknown). */
  tokenOf(id: number): string {
    if (!this.names) {
      const names: string[] = new Array<string>(this.model.vocab.size).fill('');
      for (const [t, i] of this.model.vocab) names[i] = t;
      for (const [t, i] of this.addedIds) names[i] = t;
      this.names = names;
    }
    return this.names[id] ?? '';
  }

  /** Id of a token text: an added token first, then the vocabulary (as Rust `token_to_id`). */
  idOf(token: string): number | undefined {
    return this.addedIds.get(token) ?? this.model.vocab.get(token);
  }

  /** The encoder for a parsed tokenizer.json, or the reason it is not handled here. */
  static load(json: Record<string, unknown>): BpeEncoder | string {
    const model = loadBpeModel(json['model']);
    if (typeof model === 'string') return model;
    const steps = readNormalizer(json['normalizer']);
    if (typeof steps === 'string') return steps;
    const pre = readPreTokenizer(json['pre_tokenizer']);
    if (typeof pre === 'string') return pre;
    const nfcOnly = steps.every((st) => st.kind === 'nfc');
    if (pre.kind === 'byteLevel' && !nfcOnly) return 'byte-level BPE with a normalizer other than NFC';
    if (pre.kind === 'byteLevel' && model.byteLevelId.some((id) => id < 0)) return 'byte-level alphabet missing from the vocabulary';
    const parsed = addedSchema.safeParse(json['added_tokens'] ?? []);
    if (!parsed.success) return `added_tokens: ${parsed.error.issues[0]?.message ?? 'unreadable'}`;
    const added: AddedToken[] = parsed.data;
    const normal = AddedSplitter.create(added, false, nfcOnly);
    if (typeof normal === 'string') return normal;
    const plain = AddedSplitter.create(added, true, nfcOnly);
    if (typeof plain === 'string') return plain;
    const trim = readTrim(json['post_processor'], model.vocab);
    if (typeof trim === 'string') return trim;
    return new BpeEncoder(model, steps, pre, { normal, plain }, trim, new Map(added.map((t) => [t.content, t.id])), steps.some((st) => st.kind === 'nfc'));
  }

  /** Encodes `text` (no special tokens added); `plain` leaves special added tokens unmatched. */
  encode(text: string, plain = false): BpeEncoding | undefined {
    const surrogates = /[\ud800-\udfff]/.test(text);
    if (surrogates && LONE_SURROGATE.test(text)) return undefined;
    if (this.nfc && text.normalize('NFC') !== text) return undefined;
    const ids: number[] = [];
    const offsets: Array<[number, number]> = [];
    const splitter = plain ? this.splitters.plain : this.splitters.normal;
    const spans = splitter.empty ? (text ? [{ id: -1, start: 0, end: text.length }] : []) : splitter.split(text);
    const addedRuns = new Map<number, [number, number]>();
    for (const s of spans) {
      if (s.id >= 0) {
        if (this.trim) addedRuns.set(ids.length, spaceRuns(text.slice(s.start, s.end)));
        ids.push(s.id);
        offsets.push([s.start, s.end]);
      } else if (!this.segment(text, s.start, s.end, ids, offsets)) return undefined;
    }
    if (surrogates) toCodePoints(text, offsets);
    if (this.trim) trimOffsets(ids, offsets, this.trim, addedRuns);
    return { ids, offsets };
  }

  private segment(text: string, from: number, to: number, ids: number[], offsets: Array<[number, number]>): boolean {
    const pre = this.pre;
    if (pre.kind === 'byteLevel') {
      const piece = text.slice(from, to);
      if (this.nfc && piece.normalize('NFC') !== piece) return false;
      this.splitWords(piece, from, 0, pre.regexes, ids, offsets);
      return true;
    }
    const n = normalize(text, from, to, this.steps);
    if (!n) return false;
    let starts = [0];
    if (pre.kind === 'metaspace') {
      for (let k = 0; k < n.cps.length; k += 1) if (n.cps[k] === 0x20) n.cps[k] = pre.rep;
      if ((pre.prepend === 'always' || (pre.prepend === 'first' && from === 0)) && n.cps[0] !== pre.rep) prepend(n, [pre.rep]);
      if (pre.split) {
        starts = [];
        for (let k = 0; k < n.cps.length; k += 1) if (k === 0 || n.cps[k] === pre.rep) starts.push(k);
      }
    }
    for (let w = 0; w < starts.length; w += 1) {
      const a = starts[w]!;
      const b = w + 1 < starts.length ? starts[w + 1]! : n.cps.length;
      if (a >= b) continue;
      if (b - a <= CHUNK_MIN || this.model.ignoreMerges) {
        this.emitChars(n, a, b, ids, offsets);
        continue;
      }
      // A long word (a whole text without a pre-tokenizer): cut where no merge can cross.
      let c = a;
      for (let k = a + 1; k < b; k += 1) {
        if (this.model.splittable(n.cps[k - 1]!, n.cps[k]!)) {
          this.emitChars(n, c, k, ids, offsets);
          c = k;
        }
      }
      this.emitChars(n, c, b, ids, offsets);
    }
    return true;
  }

  /** Cuts `piece` (at `base` in the text) with `regexes[k..]` in turn (matches and the gaps between). */
  private splitWords(piece: string, base: number, k: number, regexes: RegExp[], ids: number[], offsets: Array<[number, number]>): void {
    const re = regexes[k];
    if (!re) {
      this.byteWord(piece, base, ids, offsets);
      return;
    }
    let last = 0;
    re.lastIndex = 0;
    const parts: Array<[number, number]> = [];
    for (let m = re.exec(piece); m; m = re.exec(piece)) {
      if (!m[0]) {
        const at = re.lastIndex;
        re.lastIndex += piece.charCodeAt(at) >= 0xd800 && piece.charCodeAt(at) < 0xdc00 ? 2 : 1;
        continue;
      }
      if (m.index > last) parts.push([last, m.index]);
      parts.push([m.index, m.index + m[0].length]);
      last = m.index + m[0].length;
    }
    if (last < piece.length) parts.push([last, piece.length]);
    for (const [a, b] of parts) this.splitWords(a === 0 && b === piece.length ? piece : piece.slice(a, b), base + a, k + 1, regexes, ids, offsets);
  }

  private emitChars(n: Normalized, a: number, b: number, ids: number[], offsets: Array<[number, number]>): void {
    const r = this.charWord(n.cps, a, b);
    for (let k = 0; k < r.length; k += 3) {
      ids.push(r[k]!);
      offsets.push([n.starts[a + r[k + 1]!]!, n.ends[a + r[k + 2]! - 1]!]);
    }
  }

  /** A char-level word's tokens as [id, start, end] triples relative to `a` (cached when short). */
  private charWord(cps: number[], a: number, b: number): WordResult {
    const key = b - a <= CACHE_WORD_MAX ? String.fromCodePoint(...cps.slice(a, b)) : undefined;
    const hit = key === undefined ? undefined : this.cache.get(key);
    if (hit) return hit;
    let out: WordResult;
    const whole = this.model.ignoreMerges && b - a <= this.model.longest ? this.model.vocab.get(key ?? String.fromCodePoint(...cps.slice(a, b))) : undefined;
    if (whole !== undefined) out = Int32Array.of(whole, 0, b - a);
    else {
      const count = this.model.encodeChars(cps, a, b, this.sym);
      out = new Int32Array(count * 3);
      for (let k = 0; k < count; k += 1) {
        out[3 * k] = this.sym.ids[k]!;
        out[3 * k + 1] = this.sym.starts[k]! - a;
        out[3 * k + 2] = this.sym.ends[k]! - a;
      }
    }
    if (key !== undefined) this.remember(key, out);
    return out;
  }

  private byteWord(word: string, base: number, ids: number[], offsets: Array<[number, number]>): void {
    let r = this.cache.get(word);
    if (!r) {
      r = byteLevelWord(word, this.model, this.sym);
      if (word.length <= CACHE_WORD_MAX) this.remember(word, r);
    }
    for (let k = 0; k < r.length; k += 3) {
      ids.push(r[k]!);
      offsets.push([base + r[k + 1]!, base + r[k + 2]!]);
    }
  }

  private remember(key: string, r: WordResult): void {
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(key, r);
  }
}
