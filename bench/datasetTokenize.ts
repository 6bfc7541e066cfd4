/**
 * The tokenization part of the dataset-preview benchmark alone (bench/datasetPreview.ts runs the
 * generated conversations too, after the 1 GB file), on the generated conversations and on
 * conversations of this repository's documentation (prose and code, "(prose)"):
 * `ts_over_rust_tokenize` (the lowest ratio) and the per-tokenizer figures, written into
 * bench/results/dataset-preview.json (the other figures of that file are kept) and .md.
 *
 *   npx tsx bench/datasetTokenize.ts [--texts 500]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { proseTexts, renderedTexts, tokenizeAll } from './datasetTokenizeParts';

const root = path.resolve(__dirname, '..');
const work = path.join(root, 'bench', 'work');
const builtin = path.join(root, 'python-backend', 'src', 'qlora_studio', 'data', 'builtin_templates');
const shared = process.env['QLORA_SHARED_DATA'] ?? path.resolve(root, '..', '..', 'shared', 'data');
const { values: args } = parseArgs({ options: { texts: { type: 'string', default: '500' } } });

function main(): void {
  mkdirSync(work, { recursive: true });
  const loadBefore = os.loadavg().map((x) => +x.toFixed(2));
  const tokenize = tokenizeAll(root, work, shared, [['', renderedTexts(builtin, Number(args.texts))], [' (prose)', proseTexts(root, builtin, Number(args.texts))]]);
  const file = path.join(root, 'bench', 'results', 'dataset-preview.json');
  const prior = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  const result = {
    ...prior,
    ts_over_rust_tokenize: Math.min(...Object.values(tokenize).map((t) => t.ts_over_rust)),
    tokenize,
    tokenize_run: {
      command: `npx tsx bench/datasetTokenize.ts --texts ${args.texts}`,
      date: new Date().toISOString(),
      machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, load_avg_at_start: loadBefore, load_avg_at_end: os.loadavg().map((x) => +x.toFixed(2)) },
    },
  };
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  const md = path.join(root, 'bench', 'results', 'dataset-preview.md');
  const rows = Object.entries(tokenize).map(([n, t]) => `| ${n} | ${t.encoder} | ${t.ts_seconds} | ${t.rust_seconds} | ${t.ts_over_rust} | ${t.ts_first_seconds} / ${t.rust_first_seconds} | ${t.id_mismatches} | ${t.offset_mismatches} |`);
  const section = ['## Tokenization', '', `\`${result.tokenize_run.command}\` — ${result.tokenize_run.date}; load average ${JSON.stringify(loadBefore)} → ${JSON.stringify(result.tokenize_run.machine.load_avg_at_end)}`, '',
    `ts_over_rust_tokenize = ${result.ts_over_rust_tokenize} (target ≥ 0.5)`, '',
    '| tokenizer | TypeScript encoder | TypeScript s (best) | Rust s (best) | TS/Rust throughput | first pass s, TS / Rust | id mismatches | offset mismatches |', '|---|---|---|---|---|---|---|---|', ...rows, ''].join('\n');
  // The full run's summary row and tokenizer table give way to this run's figures.
  const old = (existsSync(md) ? readFileSync(md, 'utf8') : '# Dataset preview benchmark\n')
    .replace(/\n## Tokenization\n[\s\S]*$/, '\n')
    .replace(/^\| ts_over_rust_tokenize \| [^|]* \|/m, `| ts_over_rust_tokenize | ${result.ts_over_rust_tokenize} (see Tokenization) |`)
    .replace(/^\| tokenizer \| TypeScript s \|[^\n]*\n(?:\|[^\n]*\n)*/m, '');
  writeFileSync(md, `${old.trimEnd()}\n\n${section}`);
  console.log(JSON.stringify({ ts_over_rust_tokenize: result.ts_over_rust_tokenize, tokenize }, null, 2));
}

main();
