/**
 * Dataset preview benchmark (CPU; not part of `npm test`):
 *  - ts_over_rust_tokenize: throughput of our TypeScript tokenization (TextTokenizer.encode: ids
 *    and offsets) over that of the Rust `tokenizers` on the same rendered conversations,
 *    single-threaded, per tokenizer (real GPT-2 byte-level BPE and Phi-3 SentencePiece-style BPE
 *    from the shared data); ids and offsets must be identical (mismatches are counted).
 *  - first_screen_ms: from nothing to the first screen of rows (FIRST_SCREEN_ROWS lines) of a
 *    1 GB, 1M-line JSONL as the panel host sends it before anything else: recipe + tokenizer
 *    loaded, only the file's first lines read, every row rendered, tokenized, masked and turned
 *    into panel rows (src/dataset/firstScreen.ts).
 *  - doctor_mb_per_s: the dataset doctor's streamed pass over the same file (capped by
 *    --doctor-seconds; the bytes checked are recorded), and peak_rss_mb of this process until then
 *    (before the tokenizer comparison loads its large vocabularies). The pass is single-threaded
 *    and CPU-bound, so on a shared machine its wall-clock rate follows the load: the CPU seconds it
 *    used and the rate per CPU second are recorded next to it (`doctor.cpu_seconds`, `doctor.mb_per_cpu_s`).
 * Writes bench/results/dataset-preview.json and .md. The 1 GB file lives in bench/work/ (ignored).
 *
 *   python examples/tiny/make_tiny.py && npx tsx bench/datasetPreview.ts [--lines 1000000] [--doctor-seconds 120]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { firstScreen } from '../src/dataset/firstScreen';
import { FIRST_SCREEN_ROWS } from '../src/dataset/previewProtocol';
import { loadSession } from '../src/dataset/session';
import { ChatTemplate } from '../src/dataset/template';
import { chatRow, generateJsonl, peakRssMb, rng, timedDoctor } from './datasetPreviewParts';
import { tokenizeBench as compareTokenizers } from './datasetTokenizeParts';

const root = path.resolve(__dirname, '..');
const work = path.join(root, 'bench', 'work');
const builtin = path.join(root, 'python-backend', 'src', 'qlora_studio', 'data', 'builtin_templates');
const shared = process.env['QLORA_SHARED_DATA'] ?? path.resolve(root, '..', '..', 'shared', 'data');
const { values: args } = parseArgs({ options: { lines: { type: 'string', default: '1000000' }, 'doctor-seconds': { type: 'string', default: '120' }, texts: { type: 'string', default: '2000' } } });

/** One tokenizer through both implementations (bench/datasetTokenizeParts.ts). */
function tokenizeBench(name: string, dir: string, texts: string[]) {
  return compareTokenizers(root, work, name, dir, texts);
}

