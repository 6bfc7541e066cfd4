/**
 * A preview session: one recipe's data settings, tokenizer and chat template, ready to turn a
 * dataset line into what the trainer sees. Built once per recipe and reused for every line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseRecipeText } from '../recipe/validate';
import { BUILTIN_CHAT_TEMPLATES } from '../recipe/schema';
import { conversationSpans, encodeConversation, encodeSpanned, labelTokens, surelyTrainedUntruncated, type Encoded } from './masking';
import { readJson, tokenizerFolder } from './modelFiles';
import { parseJsonLine, rowToConversation, type DataConfig } from './rows';
import { markText, splitMarked } from './pieces';
import { RowError } from './rowError';
import { ChatTemplate, RESERVED, type ChatMessage } from './template';
import { bytesBoundTokens } from './tokenBound';
import { tokenText, TextTokenizer } from './tokenizer';

/** One line as the trainer sees it, or why it is a bad row. */
export type LinePreview =
  | { ok: true; messages: ChatMessage[] | string; encoded: Encoded; trained: number }
  | { ok: false; kind: string; message: string; messages?: ChatMessage[] | string };

/** Everything needed to preview lines of one recipe's data. */
export class PreviewSession {
  constructor(
    readonly recipePath: string,
    readonly data: DataConfig,
    readonly tokenizer: TextTokenizer,
    readonly template: ChatTemplate | undefined,
    /** Files the session was built from (recipe, tokenizer files, template file): a change to one invalidates it. */
    readonly sources: readonly string[] = [],
    /** The tokenizer's token count is bounded by UTF-8 bytes (tokenBound.ts), so rows can be judged without tokens. */
    readonly bytesBoundTokens = false,
  ) {}

  private readonly recent = new Map<string, LinePreview>();

  /** Previews one dataset line (JSONL). Never throws for a bad row. Recent lines are cached (lenses re-resolve on every edit). */
  previewLine(line: string): LinePreview {
    const hit = this.recent.get(line);
    if (hit) return hit;
    const p = this.computeLine(line);
    if (this.recent.size >= 512) this.recent.delete(this.recent.keys().next().value!);
    this.recent.set(line, p);
    return p;
  }

  private computeLine(line: string): LinePreview {
    let messages: ChatMessage[] | string | undefined;
    try {
      messages = rowToConversation(parseJsonLine(line), this.data);
      const encoded = this.encode(messages);
      return { ok: true, messages, encoded, trained: encoded.labels.filter((l) => l !== -100).length };
    } catch (err) {
      const e = err as Error & { kind?: string };
      return { ok: false, kind: e.kind ?? 'template_error', message: e.message, ...(messages !== undefined ? { messages } : {}) };
    }
  }

  /**
   * The doctor's verdict on one line: like `previewLine`, but a conversation whose verdict is
   * certain without tokens (see `surelyTrainedUntruncated`; only for a tokenizer whose token count
   * the bytes bound, `bytesBoundTokens`) is not tokenized (`encoded` absent).
   */
  checkLine(line: string): LinePreview | { ok: true; messages: ChatMessage[]; encoded?: undefined } {
    try {
      const messages = rowToConversation(parseJsonLine(line), this.data);
      if (typeof messages === 'string' || !this.template) return this.previewLine(line);
      const spanned = conversationSpans(messages, this.tokenizer, this.template, this.data.train_on);
      if (this.bytesBoundTokens && surelyTrainedUntruncated(spanned, this.data.max_seq_len)) return { ok: true, messages };
      const encoded = encodeSpanned(spanned, this.tokenizer, this.data.max_seq_len);
      return { ok: true, messages, encoded, trained: encoded.labels.filter((l) => l !== -100).length };
    } catch (err) {
      const e = err as Error & { kind?: string };
      return { ok: false, kind: e.kind ?? 'template_error', message: e.message };
    }
  }

  /** Tokens of a line before truncation, as if max_seq_len were unlimited; undefined for a bad row. */
  fullLength(line: string): number | undefined {
    try {
      const messages = rowToConversation(parseJsonLine(line), this.data);
      if (typeof messages === 'string' || !this.template) return this.encode(messages).fullLength;
      return labelTokens(conversationSpans(messages, this.tokenizer, this.template, this.data.train_on).pieces, this.tokenizer, [], Number.MAX_SAFE_INTEGER).fullLength;
    } catch {
      return undefined;
    }
  }

