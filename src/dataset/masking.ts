/**
 * The masking rule of docs/masking.md (differential rendering; control tokens only from the
 * template's own text), ported from python-backend/src/qlora_studio/data/masking.py and held to
 * the same vectors (test/fixtures/masking/). Positions are UTF-16 indices while the rule runs
 * (every find and slice is consistent in one unit) and code points in the result, as in Python.
 */
import { locate, overlaps, turnName, type Region } from './locate';
import { knownRender, lazyRender, startsWith, type LazyText } from './lazyRender';
import { layoutText } from './skeleton';
import { encodePieces, insertText, markMessages, splitMarked, type Piece } from './pieces';
import { RowError } from './rowError';
import { LazySpanned } from './spanned';
import { RESERVED, type ChatMessage, type ChatTemplate, type SpecialTokens } from './template';
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

/** The earliest (then longest) marker lying wholly inside `text[start, end)`, searching only that window. */
function findMarker(text: string, start: number, end: number, markers: string[]): [number, number] | undefined {
  if (end < start) return undefined;
  const part = text.substring(start, end);
  let best: [number, number] | undefined;
  for (const m of markers) {
    const at = part.indexOf(m);
    if (at < 0) continue;
    const pos = start + at;
    const cand: [number, number] = [pos, pos + m.length];
    if (!best || cand[0] < best[0] || (cand[0] === best[0] && cand[1] > best[1])) best = cand;
  }
  return best;
}

interface Ctx {
  full: string;
  template: ChatTemplate;
  messages: readonly ChatMessage[];
  tokens: SpecialTokens;
  /** No content holds a reserved character (checked by conversationSpans): skeleton layouts apply. */
  clean?: boolean;
}

/** Where assistant message `i`'s span starts: after the generation prompt when the template renders one before it. */
function turnStart(c: Ctx, full: LazyText, i: number, region: Region, name: string): number {
  let prompt: LazyText;
  let gen: LazyText;
  try {
    const head = c.messages.slice(0, i);
    prompt = lazyRender(c.template, head, false, c.tokens, c.clean === true);
    gen = lazyRender(c.template, head, true, c.tokens, c.clean === true);
  } catch {
    return region.start; // a template that refuses the conversation cut before this turn
  }
  if (region.start < prompt.length && startsWith(full, prompt)) {
    throw new RowError('template_mismatch', `${name}: changing its content changes how the template renders the earlier messages, so it cannot be located with certainty`);
  }
  if (gen.length > prompt.length && gen.length <= region.start && startsWith(gen, prompt) && startsWith(full, gen)) return gen.length;
  return region.start;
}

const markerLists = new Map<string, string[]>();

/** The end-of-turn markers searched after a turn: eos first, then the common ones (built once per eos). */
function markersFor(eos: string): string[] {
  let list = markerLists.get(eos);
  if (!list) {
    list = [...new Set([eos, ...END_OF_TURN_MARKERS])].filter((m) => m !== '');
    markerLists.set(eos, list);
  }
  return list;
}

/** Step 2 of the rule: one trained span per assistant message (UTF-16 in `full`) and the EOS insert points. */
export function assistantSpans(c: Ctx): { spans: Array<[number, number]>; inserts: number[]; inserted: boolean[] } {
  const eos = c.tokens.eos_token;
  const markers = markersFor(eos);
  // From the skeleton when the shape has one (equal to differential rendering; see Skeletons.regions).
  const fromSkeleton = c.clean === true ? c.template.regions(c.messages, c.tokens) : undefined;
  const regions = c.messages.map((_, j) => fromSkeleton?.[j] ?? locate(c.full, c.template, c.messages, j, c.tokens));
  const known = regions.filter((r): r is Region => typeof r !== 'string');
  const spans: Array<[number, number]> = [];
  const inserts: number[] = [];
  const inserted: boolean[] = [];
  let prevEnd = 0;
  const full = knownRender(c.template, c.messages, false, c.tokens, c.clean === true, c.full);
  c.messages.forEach((msg, i) => {
    if (msg.role !== 'assistant') return;
    const name = turnName(c.messages, i);
    const region = regions[i]!;
    if (typeof region === 'string') throw new RowError('template_mismatch', `${name}: cannot be located: ${region}`);
    regions.forEach((other, j) => {
      if (j !== i && typeof other !== 'string' && overlaps(region, other)) {
        throw new RowError('template_mismatch', `${name}: its rendered content overlaps message ${j + 1}'s, so it cannot be located with certainty`);
      }
    });
    const start = turnStart(c, full, i, region, name);
    if (start < prevEnd) throw new RowError('template_mismatch', `${name}: it is rendered before the end of the previous assistant turn, so it cannot be located with certainty`);
    const limit = Math.min(...known.filter((r) => r !== region && r.start >= region.end).map((r) => r.start), c.full.length);
    const marker = findMarker(c.full, region.end, limit, markers);
    if (marker) {
      spans.push([start, marker[1]]);
      inserted.push(false);
      prevEnd = marker[1];
      return;
    }
    if (!eos) throw new RowError('template_error', `${name}: the template closes it with no end-of-turn token and the tokenizer has no eos_token`);
    inserts.push(region.end);
    spans.push([start, region.end]);
    inserted.push(true);
    prevEnd = region.end;
  });
  return { spans, inserts, inserted };
}