async function main(): Promise<void> {
  mkdirSync(work, { recursive: true });
  const loadBefore = os.loadavg().map((x) => +x.toFixed(2));
  // The 1 GB file, previewed through the tiny example's recipe (its real tokenizer and template).
  const lines = Number(args.lines);
  const file = path.join(work, 'dataset-1g.jsonl');
  const tGen = performance.now();
  await generateJsonl(file, lines, 1000);
  const genS = (performance.now() - tGen) / 1000;
  const recipe = path.join(work, 'bench.qlora.yaml');
  writeFileSync(recipe, `base_model: ${path.join(root, 'examples', 'tiny', 'model')}\ndata:\n  train: ./dataset-1g.jsonl\n  chat_template: tokenizer\n  max_seq_len: 2048\n`);
  const t0 = performance.now();
  const session = loadSession(recipe, builtin);
  const rows = await firstScreen(file, session, FIRST_SCREEN_ROWS);
  const firstScreenMs = performance.now() - t0;
  const okRows = rows.filter((p) => p.ok).length;

  const { summary, findings, seconds: doctorS, cpuS: doctorCpuS } = await timedDoctor(file, session, Number(args['doctor-seconds']));
  const size = statSync(file).size;
  const peakRss = peakRssMb(); // before the tokenizer comparison, which loads large vocabularies
  // Tokenization: the same rendered conversations through both implementations.
  const r = rng(11);
  const chatml = new ChatTemplate(readFileSync(path.join(builtin, 'chatml.jinja'), 'utf8'), 'chatml');
  const special = { bos_token: '', eos_token: '<|endoftext|>', pad_token: '', unk_token: '' };
  const texts = Array.from({ length: Number(args.texts) }, () => chatml.render((JSON.parse(chatRow(r, 1000)) as { messages: Array<{ role: string; content: string }> }).messages, false, special));
  const tokenize = { gpt2: tokenizeBench('gpt2', path.join(shared, 'tokenizers', 'gpt2'), texts), 'phi-3-mini': tokenizeBench('phi3', path.join(shared, 'tokenizers', 'phi-3-mini'), texts) };


  const ratios = Object.values(tokenize).map((t) => t.ts_over_rust);
  const result = {
    first_screen_ms: +firstScreenMs.toFixed(1),
    doctor_mb_per_s: +(summary.bytes / 1e6 / doctorS).toFixed(2),
    peak_rss_mb: +peakRss.toFixed(1),
    ts_over_rust_tokenize: Math.min(...ratios),
    targets: { first_screen_ms: 300, doctor_mb_per_s: 50, peak_rss_mb: 300, ts_over_rust_tokenize: 0.5 },
    file: { path: path.relative(root, file), bytes: size, lines, generate_s: +genS.toFixed(1) },
    first_screen: { rows: rows.length, ok_rows: okRows },
    doctor: { bytes_checked: summary.bytes, lines_checked: summary.lines, seconds: +doctorS.toFixed(1), cpu_seconds: +doctorCpuS.toFixed(1), mb_per_cpu_s: +(summary.bytes / 1e6 / doctorCpuS).toFixed(2), load_avg_before: loadBefore, complete: !summary.cancelled, examples: summary.examples, bad_rows: summary.badRows, findings },
    tokenize,
    command: `npx tsx bench/datasetPreview.ts --lines ${lines} --doctor-seconds ${args['doctor-seconds']}`,
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, load_avg_at_end: os.loadavg().map((x) => +x.toFixed(2)) },
    versions: { node: process.version, '@huggingface/tokenizers': pkgVersion('@huggingface/tokenizers'), '@huggingface/jinja': pkgVersion('@huggingface/jinja'), tokenizers_py: execFileSync(path.join(root, '.venv', 'bin', 'python'), ['-c', 'import tokenizers; print(tokenizers.__version__)']).toString().trim() },
  };
  const out = path.join(root, 'bench', 'results');
  writeFileSync(path.join(out, 'dataset-preview.json'), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(path.join(out, 'dataset-preview.md'), markdown(result));
  console.log(JSON.stringify(result, null, 2));
}

function pkgVersion(name: string): string {
  return (JSON.parse(readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

function markdown(r: Record<string, unknown> & { targets: Record<string, number>; tokenize: Record<string, Record<string, number | string>>; doctor: Record<string, unknown> }): string {
  const row = (k: string, op: string) => `| ${k} | ${String(r[k])} | ${op} ${r.targets[k]} |`;
  const tok = Object.entries(r.tokenize).map(([n, t]) => `| ${n} | ${t['ts_seconds']} | ${t['rust_seconds']} | ${t['ts_over_rust']} | ${t['id_mismatches']} | ${t['offset_mismatches']} |`);
  return [
    '# Dataset preview benchmark', '', `\`${String(r['command'])}\` — ${String(r['date'])}`, '',
    '| figure | measured | target |', '|---|---|---|',
    row('first_screen_ms', '<'), row('doctor_mb_per_s', '≥'), row('peak_rss_mb', '<'), row('ts_over_rust_tokenize', '≥'), '',
    `Doctor: ${JSON.stringify(r.doctor)}`, '',
    '| tokenizer | TypeScript s | Rust s | TS/Rust throughput | id mismatches | offset mismatches |', '|---|---|---|---|---|---|', ...tok, '',
    `Machine: ${JSON.stringify(r['machine'])}; versions: ${JSON.stringify(r['versions'])}`, '',
  ].join('\n');
}

void main();
