/**
 * Validate recipe text with the zod schema and point every issue at its line.
 *
 * Mirror: python-backend/src/qlora_studio/recipe/validate.py, which validates the same text
 * against the JSON Schema generated from the same zod schema; test/fixtures/recipes/ proves that
 * both give the same verdict, paths and lines. No `vscode` import.
 */
import type { z } from 'zod';
import { sortIssues, type RecipeIssue, type Severity } from './issues';
import * as msg from './messages';
import { recipeSchema, type Recipe } from './schema';
import { formatPath, keyPos, parentPos, parseYaml, valuePos, type Located, type PathKey } from './yamlSource';

export type { RecipeIssue, Severity } from './issues';

/** Where an issue points: the value, the key itself (unknown keys), or the parent (missing keys). */
export type Where = 'value' | 'key' | 'missing';

interface Found {
  path: PathKey[];
  where: Where;
  message: string;
}

/** The result of parsing recipe text: the default-filled recipe when there are no errors. */
export interface ParsedRecipe {
  recipe?: Recipe;
  issues: RecipeIssue[];
}

/** Every issue (errors and warnings) in recipe YAML, in file order, with 1-based lines. */
export function validateRecipeText(text: string): RecipeIssue[] {
  return parseRecipeText(text).issues;
}

/** Validate recipe YAML and, when it has no errors, return it with every default filled. */
export function parseRecipeText(text: string): ParsedRecipe {
  return validateLocated(parseYaml(text));
}

/** Validate an already parsed document (the language server keeps its positions for edits). */
export function validateLocated(doc: Located): ParsedRecipe {
  if (doc.issues.length) return { issues: sortIssues(doc.issues) };
  if (doc.value === null || doc.value === undefined) {
    return { issues: [issueAt(doc, [], 'value', 'the recipe is empty; start with `base_model:` and `data: {train: ...}`')] };
  }
  if (typeof doc.value !== 'object' || Array.isArray(doc.value)) {
    const text = `a recipe must be a mapping of keys to values (got ${msg.show(doc.value)}); start with \`base_model:\``;
    return { issues: [issueAt(doc, [], 'value', text)] };
  }
  const parsed = recipeSchema.safeParse(doc.value);
  const found = parsed.success ? [] : parsed.error.issues.flatMap((i) => explain(i, doc.value, []));
  const issues = [
    ...found.map((f) => withFix(issueAt(doc, f.path, f.where, f.message), quickFix(doc.value, f.path, f.where))),
    ...semanticWarnings(doc.value as Record<string, unknown>).map(([path, text]) => issueAt(doc, path, 'value', text, 'warning')),
  ];
  return { recipe: parsed.success ? parsed.data : undefined, issues: sortIssues(issues) };
}

function issueAt(doc: Located, path: PathKey[], where: Where, message: string, severity: Severity = 'error'): RecipeIssue {
  const pos = where === 'key' ? keyPos(doc, path) : where === 'missing' ? parentPos(doc, path) : valuePos(doc, path);
  return { path: formatPath(path), line: pos.line, column: pos.column, message, severity };
}

function withFix(issue: RecipeIssue, suggestion: string | undefined): RecipeIssue {
  return suggestion === undefined ? issue : { ...issue, suggestion };
}

/**
 * The replacement a quick fix offers: a key for an unknown key, a value for an enum typo.
 * Mirror: `quick_fix` in validate.py.
 */
export function quickFix(root: unknown, path: readonly PathKey[], where: Where): string | undefined {
  if (where === 'key' && path.length) {
    return msg.keySuggestion(String(path[path.length - 1]), Object.keys(msg.schemaAt(path.slice(0, -1)).properties ?? {}));
  }
  const allowed = msg.schemaAt(path).enum;
  const got = valueAt(root, path);
  if (where === 'value' && allowed && typeof got === 'string') return msg.suggest(got, allowed.map(String));
  return undefined;
}

function valueAt(root: unknown, path: readonly PathKey[]): unknown {
  let node = root;
  for (const part of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PathKey, unknown>)[part];
  }
  return node;
}

function jsType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') return 'object';
  return typeof value;
}

/** Whether a value fits a JSON Schema `type` (what jsonschema's is_type answers in Python). */
function fitsType(value: unknown, type: string): boolean {
  if (type === 'integer') return typeof value === 'number' && Number.isInteger(value);
  return jsType(value) === type;
}

/** Turn one zod issue into positioned, human-worded findings. */
function explain(issue: z.core.$ZodIssue, root: unknown, base: PathKey[]): Found[] {
  const path = [...base, ...issue.path.map((p) => (typeof p === 'number' ? p : String(p)))];
  const got = valueAt(root, path);
  const schema = msg.schemaAt(path);
  const value = (message: string): Found[] => [{ path, where: 'value', message }];
  switch (issue.code) {
    case 'invalid_type':
      if (got === undefined) return [{ path, where: 'missing', message: msg.missingKey(String(path[path.length - 1]), schema) }];
      return value(msg.wrongType(schema, got, issue.expected === 'int' || schema.type === 'integer'));
    case 'too_small':
    case 'too_big': {
      const kind: 'string' | 'array' | 'number' = issue.origin === 'string' ? 'string' : issue.origin === 'array' ? 'array' : 'number';
      const limit = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
      const op = issue.code === 'too_small' ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
      return value(msg.bound(kind, op, limit, got));
    }
    case 'invalid_value':
      if (issue.values.length === 1) return value(`must be ${JSON.stringify(issue.values[0])} (got ${msg.show(got)})`);
      return value(msg.notOneOf(issue.values, got));
    case 'unrecognized_keys': {
      const allowed = Object.keys(schema.properties ?? {});
      return issue.keys.map((key) => ({ path: [...path, key], where: 'key' as const, message: msg.unknownKey(key, allowed) }));
    }
    case 'invalid_union':
      return explainUnion(issue, root, path, got, schema);
    case 'invalid_format':
      return value(msg.patternMismatch(schema, got));
    default:
      return value(issue.message);
  }
}

/** Report inside the one branch of the right kind (e.g. an empty list), else list the kinds. */
function explainUnion(issue: z.core.$ZodIssueInvalidUnion, root: unknown, path: PathKey[], got: unknown, schema: msg.SchemaNode): Found[] {
  const branches = schema.anyOf ?? [];
  const fitting = branches.flatMap((b, i) => (b.type && !('const' in b) && fitsType(got, b.type) ? [i] : []));
  const inner = fitting.length === 1 ? issue.errors[fitting[0] ?? -1] : undefined;
  if (inner && inner.length) return inner.flatMap((i) => explain(i, root, path));
  return [{ path, where: 'value', message: msg.alternatives(branches, got) }];
}

/**
 * Settings that are legal but partly ignored: a warning, never an error.
 * Mirror: `semantic_warnings` in validate.py.
 */
export function semanticWarnings(recipe: Record<string, unknown>): Array<[PathKey[], string]> {
  const section = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
  const training = section(recipe['training']);
  const data = section(recipe['data']);
  const out: Array<[PathKey[], string]> = [];
  if ('max_steps' in training && 'epochs' in training) {
    out.push([['training', 'epochs'], 'ignored: training.max_steps is set and wins over epochs']);
  }
  if ('warmup_steps' in training && 'warmup_ratio' in training) {
    out.push([['training', 'warmup_ratio'], 'ignored: training.warmup_steps is set and wins over warmup_ratio']);
  }
  const split = data['eval_split'];
  if ('eval' in data && typeof split === 'number' && split > 0) {
    out.push([['data', 'eval_split'], 'ignored: data.eval is given, so no part of train is held out']);
  }
  return out;
}
