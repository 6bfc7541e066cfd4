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
 * literal text and content slots. Anything else (a taint, a raise, a clock read, a placeholder
 * character in the template's own text) leaves that shape on the full interpreter.
 */
import { Environment, type Interpreter } from '@huggingface/jinja';
import { classes, PythonInterpreter, pyStr } from './jinjaPython';
import type { ChatMessage, SpecialTokens } from './template';

const OPEN = '\ufdee';
const CLOSE = '\ufdef';
const SLOT = /\ufdee(\d+)\ufdef/g;
/** Most shapes kept per template (a shape is a role sequence; prefixes and probes add a few per row). */
const MAX_SHAPES = 4096;

type Runtime = { type: string; value: unknown; toString(): string };
/** Literal text, or the index of the message whose content goes there. */
type Part = string | number;
/** Why a trace failed; reported by `Skeletons.explain` for tests and diagnostics. */
interface Trace { tainted: string | undefined }

const TEXT = Symbol('tracedText');
type Traced = Runtime & { [TEXT]: string };

function traced(text: string, trace: Trace, why: string): Traced {
  const v = new classes.str(text) as Traced;
  v[TEXT] = text;
  Object.defineProperty(v, 'value', {
    configurable: true,
    get() {
      trace.tainted ??= why;
      return text;
    },
  });
  v.toString = () => text;
  return v;
}

function tracedText(v: Runtime): string | undefined {
  return (v as Partial<Traced>)[TEXT];
}

type Node = { type: string; operator?: { value: string }; left?: unknown; right?: unknown; value?: unknown; body?: unknown[] };
type Method = (this: Interpreter, node: never, env: Environment) => Runtime;
const parent = PythonInterpreter.prototype as unknown as Record<'evaluate' | 'evaluateBinaryExpression' | 'evaluateFor' | 'evaluateBlock', Method>;

/** PythonInterpreter that propagates traced contents and records any inspection of one. */
class TracingInterpreter extends PythonInterpreter {
  readonly trace: Trace = { tainted: undefined };
  readonly forBodies = new WeakSet<object>();
  programBody: unknown[] | undefined;
}

const tracing = TracingInterpreter.prototype as unknown as Record<string, unknown>;
tracing['evaluate'] = function (this: TracingInterpreter, node: Node, env: Environment): Runtime {
  if (node?.type === '__Evaluated') return node.value as Runtime;
  return parent.evaluate.call(this, node as never, env);
};
tracing['evaluateBinaryExpression'] = function (this: TracingInterpreter, node: Node, env: Environment): Runtime {
  const op = node.operator?.value;
  if (op !== '+' && op !== '~') return parent.evaluateBinaryExpression.call(this, node as never, env);
  const left = (this as unknown as { evaluate: Method }).evaluate.call(this, node.left as never, env);
  const right = (this as unknown as { evaluate: Method }).evaluate.call(this, node.right as never, env);
  const lt = tracedText(left);
  const rt = tracedText(right);
  if (lt !== undefined || rt !== undefined) {
    if (op === '~') return traced((lt ?? pyStr(left)) + (rt ?? pyStr(right)), this.trace, 'a value built from a message content is inspected');
    if (left.type === 'StringValue' && right.type === 'StringValue') {
      return traced((lt ?? (left.value as string)) + (rt ?? (right.value as string)), this.trace, 'a value built from a message content is inspected');
    }
  }
  // Operands already evaluated: hand them over as they are (evaluating twice could repeat a macro's side effects).
  const pre = { ...node, left: { type: '__Evaluated', value: left }, right: { type: '__Evaluated', value: right } };
  return parent.evaluateBinaryExpression.call(this, pre as never, env);
};
tracing['evaluateFor'] = function (this: TracingInterpreter, node: Node, env: Environment): Runtime {
  if (node.body) this.forBodies.add(node.body);
  return parent.evaluateFor.call(this, node as never, env);
};
tracing['evaluateBlock'] = function (this: TracingInterpreter, statements: unknown[], env: Environment): Runtime {
  const out = parent.evaluateBlock.call(this, statements as never, env);
  // A loop body's text only joins the loop's output; any other block's text can become a value
  // (set block, macro, caller, filter block), so one that holds a content stays traced.
  if (statements === this.programBody || this.forBodies.has(statements)) return out;
  const text = out.value as string;
  return text.includes(OPEN) ? traced(text, this.trace, 'the text of a block holding a message content is inspected') : out;
};

/** Runs `program` with `globals` set, every message content traced; the skeleton, or why there is none. */
function traceRender(program: { body: unknown[] }, globals: Record<string, unknown>, messages: readonly ChatMessage[], tokens: SpecialTokens): Part[] | string {
  const own = [...messages.map((m) => m.role), tokens.bos_token, tokens.eos_token, tokens.pad_token, tokens.unk_token];
  if (own.some((t) => t.includes(OPEN) || t.includes(CLOSE))) return 'a role or special token holds a placeholder character';
  const env = new Environment();
  let clock = false;
  const time = globals['strftime_now'] as (format: string) => string;
  for (const [key, value] of Object.entries(globals)) env.set(key, value);
  // The clock's output changes between renders: a template that reads it keeps no skeleton.
  env.variables.set('strftime_now', new classes.fn(((args: Runtime[]) => {
    clock = true;
    return new classes.str(time(String(args[0]?.value)));
  }) as never) as never);
  const interp = new TracingInterpreter(env);
  const list = env.lookupVariable('messages').value as Array<{ value: Map<string, Runtime> }>;
  messages.forEach((_, i) => list[i]!.value.set('content', traced(`${OPEN}${i}${CLOSE}`, interp.trace, `the template inspects message ${i + 1}'s content`)));
  interp.programBody = program.body;
  let result: Runtime;
  try {
    result = interp.run(program as never) as Runtime;
  } catch (err) {
    return `the template raises for this shape: ${(err as Error).message}`;
  }
  if (interp.trace.tainted) return interp.trace.tainted;
  if (clock) return 'the template reads the clock (strftime_now)';
  const text = tracedText(result) ?? (result.value as string);
  const parts: Part[] = [];
  let last = 0;
  for (const m of text.matchAll(SLOT)) {
    const i = Number(m[1]);
    if (i >= messages.length) return 'a placeholder index is out of range';
    parts.push(text.slice(last, m.index), i);
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  if (parts.some((p) => typeof p === 'string' && (p.includes(OPEN) || p.includes(CLOSE)))) return "the template's own text holds a placeholder character";
  return parts;
}

interface ShapeNode {
  next: Map<string, ShapeNode>;
  entries: Array<Part[] | string | undefined>;
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
  for (const p of l.parts) n += typeof p === 'number' ? l.messages[p]!.content.length : p.length;
  return n;
}

/** A layout's text. */
export function layoutText(l: Layout): string {
  let out = '';
  for (const p of l.parts) out += typeof p === 'number' ? l.messages[p]!.content : p;
  return out;
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
  for (let k = 0; k < n - 1; k += 1) if (a.parts[k] !== b.parts[k]) return false;
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
    for (const p of entry) out += typeof p === 'number' ? messages[p]!.content : p;
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

  private entry(messages: readonly ChatMessage[], addGenerationPrompt: boolean, tokens: SpecialTokens, globals: () => Record<string, unknown>): Part[] | string | undefined {
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
    let entry = node.entries[slot];
    if (entry === undefined) {
      entry = traceRender(this.program, globals(), messages, tokens);
      if (this.count >= MAX_SHAPES) {
        this.roots = new Map();
        this.count = 0;
      }
      this.count += 1;
      node.entries[slot] = entry;
    }
    return entry;
  }


  /**
   * Where each message's content lands in the render of `messages` (`{start, end}` in UTF-16), or
   * locate.ts's sentence for a content the skeleton writes other than exactly once. This is what
   * differential rendering finds, without the probe renders: the probe render has the same shape,
   * so it is the same skeleton with the probe written in; when no literal and no content holds a
   * probe character, the texts agree exactly up to the slot and after it. Undefined (locate by
   * rendering) when the shape has no skeleton or a literal holds a reserved character. Callers
   * ensure no content holds one (masking checks every content first).
   */
  regions(messages: readonly ChatMessage[], tokens: SpecialTokens, globals: () => Record<string, unknown>): Array<{ start: number; end: number } | string> | undefined {
    const entry = this.layout(messages, false, tokens, globals)?.parts;
    if (!entry) return undefined;
    const starts: number[] = messages.map(() => -1);
    const counts: number[] = messages.map(() => 0);
    let pos = 0;
    for (const p of entry) {
      if (typeof p === 'string') pos += p.length;
      else {
        starts[p] = pos;
        counts[p] = (counts[p] ?? 0) + 1;
        pos += messages[p]!.content.length;
      }
    }
    return messages.map((m, i) => (counts[i] === 1 ? { start: starts[i]!, end: starts[i]! + m.content.length } : "the template does not render this message's content exactly once, as written"));
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
    const e = node?.entries[addGenerationPrompt ? 1 : 0];
    return e === undefined ? undefined : typeof e === 'string' ? e : '';
  }

}
