/**
 * One pass over a recipe text: YAML and schema issues from the shared validator, cross-field
 * findings, the memory estimate, and all of it as LSP diagnostics with exact ranges and the
 * quick fixes each one offers (carried in `Diagnostic.data`).
 */
import { DiagnosticSeverity, type Diagnostic, type Range } from 'vscode-languageserver';
import { estimateMemory, type MemoryEstimate } from '../recipe/estimate';
import type { RecipeIssue } from '../recipe/issues';
import { schemaAt, type SchemaNode } from '../recipe/messages';
import type { Recipe } from '../recipe/schema';
import { validateLocated } from '../recipe/validate';
import { keyPos, MAX_RECIPE_CHARS, parseYaml, valuePos, type Located, type PathKey } from '../recipe/yamlSource';
import { crossChecks, type Finding } from './checks';
import { setValueEdit, type SetValue } from './edits';
import { readModelConfig } from './models';

/** What the analysis knows besides the text. */
export interface AnalysisEnv {
  recipeDir: string;
  gpuMemoryMb?: number;
  hasCuda?: boolean;
}

/** A quick fix as carried in a diagnostic: a title and the edits that apply it. */
export interface Fix {
  title: string;
  edits: Array<{ range: Range; newText: string }>;
}

/** Everything the server's features read about one version of a recipe. */
export interface Analysis {
  located: Located;
  recipe?: Recipe;
  issues: RecipeIssue[];
  modelConfig?: Record<string, unknown>;
  estimate?: MemoryEstimate;
  diagnostics: Diagnostic[];
}

const SOURCE = 'qlora';

