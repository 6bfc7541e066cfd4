/**
 * Render specialisation: a chat template that never looks inside a message's content renders
 * every conversation of one "shape" (roles, generation prompt, special tokens) to the same text
 * with the contents written in. We render each shape once with every content replaced by an opaque
 * traced value, and record whether the template did anything with a content other than output or
 * concatenate it. A content is only observable to the engine through its `value` (tests, filters,
 * methods, comparisons, truthiness, `in`, slicing, JSON, function arguments all read it) or through
 * `toString` (output); the traced value answers `toString` with a placeholder and marks the trace
 * tainted on any read of `value`. Concatenation and block output that carry a placeholder stay
 * traced, so a later inspection of the composite taints too. An untainted trace is a skeleton:
 * literal text and content slots. Anything else (a taint, a raise, a placeholder character in
 * the template's own text) leaves that shape on the full interpreter; a clock read is a guard.
 *
 * A few inspections of a content itself (not of a composite) are understood instead of tainting
 * (skeletonTrace.ts, skeletonGuards.ts): pure transforms whose result is written out (`trim`, `strip/lstrip/rstrip`,
 * a piece of `split(sep)`) become slots that carry the transform, and predicates (`in`, `==`,
 * `startswith/endswith`, tests, truthiness, `length`, the number of `split` pieces) answer from the
 * row's real content and are recorded as guards. A shape keeps a list of such traces; a row uses
 * the first whose guards all answer the same on it, and is traced anew when none does.
 */
import { PROBE } from './locate';
import { applyChain, guardsHold } from './skeletonGuards';
import { CLOSE, OPEN, traceRender, type Part, type Variant } from './skeletonTrace';
import type { ChatMessage, SpecialTokens } from './template';

/** Most shapes kept per template (a shape is a role sequence; prefixes and probes add a few per row). */
const MAX_SHAPES = 4096;
/** Most guarded traces kept per shape (a guard on a length can tell many rows apart). */
const MAX_VARIANTS = 16;

interface ShapeNode {
  next: Map<string, ShapeNode>;
  entries: Array<Variant[] | undefined>;
}

function newNode(): ShapeNode {
  return { next: new Map(), entries: [undefined, undefined] };
}

/** True when `m` is exactly `{ role, content }` with string values (the only messages a shape covers). */
function plainMessage(m: ChatMessage): boolean {
  let n = 0;
  for (const k in m) {
    if ((n === 0 && k !== 'role') || (n === 1 && k !== 'content') || n > 1) return false;
    n += 1;
  }
  return n === 2 && typeof m.role === 'string' && typeof m.content === 'string';
}

/** A render known by its skeleton: the parts and the messages whose contents fill its slots. */
export interface Layout {
  parts: readonly Part[];
  messages: readonly ChatMessage[];
}

/** Length (UTF-16) of a layout's text, without building it. */
export function layoutLength(l: Layout): number {
  let n = 0;
  for (const p of l.parts) n += partText(p, l.messages).length;
  return n;
}

/** A layout's text. */
export function layoutText(l: Layout): string {
  let out = '';
  for (const p of l.parts) out += partText(p, l.messages);
  return out;
}

/** The text a part writes for `messages`. */
function partText(p: Part, messages: readonly ChatMessage[]): string {
  if (typeof p === 'string') return p;
  if (typeof p === 'number') return messages[p]!.content;
  return applyChain(p.chain, messages[p.i]!.content);
}

function samePart(a: Part | undefined, b: Part | undefined): boolean {
  return a === b || (typeof a === 'object' && typeof b === 'object' && a.key === b.key);
}

/**
 * True when `a`'s text is a prefix of `b`'s whatever the contents are: `b`'s messages start with
 * `a`'s (the same objects), both skeletons agree part by part and `a`'s last literal begins `b`'s
 * literal at that place. False means only "not proven"; compare the texts then.
 */
export function surelyPrefix(a: Layout, b: Layout): boolean {
  const n = a.parts.length;
  if (a.messages.length > b.messages.length || n > b.parts.length) return false;
  for (let j = 0; j < a.messages.length; j += 1) if (a.messages[j] !== b.messages[j]) return false;
  for (let k = 0; k < n - 1; k += 1) if (!samePart(a.parts[k], b.parts[k])) return false;
  const last = a.parts[n - 1];
  const other = b.parts[n - 1];
  return typeof last === 'string' && typeof other === 'string' && other.startsWith(last);
}

/** Noncharacters: the masking rule's markers and probes; no content or literal of a located shape holds one. */
const RESERVED_ANY = /[\ufdd0-\ufdef]/;

/** Skeletons of one template, by shape; `render` answers undefined where the full interpreter must run. */
export class Skeletons {
  /** False when the template's source holds a placeholder character (its own text could then look like a slot). */
  static usable(source: string): boolean {
    return !source.includes(OPEN) && !source.includes(CLOSE);
  }

  private readonly clean = new WeakSet<readonly Part[]>();

  constructor(private readonly program: { body: unknown[] }) {}

  /** The raw render of `messages` from its shape's skeleton, or undefined (render it in full). */
  render(messages: readonly ChatMessage[], addGenerationPrompt: boolean, tokens: SpecialTokens, globals: () => Record<string, unknown>): string | undefined {
    const entry = this.entry(messages, addGenerationPrompt, tokens, globals);
    if (entry === undefined || typeof entry === 'string') return undefined;
    let out = '';
    for (const p of entry) out += partText(p, messages);
    return out;
  }

  private last = { bos: '', eos: '', pad: '', unk: '', key: '' };

