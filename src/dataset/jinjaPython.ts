/**
 * Python-jinja2 semantics for `@huggingface/jinja`, so a chat template renders here exactly as
 * transformers renders it. The engine differs from jinja2 in a few places that real templates hit:
 * `==` uses JavaScript loose equality (`'' == false` is true), `str.strip/lstrip/rstrip` ignore
 * their `chars` argument, booleans and None print as `true`/`null`, and `|length` counts UTF-16
 * units, `|trim` strips JavaScript's white space rather than Python's. We close each difference here: a subclassed interpreter for the operators, and the string
 * builtins re-registered on the engine's string value class.
 */
import { Environment, Interpreter } from '@huggingface/jinja';
import { pyLstrip, pyRstrip } from './pyString';

type Runtime = { type: string; value: unknown; toString(): string };
type Ctor = new (value: unknown) => Runtime;
type Fn = (args: Runtime[]) => Runtime;

/** The engine keeps its runtime value classes private; reach them through values it creates. */
function runtimeClasses(): Record<'str' | 'bool' | 'int' | 'fn' | 'none', Ctor> {
  const env = new Environment();
  env.set('s', '');
  env.set('b', true);
  env.set('i', 1);
  env.set('f', () => undefined);
  env.set('n', null);
  const ctor = (name: string): Ctor => (env.lookupVariable(name) as unknown as { constructor: Ctor }).constructor;
  return { str: ctor('s'), bool: ctor('b'), int: ctor('i'), fn: ctor('f'), none: ctor('n') };
}

/** The runtime value classes, for code that builds values (globals, tests). */
export const classes = runtimeClasses();

/** Python `str.strip(chars)` family: whitespace when `chars` is absent or None. */
export function stripChars(s: string, chars: string | undefined, left: boolean, right: boolean): string {
  if (chars === undefined) {
    // Python's white space is all in the BMP: strip by UTF-16 unit, without splitting the string.
    const r = right ? pyRstrip(s) : s;
    return left ? pyLstrip(r) : r;
  }
  const cps = Array.from(s);
  const drop = (c: string) => chars.includes(c);
  let a = 0;
  let b = cps.length;
  while (left && a < b && drop(cps[a]!)) a += 1;
  while (right && b > a && drop(cps[b - 1]!)) b -= 1;
  return cps.slice(a, b).join('');
}

/** The `chars` argument of a strip method: undefined for none/None; raises for a non-string. */
export function charsArg(args: Runtime[]): string | undefined {
  const first = args[0];
  if (!first || first.type === 'NullValue' || first.type === 'UndefinedValue') return undefined;
  if (first.type !== 'StringValue') throw new Error(`strip arg must be None or str, not ${first.type}`);
  return first.value as string;
}

let patched = false;

/** Re-register the string builtins whose behaviour differs from Python (idempotent). */
export function patchStringBuiltins(): void {
  if (patched) return;
  patched = true;
  const proto = classes.str.prototype as object;
  const original = Object.getOwnPropertyDescriptor(proto, 'builtins');
  if (!original?.get) throw new Error('@huggingface/jinja changed its string builtins; update jinjaPython.ts');
  const getter = original.get;
  Object.defineProperty(proto, 'builtins', {
    configurable: true,
    get(this: Runtime & { _pyBuiltins?: Map<string, Runtime> }) {
      if (this._pyBuiltins) return this._pyBuiltins;
      // The engine caches its map per value; overriding entries in place avoids a copy per string.
      const map = getter.call(this) as Map<string, Runtime>;
      const s = this.value as string;
      const strip = (left: boolean, right: boolean): Runtime =>
        new classes.fn(((args: Runtime[]) => new classes.str(stripChars(s, charsArg(args), left, right))) as Fn);
      map.set('strip', strip(true, true));
      map.set('lstrip', strip(true, false));
      map.set('rstrip', strip(false, true));
      map.set('length', new classes.int(Array.from(s).length));
      this._pyBuiltins = map;
      return map;
    },
  });
  // Python prints True/False/None; the engine prints true/false/null.
  classes.bool.prototype.toString = function (this: Runtime) {
    return this.value ? 'True' : 'False';
  };
}

