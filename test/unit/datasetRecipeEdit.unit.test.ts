/**
 * The "Set data.max_seq_len" quick fix: the value fits the example, and the edit touches only the
 * key's value (or adds the key under `data:`), leaving the rest of the recipe as written.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { maxSeqLenEdit, suggestedMaxSeqLen } from '../../src/dataset/recipeEdit';
import { loadSession } from '../../src/dataset/session';

const root = join(__dirname, '..', '..');
const dir = join(root, 'test', 'fixtures', 'dataset-doctor');

function apply(text: string, e: NonNullable<ReturnType<typeof maxSeqLenEdit>>): string {
  const lines = text.split('\n');
  const l = lines[e.line] ?? '';
  lines[e.line] = l.slice(0, e.start) + e.insert + l.slice(e.end);
  return lines.join('\n');
}

describe('max_seq_len quick fix', () => {
  it('suggests the power of two that fits the truncated example', () => {
    const session = loadSession(join(dir, 'doctor.qlora.yaml'), join(root, 'python-backend', 'src', 'qlora_studio', 'data', 'builtin_templates'));
    const line11 = readFileSync(join(dir, 'doctor.jsonl'), 'utf8').split('\n')[10]!;
    const n = session.fullLength(line11)!;
    assert.ok(n > 64, `the seeded example is longer than max_seq_len 64 (${n})`);
    const value = suggestedMaxSeqLen(n);
    assert.ok(value >= n && value / 2 < n);
    assert.equal(session.fullLength('{bad'), undefined);
  });

  it('replaces only the value of an existing key', () => {
    const text = readFileSync(join(dir, 'doctor.qlora.yaml'), 'utf8');
    const out = apply(text, maxSeqLenEdit(text, 256)!);
    assert.equal(out, text.replace('max_seq_len: 64', 'max_seq_len: 256'));
  });

  it('adds the key under data: when it is missing, with the block indentation', () => {
    const text = 'base_model: ./m\ndata:\n    train: ./d.jsonl\ntraining:\n  max_steps: 3\n';
    assert.equal(apply(text, maxSeqLenEdit(text, 512)!), 'base_model: ./m\ndata:\n    max_seq_len: 512\n    train: ./d.jsonl\ntraining:\n  max_steps: 3\n');
    assert.equal(maxSeqLenEdit('data: {train: x}\n', 512), undefined);
  });
});