  /** The special tokens' part of a shape key (rebuilt only when a token differs from the last call's). */
  private tokensKey(t: SpecialTokens): string {
    const l = this.last;
    if (l.key === '' || l.bos !== t.bos_token || l.eos !== t.eos_token || l.pad !== t.pad_token || l.unk !== t.unk_token) {
      this.last = { bos: t.bos_token, eos: t.eos_token, pad: t.pad_token, unk: t.unk_token, key: `\u0000${t.bos_token}\u0000${t.eos_token}\u0000${t.pad_token}\u0000${t.unk_token}` };
    }
    return this.last.key;
  }

  /** Shapes as a trie over roles, one per special-token set; a node holds the entries without and with the generation prompt. */
  private roots = new Map<string, ShapeNode>();
  private count = 0;

  /** The variants of `messages`' shape (undefined for a message a shape does not cover). */
  private variants(messages: readonly ChatMessage[], addGenerationPrompt: boolean, tokens: SpecialTokens): Variant[] | undefined {
    const tk = this.tokensKey(tokens);
    let node: ShapeNode | undefined = this.roots.get(tk);
    if (!node) {
      node = newNode();
      this.roots.set(tk, node);
    }
    for (const m of messages) {
      if (!plainMessage(m)) return undefined;
      let next: ShapeNode | undefined = node.next.get(m.role);
      if (!next) {
        next = newNode();
        node.next.set(m.role, next);
      }
      node = next;
    }
    const slot = addGenerationPrompt ? 1 : 0;
    return (node.entries[slot] ??= []);
  }

  /** The trace whose guards hold on `messages` (traced now when none does and the shape has room). */
  private variant(messages: readonly ChatMessage[], addGenerationPrompt: boolean, tokens: SpecialTokens, globals: () => Record<string, unknown>): Variant | undefined {
    const list = this.variants(messages, addGenerationPrompt, tokens);
    if (!list) return undefined;
    for (const v of list) if (guardsHold(v.guards, messages)) return v;
    if (list.length >= MAX_VARIANTS) return undefined;
    const v = traceRender(this.program, globals(), messages, tokens);
    if (this.count >= MAX_SHAPES) {
      this.roots = new Map();
      this.count = 0;
    }
    this.count += 1;
    list.push(v);
    return v;
  }

  private entry(messages: readonly ChatMessage[], addGenerationPrompt: boolean, tokens: SpecialTokens, globals: () => Record<string, unknown>): Part[] | string | undefined {
    return this.variant(messages, addGenerationPrompt, tokens, globals)?.result;
  }

  /**
   * Where each message's content lands in the render of `messages` (`{start, end}` in UTF-16), or
   * locate.ts's sentence for a content the skeleton writes other than exactly once. This is what
   * differential rendering finds, without the probe renders: the probe render has the same shape,
   * so it is the same skeleton with the probe written in; when no literal and no content holds a
   * probe character, the texts agree exactly up to the slot and after it. Undefined (locate by
   * rendering) when the shape has no skeleton or a literal holds a reserved character; an entry is
   * undefined for a message whose probe render would take another path. Callers
   * ensure no content holds one (masking checks every content first).
   */
  regions(messages: readonly ChatMessage[], tokens: SpecialTokens, globals: () => Record<string, unknown>): Array<{ start: number; end: number } | string | undefined> | undefined {
    const v = this.variant(messages, false, tokens, globals);
    const entry = v && this.layout(messages, false, tokens, globals)?.parts;
    if (!v || !entry) return undefined;
    const starts: number[] = messages.map(() => -1);
    const ends: number[] = messages.map(() => -1);
    const counts: number[] = messages.map(() => 0);
    // The probe render of message i takes this trace's path only when every guard answers the
    // same with the probe in place; else that message is located by rendering (undefined). A
    // transformed slot writes the probe as is only when its transforms leave it whole.
    const whole: boolean[] = messages.map((_, i) => guardsHold(v.guards, messages, i, PROBE));
    let pos = 0;
    for (const p of entry) {
      const text = partText(p, messages);
      if (typeof p !== 'string') {
        const i = typeof p === 'number' ? p : p.i;
        if (typeof p === 'object' && whole[i] && applyChain(p.chain, PROBE) !== PROBE) whole[i] = false;
        starts[i] = pos;
        ends[i] = pos + text.length;
        counts[i] = (counts[i] ?? 0) + 1;
      }
      pos += text.length;
    }
    return messages.map((_, i) => {
      if (!whole[i]) return undefined;
      return counts[i] === 1 ? { start: starts[i]!, end: ends[i]! } : "the template does not render this message's content exactly once, as written";
    });
  }

  /**
   * The layout of `messages`' render, when its shape has a skeleton whose literals hold no reserved
   * character (so, with contents free of them too, the text is the render exactly, with nothing
   * for the generation-mark stripping to remove); else undefined.
   */
  layout(messages: readonly ChatMessage[], addGenerationPrompt: boolean, tokens: SpecialTokens, globals: () => Record<string, unknown>): Layout | undefined {
    const entry = this.entry(messages, addGenerationPrompt, tokens, globals);
    if (entry === undefined || typeof entry === 'string') return undefined;
    if (!this.clean.has(entry)) {
      if (entry.some((p) => typeof p === 'string' && RESERVED_ANY.test(p))) return undefined;
      this.clean.add(entry);
    }
    return { parts: entry, messages };
  }

  /** Why the shape of `messages` renders in full ('' when it has a skeleton; undefined when not traced yet). */
  explain(messages: readonly ChatMessage[], addGenerationPrompt: boolean, tokens: SpecialTokens): string | undefined {
    let node = this.roots.get(this.tokensKey(tokens));
    for (const m of messages) node = node?.next.get(m.role);
    const e = node?.entries[addGenerationPrompt ? 1 : 0]?.find((v) => guardsHold(v.guards, messages))?.result;
    return e === undefined ? undefined : typeof e === 'string' ? e : '';
  }

}
