/**
 * Added-token splitting as the Rust `tokenizers` `AddedVocabulary` does it: first the tokens
 * matched on the original text (`normalized: false`), then, in the text between them, those
 * matched on normalized text; leftmost-longest matches, `lstrip`/`rstrip` widening a match over
 * white space. With special tokens left as text (`plain`, Rust `encode_special_tokens`) a special
 * token is still matched, then passed over, so the text it covers is not searched for others.
 * Matching on normalized text is only done here when the normalizer is the identity.
 */
import { WS_CLASS } from './bpeText';

/** One `added_tokens` entry of tokenizer.json. */
export interface AddedToken {
  id: number;
  content: string;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  special?: boolean;
}

/** A piece of the text: an added token (`id`) or text for the model (`id` -1); UTF-16 offsets. */
export interface Span {
  id: number;
  start: number;
  end: number;
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const WS = new RegExp(`[${WS_CLASS}]`, 'u');

interface Matcher {
  re: RegExp;
  byText: Map<string, AddedToken>;
}

function matcher(tokens: AddedToken[]): Matcher | undefined {
  if (!tokens.length) return undefined;
  const sorted = [...tokens].sort((a, b) => b.content.length - a.content.length);
  return { re: new RegExp(sorted.map((t) => escapeRe(t.content)).join('|'), 'g'), byText: new Map(tokens.map((t) => [t.content, t])) };
}

/** Splits texts on the added tokens; `plain` leaves special ones unmatched. */
export class AddedSplitter {
  private readonly raw: Matcher | undefined;
  private readonly norm: Matcher | undefined;

  private constructor(tokens: AddedToken[], private readonly plain: boolean) {
    this.raw = matcher(tokens.filter((t) => !t.normalized));
    this.norm = matcher(tokens.filter((t) => t.normalized));
  }

  /** The splitter, or a reason this encoder cannot split like Rust does. */
  static create(all: AddedToken[], plain: boolean, identityNormalizer: boolean): AddedSplitter | string {
    const tokens = all.filter((t) => t.content);
    if (tokens.some((t) => t.single_word)) return 'single_word added tokens';
    if (!identityNormalizer && tokens.some((t) => t.normalized)) return 'normalized added tokens with a normalizer';
    return new AddedSplitter(tokens, plain);
  }

  /** True when no token can match (the whole text goes to the model). */
  get empty(): boolean {
    return !this.raw && !this.norm;
  }

  private find(text: string, from: number, to: number, m: Matcher | undefined): Span[] {
    return find(text, from, to, m, this.plain);
  }

  /** The pieces of `text` (empty pieces dropped). */
  split(text: string): Span[] {
    const first = this.find(text, 0, text.length, this.raw);
    if (!this.norm) return first;
    const out: Span[] = [];
    for (const s of first) {
      if (s.id >= 0) out.push(s);
      else out.push(...this.find(text, s.start, s.end, this.norm));
    }
    return out;
  }
}

function find(text: string, from: number, to: number, m: Matcher | undefined, plain: boolean): Span[] {
  if (!m) return from < to ? [{ id: -1, start: from, end: to }] : [];
  const out: Span[] = [];
  const piece = from === 0 && to === text.length ? text : text.slice(from, to);
  let offset = 0;
  m.re.lastIndex = 0;
  for (let hit = m.re.exec(piece); hit; hit = m.re.exec(piece)) {
    const tok = m.byText.get(hit[0])!;
    if (plain && tok.special) continue;
    let start = hit.index;
    let stop = start + hit[0].length;
    if (tok.lstrip) {
      let s = start;
      while (s > 0 && isWs(piece, s, -1)) s -= charWidth(piece, s, -1);
      start = Math.max(s, offset);
    }
    if (tok.rstrip) while (stop < piece.length && isWs(piece, stop, 1)) stop += charWidth(piece, stop, 1);
    if (offset < start) out.push({ id: -1, start: from + offset, end: from + start });
    out.push({ id: tok.id, start: from + start, end: from + stop });
    offset = stop;
  }
  if (offset < piece.length) out.push({ id: -1, start: from + offset, end: to });
  return out;
}

function charWidth(s: string, at: number, dir: 1 | -1): number {
  const c = dir === 1 ? s.charCodeAt(at) : s.charCodeAt(at - 1);
  return dir === 1 ? (c >= 0xd800 && c < 0xdc00 ? 2 : 1) : c >= 0xdc00 && c < 0xe000 ? 2 : 1;
}

function isWs(s: string, at: number, dir: 1 | -1): boolean {
  const c = dir === 1 ? s.charCodeAt(at) : s.charCodeAt(at - 1);
  return c < 0x3001 && WS.test(String.fromCharCode(c));
}
