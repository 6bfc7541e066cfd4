/**
 * Completion in a recipe: keys with their documentation and snippets (whole sections with their
 * defaults), enum and boolean values, base models from the local cache and the workspace, target
 * modules of the base model, data files, dataset columns and chat templates.
 */
import * as path from 'node:path';
import { CompletionItemKind, InsertTextFormat, type CompletionItem } from 'vscode-languageserver';
import { schemaAt, type SchemaNode } from '../recipe/messages';
import { describeType } from '../recipe/reference';
import { BUILTIN_CHAT_TEMPLATES } from '../recipe/schema';
import { cursorContext, siblingKeys, type CursorContext } from './cursor';
import { datasetColumns, DATA_EXTENSIONS, filesWith } from './datasets';
import { fieldDoc } from './hover';
import { memo } from './memo';
import { cachedModelIds, linearModules, readModelConfig, workspaceModelDirs } from './models';

/** Where completion looks besides the text. */
export interface CompletionEnv {
  recipeDir: string;
  workspaceFolders: readonly string[];
  /** Parsed values of the document, when it parsed (for base_model, data.train, data.format). */
  written?: Record<string, unknown>;
}

/** How long a folder scan is reused between completion requests. */
const SCAN_TTL_MS = 2_000;

function yamlScalar(v: unknown): string {
  if (typeof v === 'string') return /^[\w./-]+$/.test(v) && !/^(true|false|null|~|[-+.\d])/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v);
}

/** The snippet body for a key: `key: ${1:default}`, an enum choice, or a whole section. */
function snippet(key: string, node: SchemaNode, indent: number, tab = { n: 1 }): string {
  const pad = ' '.repeat(indent);
  if (node.type === 'object' && node.properties) {
    const required = (node as { required?: string[] }).required ?? [];
    const children = Object.entries(node.properties)
      .filter(([k, c]) => required.includes(k) || ('default' in c && c.type !== 'object'))
      .map(([k, c]) => `${pad}  ${snippet(k, c, indent + 2, tab)}`);
    return `${key}:\n${children.join('\n')}`;
  }
  const choices = node.enum ?? (node.type === 'boolean' ? [true, false] : undefined);
  const n = tab.n++;
  if (choices) {
    const first = 'default' in node ? [node.default, ...choices.filter((c) => c !== node.default)] : choices;
    return `${key}: \${${n}|${first.map((c) => String(c).replace(/[|,]/g, '')).join(',')}|}`;
  }
  return `${key}: \${${n}:${'default' in node ? yamlScalar(node.default) : ''}}`;
}

function keyItems(ctx: CursorContext, text: string, line: number): CompletionItem[] {
  const node = schemaAt(ctx.path);
  if (!node.properties) return [];
  const written = siblingKeys(text, line, ctx.indent);
  return Object.entries(node.properties)
    .filter(([k]) => !written.has(k))
    .map(([k, child], i) => ({
      label: k,
      kind: child.type === 'object' ? CompletionItemKind.Module : CompletionItemKind.Property,
      detail: describeType(child),
      documentation: { kind: 'markdown', value: fieldDoc([...ctx.path, k]) ?? '' },
      insertText: snippet(k, child, 0), // the client re-indents snippet lines to the cursor line
      insertTextFormat: InsertTextFormat.Snippet,
      sortText: String(i).padStart(3, '0'),
    }));
}

function values(labels: readonly string[], kind: CompletionItemKind, detail: string, doc?: (l: string) => string | undefined): CompletionItem[] {
  return labels.map((label, i) => ({ label, kind, detail, documentation: doc?.(label), sortText: String(i).padStart(4, '0') }));
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function valueItems(ctx: CursorContext, env: CompletionEnv): CompletionItem[] {
  const dotted = ctx.path.join('.');
  const data = (env.written?.['data'] ?? {}) as Record<string, unknown>;
  const roots = env.workspaceFolders.length ? env.workspaceFolders : [env.recipeDir];
  switch (dotted) {
    case 'base_model':
      return [
        ...values(memo(`models:${env.recipeDir}:${roots.join()}`, SCAN_TTL_MS, () => workspaceModelDirs(roots, env.recipeDir)), CompletionItemKind.Folder, 'local model folder (config.json)'),
        ...values(memo('hub-cache', SCAN_TTL_MS, () => cachedModelIds()), CompletionItemKind.Value, 'in the local Hugging Face cache'),
      ];
    case 'data.train':
    case 'data.eval':
      return values(memo(`data:${env.recipeDir}:${roots.join()}`, SCAN_TTL_MS, () => filesWith(roots, env.recipeDir, DATA_EXTENSIONS)), CompletionItemKind.File, 'data file in the workspace');
    case 'data.chat_template':
      return [
        ...values(['tokenizer', ...BUILTIN_CHAT_TEMPLATES], CompletionItemKind.EnumMember, 'chat template'),
        ...values(memo(`jinja:${env.recipeDir}:${roots.join()}`, SCAN_TTL_MS, () => filesWith(roots, env.recipeDir, ['.jinja'])), CompletionItemKind.File, 'Jinja chat template file'),
      ];
    case 'lora.target_modules':
      return [...values(['all-linear'], CompletionItemKind.EnumMember, 'every linear layer'), ...moduleItems(env)];
    default:
      break;
  }
  if (dotted.startsWith('data.fields.') && typeof data['train'] === 'string') {
    return values(datasetColumns(data['train'], env.recipeDir), CompletionItemKind.Field, `column of ${path.basename(data['train'])}`);
  }
  const node = schemaAt(ctx.path);
  const choices = node.enum ?? (node.type === 'boolean' ? [true, false] : node.anyOf?.flatMap((b) => ('const' in b ? [b.const] : b.enum ?? [])));
  if (choices?.length) return values(choices.map(String), CompletionItemKind.EnumMember, describeType(node));
  if ('default' in node && node.type !== 'object') return values([yamlScalar(node.default)], CompletionItemKind.Value, 'default');
  return [];
}

function moduleItems(env: CompletionEnv): CompletionItem[] {
  const base = str(env.written?.['base_model']);
  const config = base ? readModelConfig(base, env.recipeDir) : undefined;
  const { names, known } = linearModules(config);
  const detail = config ? `linear module of ${String(config['model_type'] ?? base)}${known ? '' : ' (assumed Llama-shaped)'}` : 'linear module (Llama-style names; base model config not found)';
  return values(names, CompletionItemKind.Field, detail);
}

/** Completion items at 0-based (line, character). */
export function completeAt(text: string, line: number, character: number, env: CompletionEnv): CompletionItem[] {
  const ctx = cursorContext(text, line, character);
  const range = { start: { line, character: ctx.start }, end: { line, character: ctx.end } };
  const withRange = (items: CompletionItem[]): CompletionItem[] =>
    items.map((it) => ({ ...it, textEdit: { range, newText: it.insertText ?? it.label }, insertText: undefined }));
  switch (ctx.kind) {
    case 'key':
      return withRange(keyItems(ctx, text, line));
    case 'value':
      return withRange(valueItems(ctx, env));
    case 'item':
      return ctx.path.join('.') === 'lora.target_modules' ? withRange(moduleItems(env)) : [];
    case 'none':
      return [];
  }
}
