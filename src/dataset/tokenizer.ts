/**
 * Tokenization for the preview. BPE tokenizers this project's own encoder implements (bpeEncoder.ts:
 * byte-level and SentencePiece-style BPE) go through it: ids and code-point offsets computed while
 * encoding, equal to the Rust `tokenizers`. Anything else uses `@huggingface/tokenizers` (pure
 * JavaScript, reads the model's own tokenizer.json) plus character offsets, which that library
 * does not return: they are recovered by aligning each token's surface bytes with the UTF-8 of the
 * text, then mapped to code-point offsets, the unit of the masking rule (docs/masking.md) and of
 * Python `str`.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { BpeEncoder } from './bpeEncoder';
import { tokenSurface, type SurfaceKind } from './tokenSurface';

/** One encoded text: ids and each token's `[start, end)` in code points of the text. */
export interface Encoding {
  ids: number[];
  tokens: string[];
  offsets: Array<[number, number]>;
}

/** The contents of `tokenizer.json` and `tokenizer_config.json` (parsed JSON). */
export interface TokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

/** Token text of a special-token entry in tokenizer_config.json (a string or an AddedToken dict). */
export function tokenText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return '';
}

function surfaceKind(json: Record<string, unknown>): SurfaceKind {
  const text = JSON.stringify([json['pre_tokenizer'], json['decoder']]);
  if (text.includes('"ByteLevel"')) return 'byteLevel';
  const model = json['model'] as { type?: string } | undefined;
  if (model?.type === 'WordPiece') return 'wordPiece';
  return 'metaspace';
}

/** True when a ByteLevel post-processor trims whitespace out of offsets (as the Rust one does). */
function trimsOffsets(json: Record<string, unknown>): boolean {
  const pp = json['post_processor'] as { type?: string; trim_offsets?: boolean; processors?: unknown[] } | null;
  const all = pp?.type === 'Sequence' ? (pp.processors as Array<{ type?: string; trim_offsets?: boolean }>) : pp ? [pp] : [];
  return all.some((p) => p.type === 'ByteLevel' && p.trim_offsets === true);
}

/** A loaded tokenizer with the special tokens templates read. */
export class TextTokenizer {
  private lib: Tokenizer | undefined;
  private plainTok: Tokenizer | undefined;
  private readonly json: Record<string, unknown>;
  private readonly config: Record<string, unknown>;
  /** Texts of the added tokens flagged special, longest first, ties by code-point order. */
  readonly specialTexts: readonly string[];
  private readonly kind: SurfaceKind;
  private readonly trim: boolean;
  private readonly added = new Map<number, string>();
  /** The project's own encoder, or why this tokenizer uses the library instead. */
  readonly fast: BpeEncoder | string;
  /** bos/eos/pad/unk token texts ('' when the tokenizer has none). */
  readonly special: { bos_token: string; eos_token: string; pad_token: string; unk_token: string };
  /** Id of the BOS token, if any. */
  readonly bosId: number | undefined;

  constructor(files: TokenizerFiles) {
    this.fast = BpeEncoder.load(files.tokenizerJson);
    this.json = files.tokenizerJson;
    this.config = files.tokenizerConfig;
    const specials = ((files.tokenizerJson['added_tokens'] ?? []) as Array<{ content: string; special?: boolean }>)
      .filter((t) => t.special && t.content)
      .map((t) => t.content);
    this.specialTexts = [...new Set(specials)].sort((a, b) => cpCompare(a, b));
    this.kind = surfaceKind(files.tokenizerJson);
    this.trim = trimsOffsets(files.tokenizerJson);
    for (const t of (files.tokenizerJson['added_tokens'] ?? []) as Array<{ id: number; content: string }>) {
      this.added.set(t.id, t.content);
    }
    const c = files.tokenizerConfig;
    this.special = {
      bos_token: tokenText(c['bos_token']), eos_token: tokenText(c['eos_token']),
      pad_token: tokenText(c['pad_token']), unk_token: tokenText(c['unk_token']),
    };
    // A tokenizer.json the library cannot read either fails here, as it always did.
    if (typeof this.fast === 'string') void this.tok;
    this.bosId = this.idOf(this.special.bos_token);
  }

  /** The library tokenizer (built on first use: only fallbacks and `addsBos` need it). */
  private get tok(): Tokenizer {
    this.lib ??= new Tokenizer(this.json, this.config);
    return this.lib;
  }

  /** The same tokenizer with its special added tokens unmatched (built on first use). */
  private plain(): Tokenizer {
    if (!this.plainTok) {
      const added = ((this.json['added_tokens'] ?? []) as Array<{ special?: boolean }>).filter((t) => !t.special);
      this.plainTok = new Tokenizer({ ...this.json, added_tokens: added }, this.config);
    }
    return this.plainTok;
  }

  private nl: number[] | undefined;

  /** Ids of "\n" encoded alone (cached; the piece encoder strips them). */
  get newlineIds(): number[] {
    this.nl ??= this.encode('\n').ids;
    return this.nl;
  }

