/**
 * No text crashes the recipe language server: hostile YAML (alias bombs, deep nesting, a 10 MB
 * file, binary junk, tabs, duplicate keys, half-typed lines) and 1,000 seeded random mutations of
 * the fixture recipes each get diagnostics, and completion and hover keep answering.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { serverForTests } from './lspWorkspace';
import { rng } from '../seededRandom';

const FIXTURES = resolve(__dirname, '../fixtures/recipes');
const server = serverForTests();

const level = (name: string, n: number): string => `${name}: &${name} [${Array.from({ length: 9 }, () => (n ? `*l${n - 1}` : '"lol"')).join(', ')}]`;
const HOSTILE: Record<string, string> = {
  'alias bomb': Array.from({ length: 9 }, (_, n) => level(`l${n}`, n)).join('\n') + '\nbase_model: *l8\n',
  'deep flow nesting': `base_model: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n`,
  'deep block nesting': Array.from({ length: 2_000 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n'),
  '10 MB file': `base_model: x\ndata:\n  train: t.jsonl\n${'# padding line of a huge file\n'.repeat(350_000)}`,
  'binary junk': Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 2654435761) % 256)).toString('latin1'),
  'tabs': 'base_model: x\ndata:\n\ttrain: t.jsonl\n',
  'duplicate keys': 'base_model: x\nbase_model: y\ndata: {train: a, train: b}\n',
  'half-typed': 'base_model: x\ndata:\n  train: "t.jso\nlora:\n  r: 1',
  'self alias': 'a: &a\n  b: *a\n',
  'unknown tag': 'base_model: !!python/object x\n',
};

for (const [name, text] of Object.entries(HOSTILE)) {
  test(`hostile input (${name}) gets diagnostics within seconds and the server keeps answering`, async () => {
    const uri = server.ws.uri(`${name.replace(/\W/g, '-')}.qlora.yaml`);
    const t0 = Date.now();
    const diags = await server.lsp.open(uri, text);
    // generous: the unit tier runs test files in parallel on a shared machine; alone each takes < 0.6 s
    assert.ok(Date.now() - t0 < 5_000, `took ${Date.now() - t0} ms`);
    assert.ok(diags.length >= 1, 'at least one diagnostic');
    assert.ok(diags.every((d) => d.message.length > 10 && d.range.start.line >= 0));
    await server.lsp.completion(uri, 1, 3);
    await server.lsp.hover(uri, 0, 1);
    await server.lsp.codeLens(uri);
    assert.equal(server.lsp.exited, undefined);
  });
}


const PIECES = ['\t', ':', ': ', '- ', '&a ', '*a', '[', ']', '{', '}', '"', "'", '#', '\n', '  ', '\u0000', '\uFFFE', '—', '1e400', '-1', 'null', '<<: *a', '---\n', '? ', '|', '>', '!!binary ', 'é', '\r\n'];

function mutate(text: string, r: () => number): string {
  let out = text;
  const ops = 1 + Math.floor(r() * 4);
  for (let k = 0; k < ops; k++) {
    const at = Math.floor(r() * (out.length + 1));
    const lines = out.split('\n');
    switch (Math.floor(r() * 6)) {
      case 0: out = out.slice(0, at) + out.slice(at + 1 + Math.floor(r() * 8)); break;
      case 1: out = out.slice(0, at) + PIECES[Math.floor(r() * PIECES.length)] + out.slice(at); break;
      case 2: { const i = Math.floor(r() * lines.length); lines.splice(i, 0, lines[i] ?? ''); out = lines.join('\n'); break; }
      case 3: { const i = Math.floor(r() * lines.length); const j = Math.floor(r() * lines.length); [lines[i], lines[j]] = [lines[j] ?? '', lines[i] ?? '']; out = lines.join('\n'); break; }
      case 4: out = out.slice(0, at); break;
      default: out = out.slice(0, at) + String.fromCharCode(Math.floor(r() * 0x3000)) + out.slice(at); break;
    }
  }
  return out;
}

test('1,000 mutated recipes: every one gets an answer, the server never dies (< 60 s)', { timeout: 60_000 }, async () => {
  const seeds = ['valid', 'invalid'].flatMap((d) => readdirSync(resolve(FIXTURES, d)).filter((f) => f.endsWith('.qlora.yaml')).map((f) => readFileSync(resolve(FIXTURES, d, f), 'utf8')));
  const r = rng(20260101);
  const uri = server.ws.uri('mutant.qlora.yaml');
  const t0 = Date.now();
  for (let n = 0; n < 1_000; n++) {
    const text = mutate(seeds[n % seeds.length] ?? '', r);
    const diags = await server.lsp.open(uri, text);
    assert.ok(Array.isArray(diags));
    const lines = text.split('\n');
    const line = Math.floor(r() * lines.length);
    const ch = Math.floor(r() * ((lines[line] ?? '').length + 1));
    if (n % 2 === 0) await server.lsp.completion(uri, line, ch);
    else await server.lsp.hover(uri, line, ch);
    if (n % 50 === 0) await server.lsp.codeActions(uri, diags);
  }
  assert.equal(server.lsp.exited, undefined, server.lsp.stderr);
  assert.doesNotMatch(server.lsp.stderr, /failed:|uncaught/, 'no handler threw');
  assert.ok(Date.now() - t0 < 60_000);
  const ok = await server.lsp.open(uri, 'base_model: x/y\ndata:\n  train: hub/dataset\n');
  assert.deepEqual(ok, [], 'a valid recipe is clean again');
});