  /** Encodes a conversation (or raw text for `format: text`). */
  encode(messages: ChatMessage[] | string): Encoded {
    const d = this.data;
    if (typeof messages === 'string') {
      const tok = this.tokenizer;
      const eos = tok.special.eos_token;
      if (!eos) throw new Error('the tokenizer has no eos_token; set one so the model learns to stop');
      if (RESERVED.test(messages)) throw new RowError('template_error', 'message 1 contains a reserved character (U+FDD0..U+FDEF, Unicode noncharacters); remove it');
      const pieces = splitMarked((tok.addsBos() ? tok.special.bos_token : '') + markText(messages, tok.specialTexts) + eos, tok.specialTexts);
      const text = pieces.map(([t]) => t).join('');
      const spans: Array<[number, number]> = [[0, Array.from(text).length]];
      return { text, trainedSpans: spans, ...labelTokens(pieces, tok, spans, d.max_seq_len) };
    }
    if (!this.template) throw new Error('no chat template');
    return encodeConversation(messages, this.tokenizer, this.template, d.train_on, d.max_seq_len);
  }
}

/** Loads the session for a recipe file; `builtinDir` holds the built-in templates' .jinja files. */
export function loadSession(recipePath: string, builtinDir: string): PreviewSession {
  const parsed = parseRecipeText(fs.readFileSync(recipePath, 'utf8'));
  if (!parsed.recipe) {
    const first = parsed.issues[0];
    throw new Error(`${path.basename(recipePath)} has errors (line ${first?.line ?? '?'}: ${first?.message ?? 'invalid'}); fix the recipe to preview its data`);
  }
  const recipe = parsed.recipe;
  const dir = path.dirname(recipePath);
  const found = tokenizerFolder(recipe.tokenizer ?? recipe.base_model, dir, recipe.revision);
  if ('error' in found) throw new Error(found.error);
  const tokenizerConfig = readJson(path.join(found.folder, 'tokenizer_config.json'), true);
  const tokenizerJson = readJson(path.join(found.folder, 'tokenizer.json'));
  const tokenizer = new TextTokenizer({ tokenizerJson, tokenizerConfig });
  const template = recipe.data.format === 'text' ? undefined : resolveTemplate(recipe.data.chat_template, tokenizerConfig, found.folder, dir, builtinDir);
  const sources = [recipePath, ...['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'].map((f) => path.join(found.folder, f)), path.resolve(dir, recipe.data.chat_template)];
  return new PreviewSession(recipePath, recipe.data, tokenizer, template, sources, bytesBoundTokens(tokenizerJson));
}

/** `data.chat_template` -> a compiled template (mirrors python `resolve_chat_template`). */
export function resolveTemplate(spec: string, tokenizerConfig: Record<string, unknown>, tokenizerDir: string, recipeDir: string, builtinDir: string): ChatTemplate {
  if (spec === 'tokenizer') {
    let source = tokenizerConfig['chat_template'];
    if (Array.isArray(source)) source = (source as Array<{ name: string; template: string }>).find((t) => t.name === 'default')?.template;
    const file = path.join(tokenizerDir, 'chat_template.jinja');
    if (typeof source !== 'string' && fs.existsSync(file)) source = fs.readFileSync(file, 'utf8');
    if (typeof source !== 'string' || !source) {
      throw new Error(`data.chat_template is 'tokenizer' but the tokenizer has no chat template; set data.chat_template to a built-in (${BUILTIN_CHAT_TEMPLATES.join(', ')}), a .jinja file or inline Jinja`);
    }
    return new ChatTemplate(source, 'from the tokenizer');
  }
  if ((BUILTIN_CHAT_TEMPLATES as readonly string[]).includes(spec)) return new ChatTemplate(fs.readFileSync(path.join(builtinDir, `${spec}.jinja`), 'utf8'), spec);
  if (spec.includes('{{') || spec.includes('{%')) return new ChatTemplate(spec, '(inline)');
  const file = path.resolve(recipeDir, spec);
  if (!fs.existsSync(file)) throw new Error(`data.chat_template ${JSON.stringify(spec)} is not 'tokenizer', not a built-in, not inline Jinja and not an existing file (looked for ${file})`);
  return new ChatTemplate(fs.readFileSync(file, 'utf8'), spec);
}

export { tokenText };
