/**
 * The masking rule of docs/masking.md, ported from python-backend/src/qlora_studio/data/masking.py
 * and held to the same vectors (test/fixtures/masking/). Positions are UTF-16 indices while the
 * rule runs (every find and slice is consistent in one unit) and code points in the result, as in
 * Python.
 */
import { pyLstrip, pyRstrip, pyStrip, codePointIndex } from './pyString';
import { RowError } from './rowError';
import type { ChatMessage, ChatTemplate, SpecialTokens } from './template';
import type { TextTokenizer } from './tokenizer';

/** Label of a token that carries no loss. */
export const IGNORE_INDEX = -100;

/** End-of-turn markers of common chat formats; the tokenizer's eos_token is always added first. */
export const END_OF_TURN_MARKERS = ['<|im_end|>', '<|eot_id|>', '<end_of_turn>', '<|end|>', '</s>', '<|endoftext|>', '<|end_of_text|>', '<eos>'];

/** Which tokens train: every assistant turn, the last one, or everything. */
export type TrainOn = 'assistant' | 'completion' | 'all';

/** A conversation as the trainer sees it. Offsets and spans are code points of `text`. */
export interface Encoded {
  text: string;
  inputIds: number[];
  labels: number[];
  tokens: string[];
  offsets: Array<[number, number]>;
  trainedSpans: Array<[number, number]>;
  truncated: boolean;
  /** Token count before truncation. */
  fullLength: number;
}

function commonPrefixLen(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i += 1;
  return i;
}

function find(s: string, x: string, from: number, to: number): number {
  const p = s.indexOf(x, from);
  return p >= 0 && p + x.length <= to ? p : -1;
}

function findMarker(text: string, start: number, end: number, markers: string[]): [number, number] | undefined {
  let best: [number, number] | undefined;
  for (const m of markers) {
    const pos = find(text, m, start, end);
    if (pos < 0) continue;
    const cand: [number, number] = [pos, pos + m.length];
    if (!best || cand[0] < best[0] || (cand[0] === best[0] && cand[1] > best[1])) best = cand;
  }
  return best;
}

interface Ctx { full: string; template: ChatTemplate; messages: readonly ChatMessage[]; tokens: SpecialTokens }

function locateTurn(c: Ctx, i: number, cursor: number): [number, number] {
  const before = c.template.render(c.messages.slice(0, i), true, c.tokens);
  const after = c.template.render(c.messages.slice(0, i + 1), false, c.tokens);
  if (c.full.startsWith(before) && after.startsWith(before)) return [before.length, commonPrefixLen(after, c.full)];
  const content = pyStrip(c.messages[i]!.content);
  const pos = content ? find(c.full, content, cursor, c.full.length) : -1;
  if (pos < 0) {
    throw new RowError('template_mismatch', `cannot find assistant message ${i + 1} in the rendered text: the template's generation prompt is not a prefix of the rendered conversation and the content does not appear verbatim`);
  }
  let regionEnd = c.full.length;
  for (const later of c.messages.slice(i + 1)) {
    const next = pyStrip(later.content);
    const found = next ? find(c.full, next, pos + content.length, c.full.length) : -1;
    if (found >= 0) {
      regionEnd = found;
      break;
    }
  }
  return [pos, regionEnd];
}