/** Python `==` between two runtime values: no coercion except among int, float and bool. */
export function pyEquals(a: Runtime, b: Runtime): boolean {
  const numeric = (v: Runtime) => v.type === 'IntegerValue' || v.type === 'FloatValue' || v.type === 'BooleanValue';
  if (numeric(a) && numeric(b)) return Number(a.value) === Number(b.value);
  if (a.type === 'UndefinedValue' || b.type === 'UndefinedValue') return a.type === b.type;
  if (a.type === 'NullValue' || b.type === 'NullValue') return a.type === b.type;
  if (a.type !== b.type) {
    const seq = (t: string) => t === 'ArrayValue' || t === 'TupleValue';
    if (!(seq(a.type) && seq(b.type))) return false;
  }
  if (Array.isArray(a.value) && Array.isArray(b.value)) {
    const x = a.value as Runtime[];
    const y = b.value as Runtime[];
    return x.length === y.length && x.every((v, i) => pyEquals(v, y[i]!));
  }
  if (a.value instanceof Map && b.value instanceof Map) {
    const x = a.value as Map<string, Runtime>;
    const y = b.value as Map<string, Runtime>;
    if (x.size !== y.size) return false;
    for (const [k, v] of x) {
      const w = y.get(k);
      if (w === undefined || !pyEquals(v, w)) return false;
    }
    return true;
  }
  return a.value === b.value;
}

/** Python's `str()` of a runtime value, for `~` concatenation. */
export function pyStr(v: Runtime): string {
  switch (v.type) {
    case 'BooleanValue':
      return v.value ? 'True' : 'False';
    case 'NullValue':
      return 'None';
    default:
      return v.toString();
  }
}

type Node = { operator: { value: string }; left: unknown; right: unknown };
type Binary = (this: Interpreter, node: Node, env: Environment) => Runtime;
type Evaluate = (this: Interpreter, node: unknown, env: Environment) => Runtime;

/** An interpreter whose comparison and concatenation operators follow Python. */
export class PythonInterpreter extends Interpreter {}

const base = Interpreter.prototype as unknown as { evaluateBinaryExpression: Binary; evaluate: Evaluate };
const originalBinary = base.evaluateBinaryExpression;
(PythonInterpreter.prototype as unknown as { evaluateBinaryExpression: Binary }).evaluateBinaryExpression =
  function (this: Interpreter, node: Node, env: Environment): Runtime {
    const op = node.operator.value;
    if (op !== '==' && op !== '!=' && op !== '~') return originalBinary.call(this, node, env);
    // Through `this`, so a subclass sees every evaluation.
    const left = (this as unknown as { evaluate: Evaluate }).evaluate.call(this, node.left, env);
    const right = (this as unknown as { evaluate: Evaluate }).evaluate.call(this, node.right, env);
    if (op === '~') return new classes.str(pyStr(left) + pyStr(right));
    const eq = pyEquals(left, right);
    return new classes.bool(op === '==' ? eq : !eq);
  };

type FilterNode = { type: string; value?: string };
type ApplyFilter = (this: Interpreter, operand: Runtime, filter: FilterNode, env: Environment) => Runtime;
const filters = Interpreter.prototype as unknown as { applyFilter: ApplyFilter };
const originalFilter = filters.applyFilter;
// jinja2's `trim` is Python's `str.strip()`: its white space differs from JavaScript's `trim`
// (U+001C..U+001F and U+0085 are white space there; U+FEFF is not).
(PythonInterpreter.prototype as unknown as { applyFilter: ApplyFilter }).applyFilter = function (this: Interpreter, operand: Runtime, filter: FilterNode, env: Environment): Runtime {
  if (filter.type === 'Identifier' && filter.value === 'trim' && operand.type === 'StringValue') return new classes.str(stripChars(operand.value as string, undefined, true, true));
  return originalFilter.call(this, operand, filter, env);
};

type ForNode = { iterable: { type: string; lhs?: unknown }; defaultBlock?: unknown[] };
type ForEval = (this: Interpreter, node: ForNode, env: Environment) => Runtime;
type BlockEval = (this: Interpreter, body: unknown[], env: Environment) => Runtime;
const loops = Interpreter.prototype as unknown as { evaluateFor: ForEval; evaluateBlock: BlockEval };
const originalFor = loops.evaluateFor;
// jinja2 iterates an undefined variable as an empty sequence (`{% for t in tools %}` without tools).
(PythonInterpreter.prototype as unknown as { evaluateFor: ForEval }).evaluateFor = function (this: Interpreter, node: ForNode, env: Environment): Runtime {
  const source = node.iterable.type === 'SelectExpression' ? node.iterable.lhs : node.iterable;
  const value = (this as unknown as { evaluate: Evaluate }).evaluate.call(this, source, env);
  if (value.type === 'UndefinedValue') return loops.evaluateBlock.call(this, node.defaultBlock ?? [], env);
  return originalFor.call(this, node, env);
};
