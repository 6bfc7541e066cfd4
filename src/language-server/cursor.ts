/**
 * Where the cursor is in a recipe, read from the lines around it rather than a parse tree, so it
 * works in half-typed YAML: the path of the mapping it is in, and whether it types a key, a value
 * or a list item. Block style only; flow mappings (`lora: {r: 8}`) give no context.
 */

/** What is being typed at the cursor. */
export type CursorKind = 'key' | 'value' | 'item' | 'none';

/** The cursor's context: `path` is the mapping (key) or the key whose value is typed (value, item). */
export interface CursorContext {
  kind: CursorKind;
  path: string[];
  /** The partial word before the cursor. */
  prefix: string;
  /** 0-based character range of the word to replace on the cursor's line. */
  start: number;
  end: number;
  /** Indentation of the cursor's line (for snippets of nested sections). */
  indent: number;
}

const KEY_LINE = /^(\s*)(?:-\s+)?([A-Za-z_][\w.-]*)\s*:(?:\s+|$)(.*)$/;

function indentOf(line: string): number {
  return line.length - line.trimStart().length;
}

function isBlank(line: string): boolean {
  const t = line.trim();
  return t === '' || t.startsWith('#');
}

/** Keys of the enclosing block mappings of a line indented `indent` (outermost first). */
export function parentPath(lines: readonly string[], lineNo: number, indent: number, inclusive = false): string[] {
  const path: string[] = [];
  let limit = indent;
  for (let n = lineNo - 1; n >= 0 && limit > 0; n--) {
    const line = lines[n] ?? '';
    if (isBlank(line)) continue;
    const ind = indentOf(line);
    if (ind > limit || (ind === limit && !inclusive)) continue;
    const m = KEY_LINE.exec(line);
    if (m && (m[3] ?? '').replace(/#.*$/, '').trim() === '' && !line.trimStart().startsWith('-')) {
      path.unshift(m[2] ?? '');
      limit = ind;
      inclusive = false;
    } else if (ind < limit) {
      limit = ind;
    }
  }
  return path;
}

/** The context at 0-based (line, character). */
export function cursorContext(text: string, line: number, character: number): CursorContext {
  const lines = text.split(/\r?\n/);
  const full = lines[line] ?? '';
  const before = full.slice(0, character);
  const indent = indentOf(full);
  const word = /[\w./~@:-]*$/.exec(before)?.[0] ?? '';
  const wordEnd = character + (/^[\w./~@-]*/.exec(full.slice(character))?.[0].length ?? 0);
  const none: CursorContext = { kind: 'none', path: [], prefix: '', start: character, end: character, indent };
  if (before.trimStart().startsWith('#') || /\s#/.test(before)) return none;
  const item = /^(\s*)-\s+([^:#]*)$/.exec(before);
  if (item) {
    // a list item belongs to the key above it, written at the same or a smaller indent
    const path = parentPath(lines, line, indent, true);
    const prefix = (item[2] ?? '').trimStart();
    return { kind: 'item', path, prefix, start: character - prefix.length, end: wordEnd, indent };
  }
  const keyed = /^(\s*)([A-Za-z_][\w.-]*)\s*:\s+(.*)$/.exec(before);
  if (keyed) {
    const raw = keyed[3] ?? '';
    if (/^[[{]/.test(raw)) {
      const inList = /^\[([^\]]*,)?\s*([\w.-]*)$/.exec(raw);
      if (!inList) return none;
      const prefix = inList[2] ?? '';
      return { kind: 'item', path: [...parentPath(lines, line, indent), keyed[2] ?? ''], prefix, start: character - prefix.length, end: wordEnd, indent };
    }
    const quoted = /^["']/.test(raw);
    const prefix = quoted ? raw.slice(1) : raw;
    return { kind: 'value', path: [...parentPath(lines, line, indent), keyed[2] ?? ''], prefix, start: character - prefix.length, end: Math.max(wordEnd, character), indent };
  }
  if (/^\s*[A-Za-z_]?[\w.-]*$/.test(before)) {
    return { kind: 'key', path: parentPath(lines, line, indent), prefix: word, start: character - word.length, end: wordEnd, indent };
  }
  return none;
}

/** Keys already written in the block mapping that holds line `lineNo` at `indent`. */
export function siblingKeys(text: string, lineNo: number, indent: number): Set<string> {
  const lines = text.split(/\r?\n/);
  const out = new Set<string>();
  const scan = (from: number, step: number): void => {
    for (let n = from; n >= 0 && n < lines.length; n += step) {
      const line = lines[n] ?? '';
      if (isBlank(line)) continue;
      const ind = indentOf(line);
      if (ind < indent) return;
      const m = KEY_LINE.exec(line);
      if (ind === indent && m) out.add(m[2] ?? '');
    }
  };
  scan(lineNo - 1, -1);
  scan(lineNo + 1, 1);
  return out;
}