/** The range of the token starting at 1-based (line, column): a key, a quoted or a plain value. */
export function tokenRange(lines: readonly string[], line: number, column: number, key: boolean): Range {
  const l0 = Math.max(0, line - 1);
  const text = lines[l0] ?? '';
  const c0 = Math.min(Math.max(0, column - 1), text.length);
  let end: number;
  const ch = text[c0];
  if (key) end = c0 + (/^[^:\s]*/.exec(text.slice(c0))?.[0].length ?? 0);
  else if (ch === '"' || ch === "'") {
    const close = text.indexOf(ch, c0 + 1);
    end = close < 0 ? text.length : close + 1;
  } else {
    const rest = text.slice(c0);
    const comment = rest.search(/\s#/);
    end = c0 + (comment >= 0 ? rest.slice(0, comment) : rest).trimEnd().length;
  }
  if (end <= c0 && text.length > c0) end = c0 + 1;
  return { start: { line: l0, character: c0 }, end: { line: l0, character: end } };
}

function splitPath(p: string): PathKey[] {
  if (!p) return [];
  const out: PathKey[] = [];
  for (const m of p.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : (m[1] ?? ''));
  return out;
}

function fixOf(text: string, doc: Located, s: SetValue): Fix | undefined {
  const edit = setValueEdit(text, doc, s.path, s.yaml);
  return edit ? { title: s.title, edits: [edit] } : undefined;
}

/** What a quick fix writes for a missing required key; the user replaces it. */
const PLACEHOLDERS: Record<string, string> = { base_model: 'meta-llama/Llama-3.2-1B-Instruct', 'data.train': 'data/train.jsonl' };

/** A missing required section becomes the path of its first required field (data -> data.train). */
function requiredLeaf(path: string[]): string[] {
  const out = [...path];
  for (let node = schemaAt(out) as SchemaNode & { required?: string[] }; node.type === 'object' && node.required?.[0]; node = schemaAt(out)) {
    out.push(node.required[0]);
  }
  return out;
}

function issueDiagnostic(text: string, lines: readonly string[], doc: Located, i: RecipeIssue): Diagnostic {
  const p = splitPath(i.path);
  const isKey = doc.keys.has(JSON.stringify(p)) && (i.message.startsWith('unknown key') || i.message.startsWith('duplicate key'));
  const range = i.line > 0 ? tokenRange(lines, i.line, i.column, isKey) : tokenRange(lines, 1, 1, false);
  const fixes: Fix[] = [];
  if (i.suggestion !== undefined) fixes.push({ title: `Change to '${i.suggestion}'`, edits: [{ range, newText: i.suggestion }] });
  const missing = /^missing required key/.test(i.message) || /is required/.test(i.message);
  if (missing) {
    const leaf = requiredLeaf(p.map(String));
    const f = fixOf(text, doc, { title: `Add ${i.path}`, path: leaf, yaml: PLACEHOLDERS[leaf.join('.')] ?? '""' });
    if (f) fixes.push(f);
  }
  const code = i.message.startsWith('YAML') ? 'yaml' : i.message.startsWith('unknown key') ? 'unknown-key' : missing ? 'missing' : 'schema';
  return {
    range,
    severity: i.severity === 'error' ? DiagnosticSeverity.Error : DiagnosticSeverity.Warning,
    source: SOURCE,
    code,
    message: i.path ? `${i.path}: ${i.message}` : i.message,
    data: { fixes },
  };
}

const LEVELS: Record<Finding['level'], DiagnosticSeverity> = {
  error: DiagnosticSeverity.Error,
  warning: DiagnosticSeverity.Warning,
  hint: DiagnosticSeverity.Hint,
};

function findingDiagnostic(text: string, lines: readonly string[], doc: Located, f: Finding): Diagnostic {
  const written = doc.values.has(JSON.stringify(f.path));
  const pos = written ? valuePos(doc, f.path) : keyPos(doc, f.path);
  const fixes = f.fixes.map((s) => fixOf(text, doc, s)).filter((x): x is Fix => x !== undefined);
  return { range: tokenRange(lines, pos.line, pos.column, !written), severity: LEVELS[f.level], source: SOURCE, code: f.code, message: f.message, data: { fixes } };
}

/** Syntax errors after the first few are echoes of it (half-typed line); the rest of the file stays unmarked. */
const MAX_SYNTAX_ERRORS = 3;

function firstSyntaxErrors(issues: RecipeIssue[], lines: readonly string[]): RecipeIssue[] {
  const syntax = issues.filter((i) => i.message.startsWith('YAML syntax error'));
  if (!syntax.length) return issues;
  // a word on its own line is a key being typed: say so there instead of at the echoes below it
  const first = Math.min(...syntax.map((i) => i.line));
  for (let n = first - 1; n >= 0; n--) {
    const m = /^(\s*)([A-Za-z_][\w.-]*)\s*$/.exec(lines[n] ?? '');
    if (!m) continue;
    const message = `YAML syntax error: "${m[2]}" has no ":"; write it as \`${m[2]}: value\` (Ctrl+Space lists the keys)`;
    return [{ path: '', line: n + 1, column: (m[1] ?? '').length + 1, message, severity: 'error' }, ...issues.filter((i) => !syntax.includes(i))];
  }
  if (syntax.length <= MAX_SYNTAX_ERRORS) return issues;
  const dropped = new Set(syntax.slice(MAX_SYNTAX_ERRORS));
  return issues.filter((i) => !dropped.has(i));
}

/** Analyse one recipe text. Never throws for any text. */
export function analyze(text: string, env: AnalysisEnv): Analysis {
  const located = parseYaml(text);
  // a file past the size budget gets one issue on line 1: split only its start
  const lines = (text.length > MAX_RECIPE_CHARS ? text.slice(0, 4096) : text).split(/\r?\n/);
  const { recipe, issues } = validateLocated(located);
  const diagnostics = firstSyntaxErrors(issues, lines).map((i) => issueDiagnostic(text, lines, located, i));
  if (!recipe) return { located, issues, diagnostics };
  const modelConfig = readModelConfig(recipe.base_model, env.recipeDir);
  const estimate = estimateMemory(recipe, modelConfig);
  const written = (located.value ?? {}) as Record<string, unknown>;
  const findings = crossChecks(recipe, { recipeDir: env.recipeDir, written, modelConfig, estimate, gpuMemoryMb: env.gpuMemoryMb, hasCuda: env.hasCuda });
  diagnostics.push(...findings.map((f) => findingDiagnostic(text, lines, located, f)));
  return { located, recipe, issues, modelConfig, estimate, diagnostics };
}
