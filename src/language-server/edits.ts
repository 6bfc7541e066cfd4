/**
 * Text edits that set one recipe value: replace it where written, add the key under its section,
 * or add the section. Block style only: a key inside a flow mapping (`lora: {r: 8}`) gets no edit.
 */
import type { Range, TextEdit } from 'vscode-languageserver';
import { pathId, type Located, type PathKey } from '../recipe/yamlSource';

/** A quick fix: set the value at `path` to `yaml` (YAML text). */
export interface SetValue {
  title: string;
  path: string[];
  yaml: string;
}

function lineRange(lines: readonly string[], line0: number, from: number): Range {
  const text = lines[line0] ?? '';
  const comment = text.search(/\s#/);
  const end = comment >= from ? comment : text.trimEnd().length;
  return { start: { line: line0, character: from }, end: { line: line0, character: Math.max(from, end) } };
}

/** The edit that makes `path` hold `yaml`, or undefined when the text's shape does not allow one. */
export function setValueEdit(text: string, doc: Located, path: readonly PathKey[], yaml: string): TextEdit | undefined {
  const lines = text.split(/\r?\n/);
  const key = doc.keys.get(pathId(path));
  if (key) {
    const value = doc.values.get(pathId(path));
    if (value && value.line !== key.line) return undefined; // a block value below the key
    const line0 = key.line - 1;
    const colon = (lines[line0] ?? '').indexOf(':', key.column - 1);
    if (colon < 0) return undefined;
    const from = value ? value.column - 1 : colon + 1;
    return { range: lineRange(lines, line0, from), newText: value ? yaml : ` ${yaml}` };
  }
  // find the deepest written ancestor section and add what is missing below it
  for (let n = path.length - 1; n >= 0; n--) {
    const parent = path.slice(0, n);
    const at = n === 0 ? undefined : doc.keys.get(pathId(parent));
    if (n > 0 && !at) continue;
    const parentValue = n === 0 ? undefined : doc.values.get(pathId(parent));
    if (at && parentValue && parentValue.line === at.line) return undefined; // flow or scalar section
    const indent = at ? at.column - 1 + 2 : 0;
    const rest = path.slice(n).map(String);
    const block = rest
      .map((k, i) => `${' '.repeat(indent + 2 * i)}${k}:${i === rest.length - 1 ? ` ${yaml}` : ''}`)
      .join('\n');
    if (!at) {
      const last = lines.length - 1;
      const end = { line: last, character: (lines[last] ?? '').length };
      const lead = (lines[last] ?? '') === '' ? '' : '\n';
      return { range: { start: end, end }, newText: `${lead}${block}\n` };
    }
    const line0 = at.line; // the line after the section key
    return { range: { start: { line: line0, character: 0 }, end: { line: line0, character: 0 } }, newText: `${block}\n` };
  }
  return undefined;
}
