/**
 * The text steps before the BPE model, as read from `tokenizer.json`: the normalizers and
 * pre-tokenizers this encoder implements, with the Rust `tokenizers` semantics (each normalized
 * character keeps the original range it came from). Anything else is reported as unsupported so
 * the caller keeps the library tokenizer.
 */

/** One normalizer step. */
export type NormStep = { kind: 'prepend'; text: number[] } | { kind: 'replace'; from: number; to: number } | { kind: 'nfc' };

/** The pre-tokenizer. */
export type PreTok =
  | { kind: 'none' }
  | { kind: 'metaspace'; rep: number; prepend: 'always' | 'first' | 'never'; split: boolean }
  | { kind: 'byteLevel'; regexes: RegExp[] };

type Json = Record<string, unknown>;

const cps = (s: string): number[] => Array.from(s, (c) => c.codePointAt(0)!);

function oneCp(s: unknown): number | undefined {
  if (typeof s !== 'string') return undefined;
  const c = cps(s);
  return c.length === 1 ? c[0] : undefined;
}

/** The normalizer's steps, or a reason it is not supported. */
export function readNormalizer(n: unknown): NormStep[] | string {
  if (n === null || n === undefined) return [];
  const j = n as Json;
  switch (j['type']) {
    case 'Sequence': {
      const out: NormStep[] = [];
      for (const inner of (j['normalizers'] ?? []) as unknown[]) {
        const r = readNormalizer(inner);
        if (typeof r === 'string') return r;
        out.push(...r);
      }
      return out;
    }
    case 'Prepend':
      return typeof j['prepend'] === 'string' ? [{ kind: 'prepend', text: cps(j['prepend']) }] : 'Prepend without text';
    case 'Replace': {
      const from = oneCp((j['pattern'] as Json | undefined)?.['String']);
      const to = oneCp(j['content']);
      return from !== undefined && to !== undefined ? [{ kind: 'replace', from, to }] : 'Replace other than one character by one character';
    }
    case 'NFC':
      return [{ kind: 'nfc' }];
    default:
      return `normalizer ${String(j['type'])}`;
  }
}

/** Oniguruma's (and Rust's) white space, which JavaScript's `\s` is not (it lacks U+0085, adds U+FEFF). */
export const WS_CLASS = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
/** GPT-2's pre-tokenizer pattern (ByteLevel with `use_regex`), in JavaScript syntax. */
const GPT2_SPLIT = new RegExp(`'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS_CLASS}\\p{L}\\p{N}]+|[${WS_CLASS}]+(?![^${WS_CLASS}])|[${WS_CLASS}]+`, 'gu');

/** The pre-tokenizer, or a reason it is not supported. */
export function readPreTokenizer(p: unknown): PreTok | string {
  if (p === null || p === undefined) return { kind: 'none' };
  const j = p as Json;
  switch (j['type']) {
    case 'ByteLevel':
      if (j['add_prefix_space'] === true) return 'ByteLevel with add_prefix_space';
      return { kind: 'byteLevel', regexes: j['use_regex'] === false ? [] : [GPT2_SPLIT] };
    case 'Metaspace': {
      const rep = oneCp(j['replacement']);
      if (rep === undefined) return 'Metaspace replacement is not one character';
      const scheme = j['prepend_scheme'] ?? (j['add_prefix_space'] === false ? 'never' : 'always');
      if (scheme !== 'always' && scheme !== 'first' && scheme !== 'never') return `Metaspace prepend_scheme ${String(scheme)}`;
      return { kind: 'metaspace', rep, prepend: scheme, split: j['split'] !== false };
    }
    case 'Sequence': {
      // Llama-3 / Qwen2 / StarCoder / DeepSeek style: Split (Isolated) or Digits steps, each
      // cutting the pieces of the one before, then ByteLevel (with or without its own pattern).
      const steps = (j['pretokenizers'] ?? []) as Json[];
      const last = steps[steps.length - 1];
      if (last?.['type'] !== 'ByteLevel' || last['add_prefix_space'] === true) return 'pre-tokenizer Sequence not ending in ByteLevel';
      const regexes: RegExp[] = [];
      for (const step of steps.slice(0, -1)) {
        const re = step['type'] === 'Split' ? splitRegex(step) : step['type'] === 'Digits' ? (step['individual_digits'] === true ? /\p{N}/gu : /\p{N}+/gu) : `pre-tokenizer ${String(step['type'])} in a Sequence`;
        if (typeof re === 'string') return re;
        regexes.push(re);
      }
      if (last['use_regex'] !== false) regexes.push(GPT2_SPLIT);
      return { kind: 'byteLevel', regexes };
    }
    default:
      return `pre-tokenizer ${String(j['type'])}`;
  }
}

