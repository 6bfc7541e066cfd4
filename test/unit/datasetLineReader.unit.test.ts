/**
 * The doctor's Buffer line reader splits exactly as readline does (`\n`, `\r\n`, a lone `\r`,
 * across chunk boundaries and inside multi-byte characters), the first-screen reader numbers lines
 * as the panel's line index does, and the duplicate table finds every repeat among many lines.
 */
import assert from 'node:assert/strict';
import { createReadStream, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as readline from 'node:readline';
import { describe, it } from 'node:test';
import { DigestSet } from '../../src/dataset/digestSet';
import { readFirstLines } from '../../src/dataset/firstScreen';
import { lineDigest } from '../../src/dataset/lineDigest';
import { LineIndex } from '../../src/dataset/lineIndex';
import { readLines } from '../../src/dataset/lineReader';
import { rng } from '../seededRandom';

const dir = mkdtempSync(join(tmpdir(), 'qlora-lines-'));
const PIECES = ['{"a":1}', 'x', '', ' ', '\n', '\r\n', '\r', '\r\r\n', '\n\n', 'é', '😄', '東京', '\ufeff', '"\\r"'];

function randomText(r: () => number): string {
  let s = '';
  const n = Math.floor(r() * 60);
  for (let i = 0; i < n; i += 1) s += PIECES[Math.floor(r() * PIECES.length)]!;
  return s;
}

async function viaReadline(file: string): Promise<string[]> {
  const rl = readline.createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  const out: string[] = [];
  for await (const line of rl) out.push(line);
  return out;
}

describe('Buffer line reader', () => {
  it('splits as readline does, whatever the chunk size', async () => {
    const r = rng(5);
    for (let k = 0; k < 150; k += 1) {
      const text = randomText(r);
      const file = join(dir, `t${k}.txt`);
      writeFileSync(file, text);
      const want = await viaReadline(file);
      for (const chunk of [1, 2, 3, 7, 64]) {
        const got: string[] = [];
        let bytes = 0;
        assert.equal(await readLines(file, (line, b) => { got.push(line); bytes += b; }, undefined, chunk), true);
        assert.deepEqual(got, want, `${JSON.stringify(text)} in chunks of ${chunk}`);
        assert.equal(bytes, Buffer.byteLength(text), 'every byte belongs to one line');
      }
    }
  });

  it('stops when aborted', async () => {
    const file = join(dir, 'long.txt');
    writeFileSync(file, 'line\n'.repeat(1000));
    const ac = new AbortController();
    let n = 0;
    const done = await readLines(file, () => { n += 1; if (n === 10) ac.abort(); }, ac.signal, 16);
    assert.equal(done, false);
    assert.ok(n < 1000);
  });
});

describe('first-screen reader', () => {
  it('numbers lines as the line index does', async () => {
    const r = rng(9);
    for (let k = 0; k < 60; k += 1) {
      const text = randomText(r);
      const file = join(dir, `f${k}.txt`);
      writeFileSync(file, text);
      const index = new LineIndex(file);
      await index.build();
      const fd = await import('node:fs').then((fs) => fs.promises.open(file, 'r'));
      const want: string[] = [];
      for (let i = 0; i < Math.min(index.lines, 5); i += 1) want.push(await index.read(i, fd));
      await fd.close();
      assert.deepEqual(await readFirstLines(file, 5, 3), want, JSON.stringify(text));
    }
  });
});

describe('duplicate table', () => {
  it('finds the first line of every repeat among 200k lines and nothing else', () => {
    const set = new DigestSet(16);
    const r = rng(3);
    const first = new Map<string, number>();
    for (let n = 1; n <= 200_000; n += 1) {
      const text = `row ${Math.floor(r() * 150_000)}`;
      const got = set.firstOrAdd(lineDigest(text), n);
      assert.equal(got, first.get(text));
      if (!first.has(text)) first.set(text, n);
    }
  });

  it('gives equal texts equal digests and tells close texts apart', () => {
    assert.equal(lineDigest('{"messages": []}'), lineDigest(`{"messages": ${'[]'}}`));
    const seen = new Set<number>();
    for (let i = 0; i < 50_000; i += 1) seen.add(lineDigest(`{"id":${i}}`));
    assert.equal(seen.size, 50_000);
    assert.notEqual(lineDigest('ab'), lineDigest('ba'));
    assert.notEqual(lineDigest(''), lineDigest('\u0000'));
    assert.ok(Number.isSafeInteger(lineDigest('x')) && lineDigest('x') < 2 ** 52);
  });
});