  /** True when the tokenizer adds BOS by itself (its post-processor), as for `format: text`. */
  addsBos(): boolean {
    this.bos ??= this.bosId !== undefined && (templateFirstId(this.json['post_processor']) ?? Number(this.tok.encode('x', { add_special_tokens: true }).ids[0])) === this.bosId;
    return this.bos;
  }

  private bos: boolean | undefined;

  /** Id of a token text, or undefined. */
  idOf(token: string): number | undefined {
    if (!token) return undefined;
    return typeof this.fast === 'string' ? this.tok.token_to_id(token) : this.fast.idOf(token);
  }

  /** True when `id` is an added (special/control) token. */
  isAdded(id: number): boolean {
    return this.added.has(id);
  }

  /**
   * Encodes `text` without adding special tokens, with code-point offsets. `plain`: special
   * tokens in the text are not matched (Rust `encode_special_tokens`), so it is ordinary text.
   */
  encode(text: string, plain = false): Encoding {
    const fast = typeof this.fast === 'string' ? undefined : this.fast.encode(text, plain);
    if (!fast) return this.libraryEncode(text, plain);
    const enc = this.fast as BpeEncoder;
    return { ids: fast.ids, tokens: fast.ids.map((id) => enc.tokenOf(id)), offsets: fast.offsets };
  }

  /** `encode` through `@huggingface/tokenizers`, offsets recovered from the token bytes. */
  libraryEncode(text: string, plain = false): Encoding {
    const enc = (plain ? this.plain() : this.tok).encode(text, { add_special_tokens: false });
    const ids = enc.ids.map(Number);
    const tokens = enc.tokens;
    return { ids, tokens, offsets: alignOffsets(text, ids.map((id, i) => this.added.get(id) ?? tokenSurface(tokens[i]!, this.kind)), this.trim) };
  }
}

/**
 * The first id a TemplateProcessing post-processor puts before a single text (-1 when it starts
 * with the text itself, also for none or ByteLevel), or undefined for post-processors only the
 * library knows.
 */
function templateFirstId(pp: unknown): number | undefined {
  const all = (pp as { type?: string } | null)?.type === 'Sequence' ? ((pp as { processors?: unknown[] }).processors ?? []) : pp ? [pp] : [];
  let first = -1;
  for (const p of all as Array<{ type?: string; single?: unknown[]; special_tokens?: Record<string, { ids?: number[] }> }>) {
    if (p.type === 'ByteLevel') continue;
    if (p.type !== 'TemplateProcessing' || !Array.isArray(p.single)) return undefined;
    const head = p.single[0] as { SpecialToken?: { id?: string } } | undefined;
    if (head?.SpecialToken) {
      const id = p.special_tokens?.[head.SpecialToken.id ?? '']?.ids?.[0];
      if (typeof id !== 'number') return undefined;
      first = id;
    }
  }
  return first;
}

/** Longest first, then code-point order (Python's sort key (-len, text)). */
function cpCompare(a: string, b: string): number {
  const la = Array.from(a).length;
  const lb = Array.from(b).length;
  if (la !== lb) return lb - la;
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < x.length; i += 1) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return 0;
}

function utf8Len(cp: number): number {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/**
 * Aligns token surfaces (byte strings as Uint8Array or text) with `text` and returns code-point
 * offsets. Bytes the tokenizer added (a SentencePiece prefix space) or dropped are skipped.
 */
export function alignOffsets(text: string, surfaces: Array<Uint8Array | string>, trim: boolean): Array<[number, number]> {
  const bytes = Buffer.from(text, 'utf8');
  // cpAt[b] = index of the code point holding byte b; cpAt[bytes.length] = number of code points.
  const cpAt = new Uint32Array(bytes.length + 1);
  let b = 0;
  let cp = 0;
  for (const ch of text) {
    const n = utf8Len(ch.codePointAt(0)!);
    for (let k = 0; k < n; k += 1) cpAt[b + k] = cp;
    b += n;
    cp += 1;
  }
  cpAt[bytes.length] = cp;
  const enc = new TextEncoder();
  const out: Array<[number, number]> = [];
  let cursor = 0;
  for (const s of surfaces) {
    let sb = typeof s === 'string' ? enc.encode(s) : s;
    let at = matchAt(bytes, sb, cursor);
    if (at < 0 && sb[0] === 0x20) {
      sb = sb.subarray(1);
      at = matchAt(bytes, sb, cursor);
    }
    if (at < 0) at = bytes.indexOf(Buffer.from(sb), cursor);
    if (at < 0) at = cursor;
    let start = at;
    let end = Math.min(at + sb.length, bytes.length);
    if (trim) {
      while (start < end && bytes[start] === 0x20) start += 1;
    }
    const endCp = end > 0 && end < bytes.length && cpAt[end] === cpAt[end - 1] ? cpAt[end]! + 1 : cpAt[end]!;
    out.push([cpAt[start]!, Math.max(cpAt[start]!, endCp)]);
    cursor = end;
  }
  return out;
}

function matchAt(hay: Uint8Array, needle: Uint8Array, at: number): number {
  if (at + needle.length > hay.length) return -1;
  for (let i = 0; i < needle.length; i += 1) if (hay[at + i] !== needle[i]) return -1;
  return at;
}
