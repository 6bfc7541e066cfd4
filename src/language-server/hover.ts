/**
 * Hover on any recipe key: what it does, what it accepts, its default, the typical range, when to
 * change it and what it costs; the `training` hover adds the memory estimate.
 */
import type { Hover } from 'vscode-languageserver';
import { schemaAt, type SchemaNode } from '../recipe/messages';
import { describeType } from '../recipe/reference';
import type { Analysis } from './analysis';
import { parentPath } from './cursor';
import { GUIDE } from './guide';
import { estimateMarkdown } from './lens';

/** Markdown documentation for the field at `path` (also used by completion items). */
export function fieldDoc(path: readonly string[]): string | undefined {
  if (!path.length) return undefined;
  const parent = schemaAt(path.slice(0, -1)) as SchemaNode & { required?: string[] };
  const node = parent.properties?.[path[path.length - 1] ?? ''];
  if (!node) return undefined;
  const dotted = path.join('.');
  const required = (parent.required ?? []).includes(path[path.length - 1] ?? '');
  const def = required ? 'required' : 'default' in node ? (node.type === 'object' ? 'see its fields' : `\`${JSON.stringify(node.default)}\``) : 'optional';
  const advice = GUIDE[dotted];
  const parts = [`**${dotted}** — ${node.description ?? ''}`, `Accepts: ${describeType(node)} · Default: ${def}`];
  if (advice?.typical) parts.push(`Typical: ${advice.typical}`);
  if (advice?.change) parts.push(`When to change: ${advice.change}`);
  if (advice?.costs) parts.push(`Cost: ${advice.costs}`);
  return parts.join('\n\n');
}

/** The hover at 0-based (line, character), if it is on a key. */
export function hoverAt(text: string, line: number, character: number, a: Analysis | undefined): Hover | null {
  const lines = text.split(/\r?\n/);
  const full = lines[line] ?? '';
  const m = /^(\s*)(?:-\s+)?([A-Za-z_][\w.-]*)\s*:/.exec(full);
  if (!m) return null;
  const start = (m[1] ?? '').length + (full.trimStart().startsWith('-') ? full.trimStart().indexOf(m[2] ?? '') : 0);
  const end = start + (m[2] ?? '').length;
  if (character < start || character > end) return null;
  const path = [...parentPath(lines, line, (m[1] ?? '').length), m[2] ?? ''];
  const doc = fieldDoc(path);
  if (!doc) return null;
  const extra = path.length === 1 && path[0] === 'training' && a ? `\n\n---\n\n${estimateMarkdown(a)}` : '';
  return {
    contents: { kind: 'markdown', value: doc + extra },
    range: { start: { line, character: start }, end: { line, character: end } },
  };
}
