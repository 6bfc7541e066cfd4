/**
 * The text edit behind the doctor's "Set data.max_seq_len" quick fix: the recipe is changed only
 * where the user accepts it, never rewritten silently.
 */

/** The smallest power of two ≥ `tokens` (at least 16, the schema's minimum). */
export function suggestedMaxSeqLen(tokens: number): number {
  let n = 16;
  while (n < tokens) n *= 2;
  return n;
}

/**
 * Where to write `max_seq_len: value` in recipe YAML: the existing key under `data:` (replace
 * its value), else a new line right after `data:`. Lines/columns are 0-based; undefined when the
 * recipe has no block `data:` mapping to edit.
 */
export function maxSeqLenEdit(text: string, value: number): { line: number; start: number; end: number; insert: string } | undefined {
  const lines = text.split(/\r?\n/);
  const dataAt = lines.findIndex((l) => /^data:\s*(#.*)?$/.test(l));
  if (dataAt < 0) return undefined;
  for (let i = dataAt + 1; i < lines.length; i += 1) {
    const l = lines[i]!;
    if (/^\S/.test(l)) break; // the next top-level key ends the data block
    const m = /^(\s+max_seq_len:\s*)([^#\s]*)/.exec(l);
    if (m) return { line: i, start: m[1]!.length, end: m[1]!.length + m[2]!.length, insert: String(value) };
  }
  const indent = /^(\s+)\S/.exec(lines[dataAt + 1] ?? '')?.[1] ?? '  ';
  return { line: dataAt + 1, start: 0, end: 0, insert: `${indent}max_seq_len: ${value}\n` };
}
