/**
 * Parse recipe YAML into plain values while remembering where every key and value was written.
 *
 * Mirror: python-backend/src/qlora_studio/recipe/yaml_source.py (same YAML 1.2 core scalars, same
 * positions, same duplicate-key rule). No `vscode` import.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { RecipeIssue } from './issues';

/** One step of a path into the recipe: a key, or a list index. */
export type PathKey = string | number;

/** A 1-based line and column. */
export interface Pos {
  line: number;
  column: number;
}

/** The parsed value plus where each path's key and value start in the text. */
export interface Located {
  value: unknown;
  /** Key positions, by `pathId(path)`. */
  keys: Map<string, Pos>;
  /** Value positions, by `pathId(path)` (absent for an empty value such as `data:`). */
  values: Map<string, Pos>;
  /** YAML problems: syntax errors and duplicate keys. */
  issues: RecipeIssue[];
}

/** A map key for a path. */
export function pathId(path: readonly PathKey[]): string {
  return JSON.stringify(path);
}

/** ["lora", "target_modules", 0] -> "lora.target_modules[0]". */
export function formatPath(path: readonly PathKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${part}` : part;
  }
  return out;
}

/** Where an error about the value at `path` should point (the key when the value is empty). */
export function valuePos(doc: Located, path: readonly PathKey[]): Pos {
  return doc.values.get(pathId(path)) ?? keyPos(doc, path);
}

/** The key's own line, falling back to the nearest written ancestor. */
export function keyPos(doc: Located, path: readonly PathKey[]): Pos {
  for (let n = path.length; n > 0; n--) {
    const pos = doc.keys.get(pathId(path.slice(0, n)));
    if (pos) return pos;
  }
  return doc.values.get(pathId([])) ?? { line: 1, column: 1 };
}

/** For a missing key: the line of the mapping that should hold it. */
export function parentPos(doc: Located, path: readonly PathKey[]): Pos {
  const parent = path.slice(0, -1);
  return parent.length ? keyPos(doc, parent) : (doc.values.get(pathId([])) ?? { line: 1, column: 1 });
}

/** What to do about the yaml package's error codes whose own wording does not say it. */
const HINTS: Record<string, string> = {
  MULTIPLE_DOCS: 'a recipe is one YAML document: remove the extra `---`',
  BAD_INDENT: 'check the indentation: keys of one mapping start in the same column',
  TAB_AS_INDENT: 'indent with spaces, not tabs',
  MISSING_CHAR: 'a quote or bracket opened above is never closed',
  BLOCK_AS_IMPLICIT_KEY: 'quote a value that contains \': \', or put the nested mapping on its own lines',
};

/** Strip the "at line N, column M:" excerpt the yaml package appends (we report the position) and add a hint. */
function plainMessage(code: string, message: string): string {
  if (code === 'MULTIPLE_DOCS') return `${HINTS[code]}`;
  const cut = message.search(/ at line \d+, column \d+/);
  const text = (cut >= 0 ? message.slice(0, cut) : message).trim();
  return HINTS[code] ? `${text}; ${HINTS[code]}` : text;
}

/** What YAML 1.2 allows in a stream (c-printable); the yaml package is lenient, Python is not. */
const NON_PRINTABLE = /[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/** Text longer than this is not parsed: a recipe is a few kilobytes. */
export const MAX_RECIPE_CHARS = 1 << 20;
/** Nesting deeper than this is refused (a recipe nests three levels). */
export const MAX_DEPTH = 64;
/** Values visited after expanding aliases; past it the text is an alias bomb, not a recipe. */
export const MAX_NODES = 5_000;

function wholeFileIssue(message: string, line = 1, column = 1): Located {
  return { value: null, keys: new Map(), values: new Map(), issues: [{ path: '', line, column, message, severity: 'error' }] };
}

/**
 * Parse one YAML document; syntax errors, duplicate keys and texts past the size, depth and alias
 * budgets become issues, never exceptions or hangs.
 */
export function parseYaml(text: string): Located {
  if (text.length > MAX_RECIPE_CHARS) {
    const mib = (text.length / (1 << 20)).toFixed(1);
    return wholeFileIssue(`the file is ${mib} MiB; a recipe is a few kilobytes (at most 1 MiB is read): is this the right file?`);
  }
  const deep = flowDepthOver(text, MAX_DEPTH);
  if (deep) return wholeFileIssue(`brackets nest more than ${MAX_DEPTH} levels deep; a recipe nests a few levels`, deep.line, deep.column);
  try {
    return parseChecked(text);
  } catch (err) {
    // the yaml package recurses on nesting; a stack overflow is a file no recipe resembles
    const why = err instanceof RangeError ? 'it nests too deeply' : err instanceof Error ? err.message : String(err);
    return wholeFileIssue(`cannot read this YAML: ${why}; a recipe is a flat mapping of a few sections`);
  }
}

/** Where flow brackets first nest deeper than `limit` (quotes and comments skipped), if they do. */
function flowDepthOver(text: string, limit: number): Pos | undefined {
  let depth = 0;
  let line = 1;
  let lineStart = 0;
  let quote = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\n') {
      line++;
      lineStart = i + 1;
      if (quote === '#') quote = '';
      continue;
    }
    if (quote) {
      if (ch === quote && quote !== '#') quote = '';
      continue;
    }
    if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '#' && (i === 0 || /\s/.test(text[i - 1] ?? ''))) quote = '#';
    else if (ch === '[' || ch === '{') {
      if (++depth > limit) return { line, column: i - lineStart + 1 };
    } else if ((ch === ']' || ch === '}') && depth > 0) depth--;
  }
  return undefined;
}

function parseChecked(text: string): Located {
  const bad = NON_PRINTABLE.exec(text);
  if (bad) {
    const before = text.slice(0, bad.index);
    const line = before.split('\n').length;
    const column = bad.index - (before.lastIndexOf('\n') + 1) + 1;
    const code = `U+${(bad[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
    const message = `the file contains the control character ${code}, which YAML does not allow; delete it`;
    return { value: null, keys: new Map(), values: new Map(), issues: [{ path: '', line, column, message, severity: 'error' }] };
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: false, prettyErrors: true });
  const out: Located = { value: null, keys: new Map(), values: new Map(), issues: [] };
  // Unresolved tags are only warnings to the yaml package, but they would silently turn into text.
  const problems = [...doc.errors, ...doc.warnings.filter((w) => w.code === 'TAG_RESOLVE_FAILED')];
  if (problems.length) {
    out.issues = problems.map((e) => {
      const at = e.linePos?.[0] ?? { line: 1, col: 1 };
      return { path: '', line: at.line, column: at.col, message: `YAML syntax error: ${plainMessage(e.code, e.message)}`, severity: 'error' };
    });
    return out;
  }
  if (doc.contents === null) return out;
  // Values are built here rather than by doc.toJS(), which would rename a key such as `1e3` to
  // "1000" and lose its position; Python keeps the key as written, and so do we.
  let value: unknown;
  try {
    value = new Walker(doc, lineCounter, out).walk(doc.contents, []);
  } catch (err) {
    if (!(err instanceof Budget)) throw err;
    return wholeFileIssue(`the recipe is ${err.message}; a recipe is a small mapping: remove the aliases or nesting that multiply it`, err.at.line, err.at.column);
  }
  if (!out.issues.length) out.value = value;
  return out;
}

/** Records key/value positions and finds duplicate keys, mirroring the Python builder. */
class Walker {
  private readonly active = new Set<Node>();
  private visited = 0;
  /** Alias -> its anchored node: resolving walks the whole document, so each alias is resolved once. */
  private readonly resolved = new Map<Node, Node>();

  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly out: Located,
  ) {}

  private resolve(alias: Node & { resolve(doc: Document): Node | undefined }): Node {
    let target = this.resolved.get(alias);
    if (!target) {
      target = alias.resolve(this.doc) ?? alias;
      this.resolved.set(alias, target);
    }
    return target;
  }

  private pos(node: Node): Pos {
    const p = this.lines.linePos(node.range?.[0] ?? 0);
    return { line: p.line, column: p.col };
  }

  walk(node: Node, path: PathKey[]): unknown {
    const target = isAlias(node) ? this.resolve(node) : node;
    const emptyNull = isScalar(node) && node.value === null && node.source === '';
    if (!emptyNull) this.out.values.set(pathId(path), this.pos(node));
    if (++this.visited > MAX_NODES) throw new Budget(`more than ${MAX_NODES} values once aliases are expanded`, this.pos(node));
    if (path.length > MAX_DEPTH) throw new Budget(`nested more than ${MAX_DEPTH} levels deep`, this.pos(node));
    if (this.active.has(target)) {
      this.issue(path, this.pos(node), 'an alias refers to itself; recipes cannot be recursive');
      return null;
    }
    this.active.add(target);
    try {
      if (isMap(target)) return this.walkMap(target.items, path);
      if (isSeq(target)) return target.items.map((item, i) => (isNodeLike(item) ? this.walk(item, [...path, i]) : null));
      return isScalar(target) ? target.value : null;
    } finally {
      this.active.delete(target);
    }
  }

  private walkMap(items: ReadonlyArray<{ key: unknown; value: unknown }>, path: PathKey[]): Record<string, unknown> {
    const result: Record<string, unknown> = {};
    const firstLine = new Map<string, number>();
    for (const pair of items) {
      if (!isScalar(pair.key)) {
        const at = isNodeLike(pair.key) ? this.pos(pair.key) : keyPos(this.out, path);
        this.issue(path, at, 'keys must be plain names, not lists or mappings');
        continue;
      }
      const key = String(pair.key.source ?? pair.key.value);
      const keyPath = [...path, key];
      const at = this.pos(pair.key);
      const first = firstLine.get(key);
      if (first !== undefined) {
        this.issue(keyPath, at, `duplicate key "${key}" (first written on line ${first}); keep only one`);
        continue;
      }
      firstLine.set(key, at.line);
      this.out.keys.set(pathId(keyPath), at);
      const value = isNodeLike(pair.value) ? this.walk(pair.value, keyPath) : null;
      // defineProperty, so a key named __proto__ is data, not a prototype change
      Object.defineProperty(result, key, { value, enumerable: true, writable: true, configurable: true });
    }
    return result;
  }

  private issue(path: PathKey[], at: Pos, message: string): void {
    this.out.issues.push({ path: formatPath(path), line: at.line, column: at.column, message, severity: 'error' });
  }
}

/** Thrown by the walker when a budget is spent; parseYaml turns it into one issue. */
class Budget extends Error {
  constructor(
    message: string,
    readonly at: Pos,
  ) {
    super(message);
  }
}

function isNodeLike(value: unknown): value is Node {
  return isScalar(value) || isMap(value) || isSeq(value) || isAlias(value);
}