/** Step 1 of the rule: the final text (EOS inserted where needed) and one span per assistant turn (UTF-16). */
export function assistantSpans(c: Ctx): { text: string; spans: Array<[number, number]> } {
  const eos = c.tokens.eos_token;
  const markers = [...new Set([eos, ...END_OF_TURN_MARKERS])].filter((m) => m !== '');
  const raw: Array<[number, number, boolean]> = [];
  const inserts: number[] = [];
  let cursor = 0;
  c.messages.forEach((msg, i) => {
    if (msg.role !== 'assistant') return;
    const [start0, regionEnd] = locateTurn(c, i, cursor);
    const seg = c.full.slice(start0, regionEnd);
    const content = pyStrip(msg.content);
    const at = content ? seg.indexOf(content) : -1;
    const start = at >= 0 ? start0 + at : start0 + seg.length - pyLstrip(seg).length;
    const contentEnd = at >= 0 ? start + content.length : start;
    const marker = findMarker(c.full, contentEnd, regionEnd, markers);
    if (marker) raw.push([start, marker[1], false]);
    else {
      if (!eos) throw new RowError('template_error', 'the template closes no assistant turn with an end-of-turn token and the tokenizer has no eos_token');
      const q = Math.max(contentEnd, start0 + pyRstrip(seg).length);
      inserts.push(q);
      raw.push([start, q, true]);
    }
    cursor = Math.max(cursor, regionEnd);
  });
  if (inserts.length === 0) return { text: c.full, spans: raw.map(([s, e]) => [s, e]) };
  let text = '';
  let prev = 0;
  for (const q of inserts) {
    text += c.full.slice(prev, q) + eos;
    prev = q;
  }
  text += c.full.slice(prev);
  const moved = (p: number, inclusive: boolean) => p + eos.length * inserts.filter((q) => (inclusive ? q <= p : q < p)).length;
  const spans = raw.map(([s, e, inserted]): [number, number] => {
    if (!inserted) return [moved(s, true), moved(e, false)];
    const eosAt = moved(e, false);
    return [Math.min(moved(s, true), eosAt), eosAt + eos.length];
  });
  return { text, spans };
}

/** Step 2: tokenize once, label tokens overlapping a span, truncate. */
export function labelTokens(text: string, tokenizer: TextTokenizer, spans: Array<[number, number]>, maxSeqLen: number): Omit<Encoded, 'text' | 'trainedSpans'> {
  const enc = tokenizer.encode(text);
  let { ids, tokens, offsets } = enc;
  const bos = tokenizer.bosId;
  if (bos !== undefined && ids.length >= 2 && ids[0] === bos && ids[1] === bos) {
    ids = ids.slice(1);
    tokens = tokens.slice(1);
    offsets = offsets.slice(1);
  }
  const labels = ids.map((id, k) => {
    const [a, b] = offsets[k]!;
    const trained = spans.some(([s, e]) => (a < b ? a < e && b > s : s <= a && a < e));
    return trained ? id : IGNORE_INDEX;
  });
  const fullLength = ids.length;
  const truncated = fullLength > maxSeqLen;
  if (truncated) {
    ids = ids.slice(0, maxSeqLen);
    tokens = tokens.slice(0, maxSeqLen);
    offsets = offsets.slice(0, maxSeqLen);
    labels.length = maxSeqLen;
  }
  return { inputIds: ids, labels, tokens, offsets, truncated, fullLength };
}

/** Renders `messages` and labels its tokens per `trainOn`; throws RowError for a bad row. */
export function encodeConversation(messages: readonly ChatMessage[], tokenizer: TextTokenizer, template: ChatTemplate, trainOn: TrainOn, maxSeqLen: number): Encoded {
  const tokens = tokenizer.special;
  const full = template.render(messages, false, tokens);
  const { text, spans: utf16 } = assistantSpans({ full, template, messages, tokens });
  const cp = codePointIndex(text);
  let spans = utf16.map(([s, e]): [number, number] => [cp(s), cp(e)]);
  switch (trainOn) {
    case 'all': spans = [[0, cp(text.length)]]; break;
    case 'completion': spans = spans.slice(-1); break;
    case 'assistant': break;
    default: { const never: never = trainOn; throw new Error(`unknown train_on ${String(never)}`); }
  }
  const labelled = labelTokens(text, tokenizer, spans, maxSeqLen);
  if (labelled.labels.every((l) => l === IGNORE_INDEX)) {
    throw new RowError('no_trained_tokens', labelled.truncated
      ? `no trained token is left after truncation to max_seq_len=${maxSeqLen}; raise data.max_seq_len or shorten the conversation`
      : 'the conversation has no assistant message to train on');
  }
  return { text, trainedSpans: spans, ...labelled };
}
