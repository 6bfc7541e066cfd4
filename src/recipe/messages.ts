/**
 * Human wording for recipe violations, built from the JSON Schema of the recipe so that the
 * editor and Python say the same thing. Mirror: python-backend/src/qlora_studio/recipe/messages.py.
 */
import { z } from 'zod';
import aliasFile from '../../python-backend/src/qlora_studio/recipe/key_aliases.json';
import { recipeSchema } from './schema';
import type { PathKey } from './yamlSource';

/** The parts of a JSON Schema node that messages read. */
export interface SchemaNode {
  type?: string;
  const?: unknown;
  enum?: unknown[];
  description?: string;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  anyOf?: SchemaNode[];
  minItems?: number;
  minLength?: number;
  pattern?: string;
  default?: unknown;
}

/** The recipe's JSON Schema, the same document Python validates against (generated the same way). */
export const recipeJsonSchema: Readonly<SchemaNode> = Object.freeze(
  z.toJSONSchema(recipeSchema, { io: 'input', target: 'draft-2020-12' }) as SchemaNode,
);

/** The sub-schema describing the value at `path` ({} when the path leaves the schema). */
export function schemaAt(path: readonly PathKey[]): SchemaNode {
  let node: SchemaNode = recipeJsonSchema;
  for (const part of path) {
    if (typeof part === 'number') node = node.items ?? node.anyOf?.find((b) => b.items)?.items ?? {};
    else node = node.properties?.[part] ?? {};
  }
  return node;
}

const NOUNS: Record<string, string> = {
  string: 'text',
  number: 'a number',
  integer: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping of keys to values',
  array: 'a list',
  null: 'empty',
};

/** A short rendering of the offending value for `(got ...)`. */
export function show(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN';
    if (!Number.isFinite(value)) return value > 0 ? 'infinity' : '-infinity';
    return String(value);
  }
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'string') {
    const text = JSON.stringify(value);
    return text.length <= 60 ? text : `${text.slice(0, 57)}..."`;
  }
  return Array.isArray(value) ? 'a list' : 'a mapping';
}

/** What a value matching `schema` is called in a message. */
export function typeNoun(schema: SchemaNode): string {
  if ('const' in schema) return JSON.stringify(schema.const);
  if (schema.type === 'array') {
    const itemType = schema.items?.type ?? '';
    const of = ({ string: 'names', number: 'numbers', integer: 'whole numbers' } as Record<string, string>)[itemType] ?? 'items';
    return (schema.minItems ?? 0) >= 1 ? `a non-empty list of ${of}` : `a list of ${of}`;
  }
  if (schema.type === 'string' && (schema.minLength ?? 0) >= 1) return 'non-empty text';
  return NOUNS[schema.type ?? ''] ?? String(schema.type);
}

/** `must be 4 or 8 (got 5)` for an anyOf whose branches all failed. */
export function alternatives(branches: SchemaNode[], got: unknown): string {
  const names = branches.map(typeNoun);
  const joined = names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}` : (names[0] ?? '');
  return `must be ${joined} (got ${show(got)})`;
}

/** The closest allowed spelling, when one is close enough to be a likely typo. */
export function suggest(word: string, choices: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = 0.6;
  for (const choice of choices) {
    const score = similarity(word, choice);
    if (score >= bestScore) [best, bestScore] = [choice, score];
  }
  return best;
}

/** 2·matches / total length over longest common blocks: Python difflib's ratio, so suggestions agree. */
function similarity(a: string, b: string): number {
  const matches = (x: string, y: string): number => {
    if (!x || !y) return 0;
    let [bestI, bestJ, bestLen] = [0, 0, 0];
    for (let i = 0; i < x.length; i++) {
      for (let j = 0; j < y.length; j++) {
        let k = 0;
        while (i + k < x.length && j + k < y.length && x[i + k] === y[j + k]) k++;
        if (k > bestLen) [bestI, bestJ, bestLen] = [i, j, k];
      }
    }
    if (!bestLen) return 0;
    return bestLen + matches(x.slice(0, bestI), y.slice(0, bestJ)) + matches(x.slice(bestI + bestLen), y.slice(bestJ + bestLen));
  };
  return a.length + b.length ? (2 * matches(a, b)) / (a.length + b.length) : 0;
}

/** Foreign key names (transformers, peft, TRL) and the recipe key each one means. */
export function keyAliases(): ReadonlyMap<string, string> {
  return new Map(Object.entries(aliasFile).filter(([k]) => !k.startsWith('$')));
}

/** The allowed key that an unknown key most likely means: a known alias, else the closest spelling. */
export function keySuggestion(key: string, allowed: readonly string[]): string | undefined {
  const alias = keyAliases().get(key);
  return alias !== undefined && allowed.includes(alias) ? alias : suggest(key, allowed);
}

/**
 * Message for a key the schema does not know, with a did-you-mean when there is one. A known
 * foreign name (learning_rate, lora_alpha) maps to its recipe key when that key belongs here.
 */
export function unknownKey(key: string, allowed: readonly string[]): string {
  const guess = keySuggestion(key, allowed);
  return guess ? `unknown key "${key}"; did you mean "${guess}"?` : `unknown key "${key}"; allowed keys here: ${allowed.join(', ')}`;
}

/** Message for a required key that is absent, with what the key is for. */
export function missingKey(key: string, schema: SchemaNode): string {
  return `missing required key "${key}"` + (schema.description ? ` — ${schema.description}` : '');
}

/** Message for an enum violation, listing every allowed value. */
export function notOneOf(allowed: readonly unknown[], got: unknown): string {
  let text = `must be one of: ${allowed.map(String).join(', ')} (got ${show(got)})`;
  if (typeof got === 'string') {
    const guess = suggest(got, allowed.map(String));
    if (guess) text += `; did you mean "${guess}"?`;
  }
  return text;
}

/** Message for a value of the wrong kind; non-finite numbers and enum fields get their own wording. */
export function wrongType(schema: SchemaNode, got: unknown, wantsInteger = schema.type === 'integer'): string {
  const numeric = schema.type === 'number' || schema.type === 'integer';
  if (numeric && typeof got === 'number' && !Number.isFinite(got)) return `must be a finite number (got ${show(got)})`;
  if (wantsInteger && typeof got === 'number') return `must be a whole number (got ${show(got)})`;
  if (schema.enum) return notOneOf(schema.enum, got);
  return `must be ${typeNoun(schema)} (got ${show(got)})`;
}

/** Message for a bound: `>`/`>=`/`<`/`<=` on numbers, lengths on text and lists. */
export function bound(kind: 'number' | 'string' | 'array', op: '>=' | '>' | '<=' | '<', limit: number, got: unknown): string {
  if (kind === 'number') return `must be ${op} ${limit} (got ${show(got)})`;
  const min = op.startsWith('>');
  if (kind === 'string') {
    if (min) return limit === 1 ? 'must not be empty' : `must be at least ${limit} characters long`;
    return `must be at most ${limit} characters long`;
  }
  return `must list ${min ? 'at least' : 'at most'} ${limit} item${limit !== 1 ? 's' : ''}`;
}

/** Message for text that does not match the schema's pattern. */
export function patternMismatch(schema: SchemaNode, got: unknown): string {
  return `must match ${schema.pattern ?? 'the required pattern'} (got ${show(got)})` + (schema.description ? `; ${schema.description}` : '');
}
