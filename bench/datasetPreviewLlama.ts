/**
 * Second doctor figure of the dataset preview benchmark (CPU; not part of `npm test`):
 * `doctor_mb_per_s_llama31`, the dataset doctor's streamed pass over the same generated file as
 * `doctor_mb_per_s`, through a recipe whose chat template is the real Llama-3.1 one
 * (test/fixtures/chat-templates/corpus/llama-3.1.jinja: it trims every content and reads the
 * contents of the system message, so it exercises transformed slots and guards of the render
 * specialisation). The tokenizer is the tiny example's with the Llama-3 special tokens added (ids
 * after its vocabulary), eos/pad `<|eot_id|>`, bos `<|begin_of_text|>`, as in the masking corpus.
 * Merges the figure, the load average and the pass's details into bench/results/dataset-preview.json
 * and rewrites the section of the .md between its markers.
 *
 *   python examples/tiny/make_tiny.py && npx tsx bench/datasetPreviewLlama.ts [--lines 1000000] [--doctor-seconds 120] [--before-mb-per-s X]
 *
 * `--before-mb-per-s` records a figure measured with an earlier build (same command, that build's
 * sources) next to this one, for comparison.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadSession } from '../src/dataset/session';
import { generateJsonl, timedDoctor } from './datasetPreviewParts';

const root = path.resolve(__dirname, '..');
const work = path.join(root, 'bench', 'work');
const builtin = path.join(root, 'python-backend', 'src', 'qlora_studio', 'data', 'builtin_templates');
const { values: args } = parseArgs({ options: { lines: { type: 'string', default: '1000000' }, 'doctor-seconds': { type: 'string', default: '120' }, 'before-mb-per-s': { type: 'string' } } });
const SPECIALS = ['<|begin_of_text|>', '<|eot_id|>', '<|end_header_id|>', '<|eom_id|>', '<|python_tag|>', '<|start_header_id|>'];
const BEGIN = '<!-- llama31 -->';
const END = '<!-- /llama31 -->';

/** A tokenizer folder: the tiny example's tokenizer, the Llama-3 specials added, the Llama-3.1 template. */
function llamaModel(): string {
  const tiny = path.join(root, 'examples', 'tiny', 'model');
  const tok = JSON.parse(readFileSync(path.join(tiny, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> }; added_tokens: Array<{ id: number }> };
  let next = Math.max(...Object.values(tok.model.vocab), ...tok.added_tokens.map((t) => t.id)) + 1;
  for (const content of SPECIALS) tok.added_tokens.push({ id: next++, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true } as { id: number });
  const dir = path.join(work, 'llama31-model');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tok));
  const template = readFileSync(path.join(root, 'test', 'fixtures', 'chat-templates', 'corpus', 'llama-3.1.jinja'), 'utf8');
  writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>', pad_token: '<|eot_id|>', chat_template: template }));
  return dir;
}

async function main(): Promise<void> {
  mkdirSync(work, { recursive: true });
  const lines = Number(args.lines);
  const file = path.join(work, 'dataset-1g.jsonl');
  await generateJsonl(file, lines, 1000);
  const recipe = path.join(work, 'bench-llama31.qlora.yaml');
  writeFileSync(recipe, `base_model: ${llamaModel()}\ndata:\n  train: ./dataset-1g.jsonl\n  chat_template: tokenizer\n  max_seq_len: 2048\n`);
  const session = loadSession(recipe, builtin);
  const loadBefore = os.loadavg().map((x) => +x.toFixed(2));
  const { summary, findings, seconds, cpuS, mbPerS } = await timedDoctor(file, session, Number(args['doctor-seconds']));
  const before = args['before-mb-per-s'] === undefined ? undefined : Number(args['before-mb-per-s']);
  const detail = {
    template: 'test/fixtures/chat-templates/corpus/llama-3.1.jinja',
    bytes_checked: summary.bytes, lines_checked: summary.lines, file_bytes: statSync(file).size, seconds: +seconds.toFixed(1),
    cpu_seconds: +cpuS.toFixed(1), mb_per_cpu_s: +(summary.bytes / 1e6 / cpuS).toFixed(2), complete: !summary.cancelled,
    examples: summary.examples, bad_rows: summary.badRows, findings, load_avg_before: loadBefore, load_avg_at_end: os.loadavg().map((x) => +x.toFixed(2)),
    ...(before === undefined ? {} : { before_mb_per_s: before }),
    command: `npx tsx bench/datasetPreviewLlama.ts --lines ${lines} --doctor-seconds ${args['doctor-seconds']}${before === undefined ? '' : ` --before-mb-per-s ${before}`}`,
    date: new Date().toISOString(),
  };
  const out = path.join(root, 'bench', 'results');
  const jsonFile = path.join(out, 'dataset-preview.json');
  const result = JSON.parse(readFileSync(jsonFile, 'utf8')) as Record<string, unknown>;
  result['doctor_mb_per_s_llama31'] = mbPerS;
  result['doctor_llama31'] = detail;
  writeFileSync(jsonFile, `${JSON.stringify(result, null, 2)}\n`);
  const mdFile = path.join(out, 'dataset-preview.md');
  const md = readFileSync(mdFile, 'utf8');
  const section = [BEGIN, '## Doctor through the Llama-3.1 template', '',
    `\`doctor_mb_per_s_llama31\`: **${mbPerS} MB/s**${before === undefined ? '' : ` (before transformed slots and guards: ${before} MB/s)`}, load average ${loadBefore.join(' / ')} before the pass.`, '',
    `Details: ${JSON.stringify(detail)}`, END].join('\n');
  const at = md.indexOf(BEGIN);
  writeFileSync(mdFile, at >= 0 ? md.slice(0, at) + section + md.slice(md.indexOf(END) + END.length) : `${md.trimEnd()}\n\n${section}\n`);
  console.log(JSON.stringify({ doctor_mb_per_s_llama31: mbPerS, ...detail }, null, 2));
}

void main();
