/**
 * Diags and quick fixes of the recipe language server, driven over LSP: every invalid
 * fixture's issues at their lines with a range on the offending text, cross-field and disk checks,
 * memory above the backend's GPU, and quick fixes applied until the problem is gone.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { applyEdits, uriOf, type Diag } from './lspHarness';
import { serverForTests } from './lspWorkspace';

const INVALID = resolve(__dirname, '../fixtures/recipes/invalid');
const server = serverForTests();

interface Expected {
  path: string;
  line: number;
  message?: string;
}

for (const name of readdirSync(INVALID).filter((f) => f.endsWith('.qlora.yaml'))) {
  test(`invalid fixture ${name}: each expected issue is a diagnostic on its line with a range on the text`, async () => {
    const text = readFileSync(resolve(INVALID, name), 'utf8');
    const expected = JSON.parse(readFileSync(resolve(INVALID, name.replace('.qlora.yaml', '.expected.json')), 'utf8')) as Expected[];
    const diags = await server.lsp.open(uriOf(`test/fixtures/recipes/invalid/${name}`), text);
    const lines = text.split('\n');
    for (const e of expected) {
      const d = diags.find((x) => x.range.start.line === e.line - 1 && x.message.endsWith(e.message ?? ''));
      assert.ok(d, `${e.line}: ${e.message ?? '(any)'}\n got ${JSON.stringify(diags.map((x) => [x.range.start.line + 1, x.message]))}`);
      const line = lines[e.line - 1] ?? '';
      const covered = line.slice(d.range.start.character, d.range.end.character);
      if (line.trim()) assert.ok(covered.trim().length > 0, `range covers text on line ${e.line}: "${line}"`);
      assert.equal(d.range.start.line, d.range.end.line);
    }
  });
}

const fix = async (uri: string, text: string, d: Diag, title: RegExp): Promise<string> => {
  const actions = await server.lsp.codeActions(uri, [d]);
  const a = actions.find((x) => title.test(x.title));
  assert.ok(a, `a fix ${title} among ${actions.map((x) => x.title).join(' | ')}`);
  return applyEdits(text, a.edit?.changes?.[uri] ?? []);
};

test('quick fixes: did-you-mean key, enum value, missing section, recommended value', async () => {
  const uri = server.ws.uri('fix.qlora.yaml');
  let text = 'base_model: ./models/llama-8b\ntrainig:\n  scheduler: cosin\n  lr: 0.05\n';
  let diags = await server.lsp.open(uri, text);
  const key = diags.find((d) => d.code === 'unknown-key');
  assert.ok(key);
  assert.equal(text.split('\n')[1]!.slice(key.range.start.character, key.range.end.character), 'trainig');
  text = await fix(uri, text, key, /Change to 'training'/);
  diags = await server.lsp.open(uri, text);
  assert.ok(!diags.some((d) => d.code === 'unknown-key'), JSON.stringify(diags));
  const enumDiag = diags.find((d) => d.message.startsWith('training.scheduler'));
  assert.ok(enumDiag);
  text = await fix(uri, text, enumDiag, /Change to 'cosine'/);
  diags = await server.lsp.open(uri, text);
  const missing = diags.find((d) => d.code === 'missing');
  assert.ok(missing, JSON.stringify(diags));
  text = await fix(uri, text, missing, /Add data/);
  assert.match(text, /\ndata:\n {2}train: data\/train\.jsonl\n$/);
  text = text.replace('data/train.jsonl', 'data/instr.jsonl') + '  format: instruction\n';
  diags = await server.lsp.open(uri, text);
  const lr = diags.find((d) => d.code === 'hint' && d.message.startsWith('lr'));
  assert.ok(lr, JSON.stringify(diags));
  text = await fix(uri, text, lr, /Set lr: 2.0e-4/);
  assert.match(text, /\n {2}lr: 2\.0e-4\n/);
  diags = await server.lsp.open(uri, text);
  assert.deepEqual(diags.map((d) => d.message), []);
});

test('cross-field checks: text data with train_on assistant, eval interval without eval data, max_seq_len past the model', async () => {
  const uri = server.ws.uri('cross.qlora.yaml');
  const text = 'base_model: ./models/llama-8b\ndata:\n  train: data/instr.jsonl\n  format: text\n  max_seq_len: 16384\ntraining:\n  eval_every: 10\nlora:\n  r: 64\n  alpha: 4\n';
  const diags = await server.lsp.open(uri, text);
  const by = (re: RegExp): Diag | undefined => diags.find((d) => re.test(d.message));
  assert.equal(by(/format: text has none/)?.range.start.line, 3);
  assert.equal(by(/no eval data/)?.range.start.line, 6);
  assert.equal(by(/max_position_embeddings \(8192\)/)?.range.start.line, 4);
  assert.equal(by(/alpha \/ r = 0.0625/)?.range.start.line, 9);
  const fixed = await fix(uri, text, by(/format: text has none/)!, /Set train_on: all/);
  assert.match(fixed, /\n {2}train_on: all\n/);
  assert.ok(!(await server.lsp.open(uri, fixed)).some((d) => /format: text has none/.test(d.message)));
});

test('dataset and template files that are missing or empty are errors on their value', async () => {
  const uri = server.ws.uri('files.qlora.yaml');
  const text = 'base_model: x/y\ndata:\n  train: data/nope.jsonl  # typo\n  eval: data/empty.jsonl\n  chat_template: templates/gone.jinja\n';
  const diags = await server.lsp.open(uri, text);
  const train = diags.find((d) => d.code === 'dataset' && d.range.start.line === 2);
  assert.ok(train && /file not found: .*nope\.jsonl/.test(train.message));
  assert.equal(text.split('\n')[2]!.slice(train.range.start.character, train.range.end.character), 'data/nope.jsonl');
  assert.ok(diags.some((d) => d.range.start.line === 3 && /is empty/.test(d.message)));
  assert.ok(diags.some((d) => d.range.start.line === 4 && /gone\.jinja/.test(d.message)));
  assert.ok(!(await server.lsp.open(uri, text.replace('nope', 'instr').replace('empty', 'instr').replace('gone', 'mine'))).some((d) => d.code === 'dataset'));
});

test('estimated peak above the backend GPU memory is an error with fixes that lower it', async () => {
  const uri = server.ws.uri('memory.qlora.yaml');
  let text = 'base_model: ./models/llama-8b\ndata:\n  train: data/instr.jsonl\n  format: instruction\n  max_seq_len: 8192\ntraining:\n  micro_batch_size: 8\n  gradient_checkpointing: false\n';
  assert.ok(!(await server.lsp.open(uri, text)).some((d) => d.code === 'memory'), 'no GPU known: no memory error');
  await server.lsp.notify('qloraStudio/backendDevices', { devices: [{ type: 'cuda', name: 'Small GPU', memory_total_mb: 16_384 }] });
  text += '\n';
  let diags = await server.lsp.open(uri, text);
  const mem = diags.find((d) => d.code === 'memory');
  assert.ok(mem, JSON.stringify(diags));
  assert.match(mem.message, /above the backend's GPU memory \(16\.0 GiB\)/);
  assert.equal(mem.range.start.line, 6);
  text = await fix(uri, text, mem, /Enable gradient_checkpointing/);
  text = await fix(uri, text, (await server.lsp.open(uri, text)).find((d) => d.code === 'memory')!, /Lower micro_batch_size to 4/);
  for (let i = 0; i < 3; i++) {
    diags = await server.lsp.open(uri, text);
    const still = diags.find((d) => d.code === 'memory');
    if (!still) break;
    text = await fix(uri, text, still, /Lower micro_batch_size/);
  }
  assert.ok(!diags.some((d) => d.code === 'memory'), text);
  await server.lsp.notify('qloraStudio/backendDevices', { devices: [] });
});

test('a half-typed key is one error on its own line, not a file full of echoes', async () => {
  const uri = server.ws.uri('typing.qlora.yaml');
  const diags = await server.lsp.open(uri, '# comment\ntr\nbase_model: x\ndata:\n  train: t.jsonl\nlora:\n  r: 8\n');
  assert.equal(diags.length, 1, JSON.stringify(diags));
  assert.equal(diags[0]?.range.start.line, 1);
  assert.match(diags[0]?.message ?? '', /"tr" has no ":"/);
});
