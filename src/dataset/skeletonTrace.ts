/**
 * Tracing a chat template's render with every message content replaced by an opaque traced value
 * (see skeleton.ts for how skeletons are used): the engine's evaluation of filters, tests, method
 * calls and operators is followed so that writing a content out becomes a slot, a pure transform of
 * a content (`trim`, `strip/lstrip/rstrip`, a `split` piece) a transformed slot, a predicate on a
 * content (`in`, `==`, `startswith/endswith`, tests, truthiness, `length`, the number of `split`
 * pieces) or a clock read a guard answered from the row itself, and any other inspection a taint.
 */
import { Environment, type Interpreter } from '@huggingface/jinja';
import { charsArg, classes, PythonInterpreter, pyEquals, pyStr, stripChars } from './jinjaPython';
import { applyChain, slotOf, type Guard, type Slot, type Transform } from './skeletonGuards';
import type { ChatMessage, SpecialTokens } from './template';

/** Opens a content placeholder in traced text. */
export const OPEN = '\ufdee';
/** Closes a content placeholder in traced text. */
export const CLOSE = '\ufdef';
const SLOT = /\ufdee(\d+)\ufdef/g;

type Runtime = { type: string; value: unknown; toString(): string };
/** Literal text, the index of the message whose content goes there as is, or a transformed slot. */
export type Part = string | number | Slot;
/**
 * A trace in progress: why it failed (reported by `Skeletons.explain`), the slots its placeholders
 * name (placeholder k is `slots[k]`), the guards recorded, and the row's real contents.
 */
interface Trace { tainted: string | undefined; slots: Slot[]; guards: Guard[]; contents: readonly string[] }

const TEXT = Symbol('tracedText');
const SLOT_OF = Symbol('tracedSlot');
type Traced = Runtime & { [TEXT]: string; [SLOT_OF]?: Slot; __bool__?: () => Runtime };

function traced(text: string, trace: Trace, why: string, slot?: Slot): Traced {
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
  if (slot) {
    v[SLOT_OF] = slot;
    // Truthiness of a content: a guard (the engine's own rule for strings).
    v.__bool__ = () => new classes.bool(guard(trace, slot, (s) => s.length > 0) as boolean);
  }
  return v;
}

function tracedText(v: Runtime): string | undefined {
  return (v as Partial<Traced>)[TEXT];
}

function tracedSlot(v: Runtime | undefined): Slot | undefined {
  return v ? (v as Partial<Traced>)[SLOT_OF] : undefined;
}

const ONE_SLOT = /^\ufdee(\d+)\ufdef$/;

/**
 * A traced value for text built from contents (a concatenation, a block's output). Text that is
 * exactly one slot's placeholder is that slot (a macro that only writes a content out gives the
 * content), so it may be transformed and tested as the content itself.
 */
function composite(text: string, trace: Trace, why: string): Traced {
  const one = ONE_SLOT.exec(text);
  const slot = one ? trace.slots[Number(one[1])] : undefined;
  return traced(text, trace, why, slot);
}

/** A traced value for message `slot.i`'s content through `chain`, with its own placeholder. */
function slotValue(trace: Trace, i: number, chain: readonly Transform[]): Traced {
  const slot = slotOf(i, chain);
  const k = trace.slots.push(slot) - 1;
  return traced(`${OPEN}${k}${CLOSE}`, trace, `the template inspects a value made from message ${i + 1}'s content`, slot);
}

/** Answers `test` on the row's content behind `slot` and records the answer as a guard. */
function guard(trace: Trace, slot: Slot, test: (s: string) => unknown): unknown {
  const result = test(applyChain(slot.chain, trace.contents[slot.i]!));
  if (result !== null && typeof result === 'object') {
    trace.tainted ??= `the template inspects message ${slot.i + 1}'s content in a way a guard cannot record`;
  }
  trace.guards.push({ i: slot.i, chain: slot.chain, test, result });
  return result;
}

/** A runtime value holding `x` as the engine would (bool, int, None, string). */
function runtimeOf(x: unknown): Runtime {
  if (typeof x === 'boolean') return new classes.bool(x);
  if (typeof x === 'number') return new classes.int(x);
  if (typeof x === 'string') return new classes.str(x);
  return new classes.none(null);
}

const arrayClass = (() => {
  const env = new Environment();
  env.set('a', []);
  return (env.lookupVariable('a') as unknown as { constructor: new (v: unknown) => Runtime }).constructor;
})();

type Node = {
  type: string; operator?: { value: string }; left?: unknown; right?: unknown; value?: unknown; body?: unknown[];
  operand?: unknown; filter?: { type: string; value?: string }; test?: { value: string }; negate?: boolean;
  callee?: { type: string; object?: unknown; property?: { type: string; value?: string }; computed?: boolean }; args?: unknown[];
};
type Method = (this: Interpreter, node: never, env: Environment) => Runtime;
const parent = PythonInterpreter.prototype as unknown as Record<'evaluate' | 'evaluateBinaryExpression' | 'evaluateFor' | 'evaluateBlock' | 'evaluateFilterExpression' | 'evaluateTestExpression' | 'evaluateCallExpression', Method>;
type ApplyFilter = (this: Interpreter, operand: Runtime, filter: unknown, env: Environment) => Runtime;
const applyFilter = (PythonInterpreter.prototype as unknown as { applyFilter: ApplyFilter }).applyFilter;
const evaluated = (value: Runtime) => ({ type: '__Evaluated', value });