/** Spans moved to the text with `eos` inserted at every insert point. */
function applyInserts(spans: Array<[number, number]>, inserted: boolean[], inserts: number[], eos: string): Array<[number, number]> {
  const moved = (p: number, inclusive: boolean) => p + eos.length * inserts.filter((q) => (inclusive ? q <= p : q < p)).length;
  return spans.map(([s, e], k): [number, number] => {
    if (!inserted[k]) return [moved(s, true), moved(e, false)];
    const eosAt = moved(e, false);
    return [Math.min(moved(s, true), eosAt), eosAt + eos.length];
  });
}

/** `full` as pieces, special-token text inside message contents marked plain (Step 3). */
function textPieces(c: Ctx, tok: TextTokenizer): Piece[] {
  const marked = markMessages(c.messages, tok.specialTexts);
  if (!marked) return [[c.full, false]];
  const pieces = splitMarked(c.template.render(marked, false, c.tokens), tok.specialTexts);
  if (pieces.map(([t]) => t).join('') !== c.full) {
    throw new RowError('template_mismatch', 'a message contains special-token text that the template splits or trims, so it cannot be kept as plain text; remove it from the message');
  }
  return pieces;
}

/** Step 4: encode the pieces, label tokens overlapping a span (code points), truncate. */
export function labelTokens(pieces: readonly Piece[], tokenizer: TextTokenizer, spans: Array<[number, number]>, maxSeqLen: number): Omit<Encoded, 'text' | 'trainedSpans'> {
  const enc = encodePieces(tokenizer, pieces);
  let { ids, tokens, offsets } = enc;
  const bos = tokenizer.bosId;
  if (bos !== undefined && ids.length >= 2 && ids[0] === bos && ids[1] === bos) {
    ids = ids.slice(1);
    tokens = tokens.slice(1);
    offsets = offsets.slice(1);
  }
  const labels = ids.map((id, k) => {
    const [a, b] = offsets[k]!;
    const trained = spans.some(([s, e]) => a < e && b > s);
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

/** A conversation rendered and spanned (Steps 1–3), before tokenization; spans in code points. */
export interface Spanned {
  text: string;
  pieces: Piece[];
  spans: Array<[number, number]>;
}

/** Steps 1–3 of the rule: the final text, its pieces and the trained spans per `trainOn`. */
export function conversationSpans(messages: readonly ChatMessage[], tokenizer: TextTokenizer, template: ChatTemplate, trainOn: TrainOn): Spanned {
  messages.forEach((m, i) => {
    if (RESERVED.test(m.content)) throw new RowError('template_error', `message ${i + 1} contains a reserved character (U+FDD0..U+FDEF, Unicode noncharacters); remove it`);
  });
  const tokens = tokenizer.special;
  // No content holds a reserved character (checked above): a skeleton layout is the render exactly,
  // with no generation marks to strip.
  const layout = template.layout(messages, false, tokens);
  const rendered = layout ? { text: layoutText(layout), generationSpans: [] } : template.renderSpans(messages, false, tokens);
  const c: Ctx = { full: rendered.text, template, messages, tokens, clean: true };
  const located = template.hasGenerationTags ? { spans: rendered.generationSpans, inserts: [] as number[], inserted: [] as boolean[] } : assistantSpans(c);
  let spans = located.spans;
  let pieces = textPieces(c, tokenizer);
  if (located.inserts.length) {
    pieces = insertText(pieces, located.inserts, tokens.eos_token);
    spans = applyInserts(spans, located.inserted, located.inserts, tokens.eos_token);
  }
  const text = pieces.length === 1 ? pieces[0]![0] : pieces.map(([t]) => t).join('');
  switch (trainOn) {
    case 'all': spans = [[0, text.length]]; break;
    case 'completion': spans = spans.slice(-1); break;
    case 'assistant': break;
    default: { const never: never = trainOn; throw new Error(`unknown train_on ${String(never)}`); }
  }
  // UTF-16 positions here; `spans` reads them as code points.
  return new LazySpanned(text, pieces, spans);
}

/**
 * True when the verdict of a spanned row is known without tokenizing it: every span is non-empty
 * (so some token overlaps it) and the text cannot reach `maxSeqLen` tokens (a token covers at least
 * one UTF-8 byte of its piece, plus at most one word-start token per piece).
 */
export function surelyTrainedUntruncated(s: Spanned, maxSeqLen: number): boolean {
  const empty = s instanceof LazySpanned ? s.count === 0 || s.hasEmptySpan() : s.spans.length === 0 || s.spans.some(([a, b]) => b <= a);
  if (empty) return false;
  return Buffer.byteLength(s.text, 'utf8') + s.pieces.length + 1 <= maxSeqLen;
}

/** Step 4 on a spanned row; throws `no_trained_tokens` when nothing is trained. */
export function encodeSpanned(s: Spanned, tokenizer: TextTokenizer, maxSeqLen: number): Encoded {
  const labelled = labelTokens(s.pieces, tokenizer, s.spans, maxSeqLen);
  if (labelled.labels.every((l) => l === IGNORE_INDEX)) {
    throw new RowError('no_trained_tokens', labelled.truncated
      ? `no trained token is left after truncation to max_seq_len=${maxSeqLen}; raise data.max_seq_len or shorten the conversation`
      : 'the conversation has no assistant message to train on');
  }
  return { text: s.text, trainedSpans: s.spans, ...labelled };
}

/** Renders `messages` and labels its tokens per `trainOn`; throws RowError for a bad row. */
export function encodeConversation(messages: readonly ChatMessage[], tokenizer: TextTokenizer, template: ChatTemplate, trainOn: TrainOn, maxSeqLen: number): Encoded {
  return encodeSpanned(conversationSpans(messages, tokenizer, template, trainOn), tokenizer, maxSeqLen);
}
