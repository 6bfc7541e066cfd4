/**
 * Offsets after encoding: UTF-16 positions to code points (Python `str` offsets), and the ByteLevel
 * post-processor's `trim_offsets`, which Rust applies even without added special tokens.
 */
import { BYTE_CHARS } from './bpeModel';
import { WS_CLASS } from './bpeText';

/** The ByteLevel post-processor's offset trimming, when it applies. */
export interface Trim {
  addPrefixSpace: boolean;
  lead: Uint8Array;
  trail: Uint8Array;
}

const TRIM_SPACE = new RegExp(`^[${BYTE_CHARS[32]!}${WS_CLASS}]$`, 'u');

/** Leading and trailing counts of characters the ByteLevel trimming treats as spaces. */
export function spaceRuns(tok: string): [number, number] {
  const chars = Array.from(tok);
  let l = 0;
  while (l < chars.length && TRIM_SPACE.test(chars[l]!)) l += 1;
  let r = 0;
  while (r < chars.length && TRIM_SPACE.test(chars[chars.length - 1 - r]!)) r += 1;
  return [l, r];
}

/** The trimming a tokenizer.json's post-processor asks for, or the reason it is not supported. */
export function readTrim(pp: unknown, vocab: Map<string, number>): Trim | undefined | string {
  const all = (pp as { type?: string } | null)?.type === 'Sequence' ? ((pp as { processors?: unknown[] }).processors ?? []) : pp ? [pp] : [];
  let trim: Trim | undefined;
  for (const p of all as Array<{ type?: string; trim_offsets?: boolean; add_prefix_space?: boolean }>) {
    if (p.type === 'TemplateProcessing') continue;
    if (p.type !== 'ByteLevel') return `post-processor ${String(p.type)}`;
    if (p.trim_offsets !== true) continue;
    const size = Math.max(0, ...vocab.values()) + 1;
    trim = { addPrefixSpace: p.add_prefix_space !== false, lead: new Uint8Array(size), trail: new Uint8Array(size) };
    for (const [tok, id] of vocab) {
      const [l, r] = spaceRuns(tok);
      trim.lead[id] = Math.min(l, 255);
      trim.trail[id] = Math.min(r, 255);
    }
  }
  return trim;
}

/** UTF-16 offsets -> code-point offsets, in place. */
export function toCodePoints(text: string, offsets: Array<[number, number]>): void {
  const cpAt = new Int32Array(text.length + 1);
  let cp = 0;
  for (let i = 0; i < text.length; i += 1) {
    cpAt[i] = cp;
    const c = text.charCodeAt(i);
    if (!(c >= 0xd800 && c < 0xdc00)) cp += 1;
  }
  cpAt[text.length] = cp;
  for (const o of offsets) {
    o[0] = cpAt[o[0]]!;
    o[1] = cpAt[o[1]]!;
  }
}

/** The ByteLevel post-processor's `trim_offsets` (Rust `process_offsets`). */
export function trimOffsets(ids: number[], offsets: Array<[number, number]>, t: Trim, addedRuns: Map<number, [number, number]>): void {
  for (let i = 0; i < ids.length; i += 1) {
    const o = offsets[i]!;
    const runs = addedRuns.get(i);
    let lead = runs ? runs[0] : t.lead[ids[i]!]!;
    const trail = runs ? runs[1] : t.trail[ids[i]!]!;
    if (lead > 0) {
      if ((i === 0 || o[0] === 0) && t.addPrefixSpace && lead === 1) lead = 0;
      o[0] = Math.min(o[0] + lead, o[1]);
    }
    if (trail > 0 && o[1] >= trail) o[1] = Math.max(o[1] - trail, o[0]);
  }
}
