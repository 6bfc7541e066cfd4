/**
 * The tokenization part of the dataset-preview benchmark: the same rendered conversations through
 * our TypeScript tokenization (TextTokenizer.encode: ids and code-point offsets) and the Rust
 * `tokenizers` (bench/datasetPreview_rust.py, single thread), per tokenizer of the shared data;
 * throughput ratio, and ids/offsets compared text by text.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ChatTemplate } from '../src/dataset/template';
import { TextTokenizer } from '../src/dataset/tokenizer';
import { chatRow, rng } from './datasetPreviewParts';

/** Figures of one tokenizer. */
export type TokenizeFigures = {
  ts_seconds: number;
  rust_seconds: number;
  ts_over_rust: number;
  /** The first pass of a fresh tokenizer on each side (word caches empty, JIT cold). */
  ts_first_seconds: number;
  rust_first_seconds: number;
  encoder: string;
  chars: number;
  texts: number;
  id_mismatches: number;
  offset_mismatches: number;
};

/** The tokenizers compared: real GPT-2 byte-level BPE and Phi-3 SentencePiece-style BPE. */
export const TOKENIZERS: Record<string, string> = { gpt2: 'gpt2', 'phi-3-mini': 'phi-3-mini' };

/** `count` conversations of ~1 kB rendered with the built-in ChatML template (seeded). */
export function renderedTexts(builtin: string, count: number): string[] {
  const r = rng(11);
  const chatml = new ChatTemplate(readFileSync(path.join(builtin, 'chatml.jinja'), 'utf8'), 'chatml');
  const special = { bos_token: '', eos_token: '<|endoftext|>', pad_token: '', unk_token: '' };
  return Array.from({ length: count }, () => chatml.render((JSON.parse(chatRow(r, 1000)) as { messages: Array<{ role: string; content: string }> }).messages, false, special));
}

/**
 * Conversations of real prose and code (this repository's Markdown documentation, paragraph by
 * paragraph: a user turn and a two-paragraph answer) rendered with ChatML: a wider vocabulary
 * than the generated rows, so word caches hit less.
 */
export function proseTexts(root: string, builtin: string, count: number): string[] {
  const files = ['README.md', 'bench/README.md', 'docs/masking.md', 'docs/recipe.md'].map((f) => path.join(root, f)).filter((f) => existsSync(f));
  const paras = files.flatMap((f) => readFileSync(f, 'utf8').split(/\n\s*\n/)).map((p) => p.trim()).filter((p) => p.length > 20);
  const chatml = new ChatTemplate(readFileSync(path.join(builtin, 'chatml.jinja'), 'utf8'), 'chatml');
  const special = { bos_token: '', eos_token: '<|endoftext|>', pad_token: '', unk_token: '' };
  return Array.from({ length: Math.min(count, paras.length) }, (_, i) => chatml.render([
    { role: 'user', content: paras[i]! },
    { role: 'assistant', content: `${paras[(i + 1) % paras.length]!}\n\n${paras[(i + 2) % paras.length]!}` },
  ], false, special));
}

/** Wall time (s) of the first pass over every text, and the best of `rounds` more. */
function times(tok: TextTokenizer, texts: string[], rounds: number): { first: number; best: number } {
  const t0 = performance.now();
  for (const t of texts) tok.encode(t);
  const first = (performance.now() - t0) / 1000;
  let best = Infinity;
  for (let k = 0; k < rounds; k += 1) {
    const t0 = performance.now();
    for (const t of texts) tok.encode(t);
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return { first, best };
}

/** Compares both implementations on `texts` with the tokenizer in `dir`. */
export function tokenizeBench(root: string, work: string, name: string, dir: string, texts: string[]): TokenizeFigures {
  const json = (f: string, optional = false) => { try { return JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Record<string, unknown>; } catch (e) { if (optional) return {}; throw e; } };
  const tok = new TextTokenizer({ tokenizerJson: json('tokenizer.json'), tokenizerConfig: json('tokenizer_config.json', true) });
  const job = path.join(work, `tok-${name}.json`);
  const res = path.join(work, `tok-${name}.out.json`);
  writeFileSync(job, JSON.stringify({ tokenizer: path.join(dir, 'tokenizer.json'), texts }));
  execFileSync(path.join(root, '.venv', 'bin', 'python'), [path.join(root, 'bench', 'datasetPreview_rust.py'), job, res], { stdio: 'inherit' });
  const rust = JSON.parse(readFileSync(res, 'utf8')) as { seconds: number; first_seconds: number; ids: number[][]; offsets: Array<Array<[number, number]>> };
  const { first, best } = times(tok, texts, 5);
  let idMismatch = 0;
  let offsetMismatch = 0;
  texts.forEach((t, i) => {
    const e = tok.encode(t);
    if (JSON.stringify(e.ids) !== JSON.stringify(rust.ids[i])) idMismatch += 1;
    else if (JSON.stringify(e.offsets) !== JSON.stringify(rust.offsets[i])) offsetMismatch += 1;
  });
  const chars = texts.reduce((n, t) => n + t.length, 0);
  return {
    ts_seconds: +best.toFixed(4), rust_seconds: +rust.seconds.toFixed(4), ts_over_rust: +(rust.seconds / best).toFixed(3),
    ts_first_seconds: +first.toFixed(4), rust_first_seconds: +rust.first_seconds.toFixed(4),
    encoder: typeof tok.fast === 'string' ? `@huggingface/tokenizers (${tok.fast})` : 'bpeEncoder',
    chars, texts: texts.length, id_mismatches: idMismatch, offset_mismatches: offsetMismatch,
  };
}

/** Every tokenizer of TOKENIZERS under `shared`/tokenizers, on each set of texts (`suffix` names the set). */
export function tokenizeAll(root: string, work: string, shared: string, sets: Array<[suffix: string, texts: string[]]>): Record<string, TokenizeFigures> {
  const out: Record<string, TokenizeFigures> = {};
  for (const [suffix, texts] of sets) {
    for (const [name, folder] of Object.entries(TOKENIZERS)) out[`${name}${suffix}`] = tokenizeBench(root, work, `${name}${suffix.replace(/\W/g, '')}`, path.join(shared, 'tokenizers', folder), texts);
  }
  return out;
}