/** A Split pre-tokenizer (behavior Isolated) as a global JavaScript regex, or why not. */
function splitRegex(split: Json): RegExp | string {
  if (split['behavior'] !== 'Isolated' || split['invert'] === true) return `Split behavior ${String(split['behavior'])}${split['invert'] ? ' inverted' : ''}`;
  const pattern = split['pattern'] as Json | undefined;
  const source = typeof pattern?.['String'] === 'string' ? pattern['String'].replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : typeof pattern?.['Regex'] === 'string' ? onigToJs(pattern['Regex']) : undefined;
  if (source === undefined) return `Split pattern ${JSON.stringify(pattern)} is not supported`;
  try {
    return new RegExp(source, 'gu');
  } catch {
    return `Split pattern ${JSON.stringify(pattern)} is not supported`;
  }
}

/**
 * An Oniguruma pattern (the Rust `tokenizers` regex engine) in JavaScript `u` syntax, for the
 * constructs whose meaning differs: `\s`/`\S`/`\d`/`\w` (Unicode there, ASCII or a different
 * set here), `.` (only `\n` excluded there), `(?i:...)` over letters. Undefined for what is not
 * translated (anchors, nested classes, other inline options).
 */
export function onigToJs(src: string): string | undefined {
  let out = '';
  let inClass = false;
  for (let i = 0; i < src.length; i += 1) {
    const c = src[i]!;
    if (c === '\\') {
      const e = src[i + 1];
      i += 1;
      if (e === undefined) return undefined;
      if (e === 's') out += inClass ? WS_CLASS : `[${WS_CLASS}]`;
      else if (e === 'S' && !inClass) out += `[^${WS_CLASS}]`;
      else if (e === 'd') out += '\\p{Nd}';
      else if (e === 'w') out += inClass ? '\\p{L}\\p{M}\\p{Nd}\\p{Pc}' : '[\\p{L}\\p{M}\\p{Nd}\\p{Pc}]';
      else if ('SDWhHAzZbBGRXKNO'.includes(e)) return undefined;
      else out += `\\${e}`;
    } else if (inClass) {
      if (c === '[') return undefined;
      if (c === ']') inClass = false;
      out += c;
    } else if (c === '[') {
      inClass = true;
      out += c;
      if (src[i + 1] === '^') {
        out += '^';
        i += 1;
      }
      if (src[i + 1] === ']') return undefined;
    } else if (c === '(' && src.startsWith('(?i:', i)) {
      const end = src.indexOf(')', i);
      const body = src.slice(i + 4, end);
      if (end < 0 || !/^[A-Za-z'|]*$/.test(body)) return undefined;
      out += `(?:${body.replace(/[A-Za-z]/g, (l) => `[${l.toLowerCase()}${l.toUpperCase()}]`)})`;
      i = end;
    } else if (c === '(' && src[i + 1] === '?' && !/^\(\?(?::|=|!|<=|<!)/.test(src.slice(i))) return undefined;
    else if (c === '^' || c === '$') return undefined;
    else if (c === '.') out += '[^\\n]';
    else out += c;
  }
  return inClass ? undefined : out;
}

/** A normalized segment: code points and, per code point, its original `[start, end)` (UTF-16). */
export interface Normalized {
  cps: number[];
  starts: number[];
  ends: number[];
}

/**
 * Normalizes `text.slice(from, to)`; undefined when an NFC step would change the text (this
 * encoder only follows NFC where it is the identity, otherwise the library tokenizer runs).
 */
export function normalize(text: string, from: number, to: number, steps: readonly NormStep[]): Normalized | undefined {
  const out: Normalized = { cps: [], starts: [], ends: [] };
  for (let i = from; i < to; ) {
    const cp = text.codePointAt(i)!;
    const w = cp > 0xffff ? 2 : 1;
    out.cps.push(cp);
    out.starts.push(i);
    out.ends.push(i + w);
    i += w;
  }
  for (const step of steps) {
    switch (step.kind) {
      case 'nfc': {
        const s = cpsToString(out.cps);
        if (s.normalize('NFC') !== s) return undefined;
        break;
      }
      case 'replace':
        for (let k = 0; k < out.cps.length; k += 1) if (out.cps[k] === step.from) out.cps[k] = step.to;
        break;
      case 'prepend':
        prepend(out, step.text);
        break;
      default: {
        const never: never = step;
        throw new Error(`unknown step ${String(never)}`);
      }
    }
  }
  return out;
}

function cpsToString(c: readonly number[]): string {
  let s = '';
  for (let k = 0; k < c.length; k += 4096) s += String.fromCodePoint(...c.slice(k, k + 4096));
  return s;
}

/** Puts `chars` in front of a non-empty segment, aligned with its first character (as Rust does). */
export function prepend(n: Normalized, chars: readonly number[]): void {
  if (n.cps.length === 0 || chars.length === 0) return;
  const s = n.starts[0]!;
  const e = n.ends[0]!;
  n.cps.unshift(...chars);
  n.starts.unshift(...chars.map(() => s));
  n.ends.unshift(...chars.map(() => e));
}
