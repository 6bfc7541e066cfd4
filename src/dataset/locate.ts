/**
 * Where each message's content lies in a rendered conversation, by differential rendering: render
 * again with the content replaced by a probe and take the region of the real text that changes. docs/masking.md ("Step 1") is normative; python data/locate.py is the reference.
 * Positions are UTF-16 indices (probes and markers are BMP characters).
 */
import type { ChatMessage, ChatTemplate, SpecialTokens } from './template';

/** The probe content: noncharacters around "aB"; no message content can hold U+FDD4/U+FDD5. */
export const PROBE = '\ufdd4aB\ufdd5';

/** `full.slice(start, end)` is what changes with the message's content. */
export interface Region {
  start: number;
  end: number;
}

function prefixLen(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i += 1;
  return i;
}

function suffixLen(a: string, b: string, limit: number): number {
  const n = Math.min(a.length, b.length, limit);
  let i = 0;
  while (i < n && a.charCodeAt(a.length - 1 - i) === b.charCodeAt(b.length - 1 - i)) i += 1;
  return i;
}

/** 'assistant turn K (message M)', both 1-based, as bad-row reasons name a turn. */
export function turnName(messages: readonly ChatMessage[], i: number): string {
  const k = messages.slice(0, i + 1).filter((m) => m.role === 'assistant').length;
  return `assistant turn ${k} (message ${i + 1})`;
}

/** The region of message `i` in `full`, or a sentence saying why it cannot be located. */
export function locate(full: string, template: ChatTemplate, messages: readonly ChatMessage[], i: number, tokens: SpecialTokens): Region | string {
  let r: string;
  try {
    r = template.render(messages.map((m, j) => (j === i ? { ...m, content: PROBE } : m)), false, tokens);
  } catch {
    return "the template raises when this message's content is replaced by another text";
  }
  const once = (ch: string) => r.indexOf(ch) >= 0 && r.indexOf(ch) === r.lastIndexOf(ch);
  const at = r.indexOf(PROBE);
  if (!once('\ufdd4') || !once('\ufdd5') || at < 0) {
    return "the template does not render this message's content exactly once, as written";
  }
  const tail = r.slice(at + PROBE.length);
  const start = prefixLen(full, r);
  const end = full.length - suffixLen(full, r, full.length - start);
  if (!full.endsWith(tail) || end !== full.length - tail.length) {
    return "the text the template writes after this message's content depends on the content";
  }
  return { start, end };
}

/** True when two regions overlap, or one is empty and lies strictly inside the other. */
export function overlaps(a: Region, b: Region): boolean {
  if (Math.max(a.start, b.start) < Math.min(a.end, b.end)) return true;
  if (b.start === b.end && a.start < b.start && b.start < a.end) return true;
  return a.start === a.end && b.start < a.start && a.start < b.end;
}
