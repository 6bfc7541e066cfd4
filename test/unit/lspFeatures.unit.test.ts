/**
 * The recipe language server, driven as a separate process over LSP: completion at many positions
 * of the fixture recipes, hover on every key, and the memory CodeLens.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { uriOf } from './lspHarness';
import { serverForTests } from './lspWorkspace';

const VALID = resolve(__dirname, '../fixtures/recipes/valid');
const server = serverForTests();

const labels = async (uri: string, line: number, ch: number): Promise<string[]> => (await server.lsp.completion(uri, line, ch)).map((i) => i.label);
const ENUMS = /^\s*(quant_type|compute_dtype|quant_storage_dtype|bias|format|train_on|scheduler|optimizer|packing|double_quant|skip_bad_rows|gradient_checkpointing|trust_remote_code):\s*(\w+)/;

test('every key of every valid fixture is offered at its own position, and enum values at theirs (30+ positions)', async () => {
  let positions = 0;
  for (const name of readdirSync(VALID).filter((f) => f.endsWith('.qlora.yaml'))) {
    const uri = uriOf(`test/fixtures/recipes/valid/${name}`);
    const text = readFileSync(resolve(VALID, name), 'utf8');
    await server.lsp.open(uri, text);
    for (const [n, line] of text.split('\n').entries()) {
      const key = /^(\s*)([a-z_]+):/.exec(line);
      if (!key) continue;
      const col = (key[1] ?? '').length + 1;
      assert.ok((await labels(uri, n, col)).includes(key[2] ?? ''), `${name}:${n + 1} key ${key[2]}`);
      positions++;
      const e = ENUMS.exec(line);
      if (e) {
        const got = await labels(uri, n, line.indexOf(':') + 2);
        assert.ok(got.includes(e[2] ?? ''), `${name}:${n + 1} value ${e[2]} in ${got.join(',')}`);
        positions++;
      }
    }
  }
  assert.ok(positions >= 30, `only ${positions} positions`);
});

test('a blank line in a section offers the keys not yet written, with docs and defaults', async () => {
  const uri = server.ws.uri('sections.qlora.yaml');
  await server.lsp.open(uri, 'base_model: x\nlora:\n  r: 16\n  \ndata:\n  train: t.jsonl\n');
  const items = await server.lsp.completion(uri, 3, 2);
  const names = items.map((i) => i.label);
  assert.ok(names.includes('alpha') && names.includes('dropout'));
  assert.ok(!names.includes('r'), 'r is written already');
  const alpha = items.find((i) => i.label === 'alpha');
  assert.match(JSON.stringify(alpha?.documentation), /alpha \/ r/);
  assert.match(String((alpha?.textEdit as { newText: string }).newText), /^alpha: \$\{1:32\}$/);
  const top = await server.lsp.completion(uri, 6, 0);
  const training = top.find((i) => i.label === 'training');
  assert.ok(training, 'top level offers the training section');
  assert.match((training.textEdit as { newText: string }).newText, /^training:\n {2}epochs: \$\{\d+:1\}\n[\s\S]*lr: \$\{\d+:0\.0002\}/);
});

test('values come from the machine: local models, data files, templates, columns, target modules', async () => {
  const uri = server.ws.uri('values.qlora.yaml');
  const text = 'base_model: \ndata:\n  train: data/instr.jsonl\n  format: instruction\n  chat_template: \n  fields:\n    instruction: \nlora:\n  target_modules:\n    - \n';
  await server.lsp.open(uri, text);
  assert.ok((await labels(uri, 0, 12)).includes('./models/llama-8b'));
  const files = await labels(uri, 2, 9);
  assert.ok(files.includes('data/instr.jsonl') && !files.some((f) => f.endsWith('config.json')), files.join(','));
  const tpl = await labels(uri, 4, 17);
  assert.ok(tpl.includes('chatml') && tpl.includes('tokenizer') && tpl.includes('templates/mine.jinja'), tpl.join(','));
  assert.deepEqual((await labels(uri, 6, 17)).sort(), ['answer', 'context', 'question']);
  const withModel = text.replace('base_model: ', 'base_model: ./models/llama-8b');
  await server.lsp.open(uri, withModel);
  const mods = await labels(uri, 9, 6);
  assert.ok(mods.includes('q_proj') && mods.includes('down_proj'), mods.join(','));
  await server.lsp.open(uri, 'lora:\n  target_modules: \n');
  assert.ok((await labels(uri, 1, 18)).includes('all-linear'));
  const data = await labels(uri.replace('values', 'other'), 0, 0);
  assert.equal(data.length, 0, 'an unopened document gets nothing');
});

test('hover on every key of the full fixture says what it does and its default; r and lr carry the playbook', async () => {
  const uri = uriOf('test/fixtures/recipes/valid/full.qlora.yaml');
  const text = readFileSync(resolve(VALID, 'full.qlora.yaml'), 'utf8');
  await server.lsp.open(uri, text);
  for (const [n, line] of text.split('\n').entries()) {
    const key = /^(\s*)([a-z_]+):/.exec(line);
    if (!key) continue;
    const h = await server.lsp.hover(uri, n, (key[1] ?? '').length + 1);
    assert.ok(h, `hover on line ${n + 1} (${key[2]})`);
    const value = (h.contents as { value: string }).value;
    assert.match(value, /Accepts: .* · Default: /, `line ${n + 1}`);
  }
  const at = (k: string): number => text.split('\n').findIndex((l) => l.trimStart().startsWith(`${k}:`));
  const r = (await server.lsp.hover(uri, at('r'), 3))!.contents as { value: string };
  assert.match(r.value, /8–16 light domain adaptation/);
  assert.match(r.value, /32–64 instruction tuning/);
  const lr = (await server.lsp.hover(uri, at('lr'), 3))!.contents as { value: string };
  assert.match(lr.value, /1e-4 to 3e-4/);
  const ck = (await server.lsp.hover(uri, at('gradient_checkpointing'), 3))!.contents as { value: string };
  assert.match(ck.value, /Cost: /);
  assert.equal(await server.lsp.hover(uri, at('lr'), 20), null, 'no hover on a value');
});

test('CodeLens and the training hover show the memory estimate of a local model', async () => {
  const uri = server.ws.uri('lens.qlora.yaml');
  await server.lsp.open(uri, 'base_model: ./models/llama-8b\ndata:\n  train: data/instr.jsonl\n  format: instruction\n  max_seq_len: 2048\ntraining:\n  micro_batch_size: 1\n  grad_accum: 8\n');
  const lens = await server.lsp.codeLens(uri);
  assert.match(lens[0]?.command?.title ?? '', /^≈ \d+\.\d GiB peak · 16,384 tokens\/step$/);
  const h = (await server.lsp.hover(uri, 5, 2))!.contents as { value: string };
  assert.match(h.value, /≈ \d+\.\d GiB peak/);
  assert.match(h.value, /loss \(chunked head\)/);
  await server.lsp.open(uri, 'base_model: org/not-cached\ndata:\n  train: data/instr.jsonl\n');
  assert.match((await server.lsp.codeLens(uri))[0]?.command?.title ?? '', /memory: unknown .* · 16,384 tokens\/step/);
});
