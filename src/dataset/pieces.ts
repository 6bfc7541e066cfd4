/**
 * Only the template writes control tokens: special-token text inside a message's content is
 * marked before rendering, and the marked pieces of the rendered text are encoded with
 * special-token matching off. docs/masking.md ("Step 3" and "Step 4.1") is normative; python
 * data/tokenize.py is the reference. Piece texts and positions are UTF-16; offsets code points.
 */
import { RowError } from './rowError';
import type { ChatMessage } from './template';
import type { TextTokenizer } from './tokenizer';
import { cpLength } from './pyString';

const MARK_OPEN = '\ufdd8';
const MARK_CLOSE = '\ufdd9';

/** A piece of the rendered text; `plain` pieces are special-token text a message wrote. */
export type Piece = [text: string, plain: boolean];

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function alternatives(special: readonly string[]): string | undefined {
  return special.length ? special.map(escapeRe).join('|') : undefined;
}

interface Marker { re: RegExp; firsts: string[] }
const markers = new WeakMap<readonly string[], Marker | null>();

/** `text` with every special-token occurrence wrapped in markers (leftmost first, longest wins). */
export function markText(text: string, special: readonly string[]): string {
  let m = markers.get(special);
  if (m === undefined) {
    const alt = alternatives(special);
    m = alt ? { re: new RegExp(alt, 'g'), firsts: [...new Set(special.map((t) => t[0]!))] } : null;
    markers.set(special, m);
  }
  // A text holding none of the tokens' first characters holds no token (one native scan each).
  if (!m || !m.firsts.some((c) => text.includes(c))) return text;
  m.re.lastIndex = 0;
  return m.re.test(text) ? text.replace(m.re, (x) => `${MARK_OPEN}${x}${MARK_CLOSE}`) : text;
}

/** Each message with `markText` applied to its content, or undefined when none changed. */
export function markMessages(messages: readonly ChatMessage[], special: readonly string[]): ChatMessage[] | undefined {
  let out: ChatMessage[] | undefined;
  messages.forEach((m, i) => {
    const content = markText(m.content, special);
    if (content === m.content) return;
    out ??= messages.map((x) => ({ ...x }));
    out[i] = { ...m, content };
  });
  return out;
}

/** The marked render as pieces; a lone marker (the template split a marked string) ends a piece. */
export function splitMarked(marked: string, special: readonly string[]): Piece[] {
  const inner = alternatives(special) ?? '(?!)';
  const re = new RegExp(`${MARK_OPEN}(${inner})${MARK_CLOSE}|[${MARK_OPEN}${MARK_CLOSE}]`, 'g');
  const pieces: Piece[] = [];
  let last = 0;
  for (const m of marked.matchAll(re)) {
    pieces.push([marked.slice(last, m.index), false]);
    if (m[1] !== undefined) pieces.push([m[1], true]);
    last = m.index + m[0].length;
  }
  pieces.push([marked.slice(last), false]);
  return pieces;
}

/**
 * `text` inserted at each position of `inserts` (UTF-16 positions in the joined pieces before any
 * insertion), from the last to the first: the first piece whose `[start, end]` holds the position
 * takes it, or, when that piece is plain, a new piece right after it does.
 */
export function insertText(pieces: Piece[], inserts: readonly number[], text: string): Piece[] {
  const out: Piece[] = pieces.map(([t, p]) => [t, p]);
  for (const q of [...inserts].sort((a, b) => b - a)) {
    let at = 0;
    let done = false;
    for (let idx = 0; idx < out.length && !done; idx += 1) {
      const [piece, plain] = out[idx]!;
      const end = at + piece.length;
      if (at <= q && q <= end) {
        if (!plain) out[idx] = [piece.slice(0, q - at) + text + piece.slice(q - at), false];
        else if (q === end) out.splice(idx + 1, 0, [text, false]);
        else throw new RowError('template_error', 'internal: an EOS insertion point lies inside special-token text of a message');
        done = true;
      }
      at = end;
    }
    if (!done) throw new RowError('template_error', 'internal: an EOS insertion point lies outside the text');
  }
  return out;
}

/** Ids and code-point offsets (into the joined text) of the pieces, encoded one by one. */
export function encodePieces(tok: TextTokenizer, pieces: readonly Piece[]): { ids: number[]; tokens: string[]; offsets: Array<[number, number]> } {
  const nl = tok.newlineIds;
  const ids: number[] = [];
  const tokens: string[] = [];
  const offsets: Array<[number, number]> = [];
  let at = 0;
  pieces.forEach(([text, plain], k) => {
    if (k > 0 && !text) return;
    let shift = at;
    let enc = k === 0 ? tok.encode(text, plain) : tok.encode(`\n${text}`, plain);
    if (k > 0) {
      if (nl.length && nl.every((id, j) => enc.ids[j] === id)) {
        enc = { ids: enc.ids.slice(nl.length), tokens: enc.tokens.slice(nl.length), offsets: enc.offsets.slice(nl.length) };
        shift -= 1;
      } else enc = tok.encode(text, plain);
    }
    ids.push(...enc.ids);
    tokens.push(...enc.tokens);
    for (const [a, b] of enc.offsets) offsets.push([Math.max(a + shift, at), Math.max(b + shift, at)]);
    at += cpLength(text);
  });
  return { ids, tokens, offsets };
}