/** PythonInterpreter that propagates traced contents and records any inspection of one. */
class TracingInterpreter extends PythonInterpreter {
  readonly trace: Trace = { tainted: undefined, slots: [], guards: [], contents: [] };
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
  if (op !== '+' && op !== '~' && op !== 'in' && op !== 'not in' && op !== '==' && op !== '!=') return parent.evaluateBinaryExpression.call(this, node as never, env);
  const left = (this as unknown as { evaluate: Method }).evaluate.call(this, node.left as never, env);
  const right = (this as unknown as { evaluate: Method }).evaluate.call(this, node.right as never, env);
  const lt = tracedText(left);
  const rt = tracedText(right);
  const answer = predicate(this.trace, op, left, right);
  if (answer !== undefined) return answer;
  if ((lt !== undefined || rt !== undefined) && (op === '+' || op === '~')) {
    if (op === '~') return composite((lt ?? pyStr(left)) + (rt ?? pyStr(right)), this.trace, 'a value built from a message content is inspected');
    if (left.type === 'StringValue' && right.type === 'StringValue') {
      return composite((lt ?? (left.value as string)) + (rt ?? (right.value as string)), this.trace, 'a value built from a message content is inspected');
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
  return text.includes(OPEN) ? composite(text, this.trace, 'the text of a block holding a message content is inspected') : out;
};

/** `in`/`not in`/`==`/`!=` between a content and a plain value, as a guard; undefined for any other case. */
function predicate(trace: Trace, op: string, left: Runtime, right: Runtime): Runtime | undefined {
  if ((op === 'in' || op === 'not in') && tracedText(left) === undefined && left.type === 'StringValue') {
    const slot = tracedSlot(right);
    if (!slot) return undefined;
    const needle = left.value as string;
    const has = guard(trace, slot, (s) => s.includes(needle)) as boolean;
    return new classes.bool(op === 'in' ? has : !has);
  }
  if (op === '==' || op === '!=') {
    const [slot, other] = tracedSlot(left) ? [tracedSlot(left), right] : [tracedSlot(right), left];
    if (!slot || tracedText(other) !== undefined) return undefined;
    const eq = guard(trace, slot, (s) => pyEquals(new classes.str(s), other)) as boolean;
    return new classes.bool(op === '==' ? eq : !eq);
  }
  return undefined;
}

tracing['evaluateFilterExpression'] = function (this: TracingInterpreter, node: Node, env: Environment): Runtime {
  const operand = (this as unknown as { evaluate: Method }).evaluate.call(this, node.operand as never, env);
  const slot = tracedSlot(operand);
  if (slot && node.filter?.type === 'Identifier') {
    if (node.filter.value === 'trim') return slotValue(this.trace, slot.i, [...slot.chain, TRIM]);
    if (node.filter.value === 'length') {
      const filter = node.filter;
      return runtimeOf(guard(this.trace, slot, (s) => applyFilter.call(this, new classes.str(s), filter, env).value));
    }
  }
  return applyFilter.call(this, operand, node.filter, env);
};

tracing['evaluateTestExpression'] = function (this: TracingInterpreter, node: Node, env: Environment): Runtime {
  const operand = (this as unknown as { evaluate: Method }).evaluate.call(this, node.operand as never, env);
  const slot = tracedSlot(operand);
  const test = env.tests.get(node.test!.value) as ((v: Runtime) => boolean) | undefined;
  if (!slot || !test) return parent.evaluateTestExpression.call(this, { ...node, operand: evaluated(operand) } as never, env);
  const result = guard(this.trace, slot, (s) => test(new classes.str(s))) as boolean;
  return new classes.bool(node.negate ? !result : result);
};

const TRIM: Transform = { key: 'trim', f: (s) => stripChars(s, undefined, true, true) };
const STRIPS: Record<string, [boolean, boolean]> = { strip: [true, true], lstrip: [true, false], rstrip: [false, true] };
const METHODS = new Set(['strip', 'lstrip', 'rstrip', 'startswith', 'endswith', 'split']);

tracing['evaluateCallExpression'] = function (this: TracingInterpreter, expr: Node, env: Environment): Runtime {
  const callee = expr.callee;
  const name = callee?.type === 'MemberExpression' && !callee.computed && callee.property?.type === 'Identifier' ? callee.property.value ?? '' : '';
  if (!METHODS.has(name)) return parent.evaluateCallExpression.call(this, expr as never, env);
  const self = this as unknown as { evaluate: Method; evaluateArguments(args: unknown[], env: Environment): [Runtime[], Map<string, Runtime>] };
  const object = self.evaluate.call(this, callee!.object as never, env);
  const slot = tracedSlot(object);
  const pre = { ...expr, callee: { ...callee, object: evaluated(object) } };
  if (!slot) return parent.evaluateCallExpression.call(this, pre as never, env);
  const [args, kwargs] = self.evaluateArguments(expr.args ?? [], env);
  if (kwargs.size > 0 || args.some((a) => tracedText(a) !== undefined)) {
    this.trace.tainted ??= `the template calls ${name} on message ${slot.i + 1}'s content with arguments a skeleton cannot follow`;
    return new classes.none(null);
  }
  const strip = STRIPS[name];
  if (strip) {
    const chars = charsArg(args);
    const [l, r] = strip;
    return slotValue(this.trace, slot.i, [...slot.chain, { key: `${name}(${JSON.stringify(chars ?? null)})`, f: (s) => stripChars(s, chars, l, r) }]);
  }
  if (name === 'split') {
    const sep = args[0];
    if (args.length !== 1 || sep?.type !== 'StringValue' || sep.value === '') {
      this.trace.tainted ??= `the template splits message ${slot.i + 1}'s content other than by one non-empty separator`;
      return new classes.none(null);
    }
    const by = sep.value as string;
    const n = guard(this.trace, slot, (s) => s.split(by).length) as number;
    const pieces = Array.from({ length: n }, (_, k) => slotValue(this.trace, slot.i, [...slot.chain, { key: `split(${JSON.stringify(by)})[${k}]`, f: (s) => s.split(by)[k] ?? '' }]));
    return new arrayClass(pieces);
  }
  // startswith / endswith: the engine's own builtin on the real content.
  return runtimeOf(guard(this.trace, slot, (s) => {
    const fn = (new classes.str(s) as unknown as { builtins: Map<string, { value: (a: Runtime[]) => Runtime }> }).builtins.get(name)!;
    return fn.value(args).value;
  }));
};

/** Runs `program` with `globals` set, every message content traced; the skeleton, or why there is none. */
export function traceRender(program: { body: unknown[] }, globals: Record<string, unknown>, messages: readonly ChatMessage[], tokens: SpecialTokens): Variant {
  const guards: Guard[] = [];
  const result = traceParts(program, globals, messages, tokens, guards);
  return { guards, result };
}

function traceParts(program: { body: unknown[] }, globals: Record<string, unknown>, messages: readonly ChatMessage[], tokens: SpecialTokens, guards: Guard[]): Part[] | string {
  const own = [...messages.map((m) => m.role), tokens.bos_token, tokens.eos_token, tokens.pad_token, tokens.unk_token];
  if (own.some((t) => t.includes(OPEN) || t.includes(CLOSE))) return 'a role or special token holds a placeholder character';
  const env = new Environment();
  const time = globals['strftime_now'] as (format: string) => string;
  for (const [key, value] of Object.entries(globals)) env.set(key, value);
  // The clock's output changes between renders: what the template read becomes a guard, so a row
  // reuses this trace only while the clock still reads the same.
  env.variables.set('strftime_now', new classes.fn(((args: Runtime[]) => {
    const format = String(args[0]?.value);
    const now = time(format);
    guards.push({ i: -1, chain: [], test: () => time(format), result: now });
    return new classes.str(now);
  }) as never) as never);
  const interp = new TracingInterpreter(env);
  interp.trace.guards = guards;
  interp.trace.contents = messages.map((m) => m.content);
  const list = env.lookupVariable('messages').value as Array<{ value: Map<string, Runtime> }>;
  messages.forEach((_, i) => {
    const slot = slotOf(i, []);
    interp.trace.slots.push(slot);
    list[i]!.value.set('content', traced(`${OPEN}${i}${CLOSE}`, interp.trace, `the template inspects message ${i + 1}'s content`, slot));
  });
  interp.programBody = program.body;
  let result: Runtime;
  try {
    result = interp.run(program as never) as Runtime;
  } catch (err) {
    return `the template raises for this shape: ${(err as Error).message}`;
  }
  if (interp.trace.tainted) return interp.trace.tainted;
  const text = tracedText(result) ?? (result.value as string);
  const parts: Part[] = [];
  let last = 0;
  const slots = interp.trace.slots;
  for (const m of text.matchAll(SLOT)) {
    const slot = slots[Number(m[1])];
    if (slot === undefined) return 'a placeholder index is out of range';
    parts.push(text.slice(last, m.index), slot.chain.length === 0 ? slot.i : slot);
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  if (parts.some((p) => typeof p === 'string' && (p.includes(OPEN) || p.includes(CLOSE)))) return "the template's own text holds a placeholder character";
  return parts;
}

/** One trace of a shape: the guards it recorded, and its skeleton or why it has none. */
export interface Variant {
  guards: Guard[];
  result: Part[] | string;
}
