/**
 * The TypeScript memory estimate equals Python's on shared vectors
 * (test/fixtures/recipes/estimates.json, written by scripts/gen_estimate_vectors.py).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { estimateMemory, type MemoryEstimate } from '../../src/recipe/estimate';
import { parseRecipeText } from '../../src/recipe/validate';

interface Vector {
  recipe: string;
  config: string;
  text: string;
  model_config: Record<string, unknown>;
  expected: MemoryEstimate;
}

const vectors = (JSON.parse(readFileSync(resolve(__dirname, '../fixtures/recipes/estimates.json'), 'utf8')) as { cases: Vector[] }).cases;

function recipeOf(text: string) {
  const { recipe, issues } = parseRecipeText(text);
  assert.ok(recipe, JSON.stringify(issues));
  return recipe;
}

test('the shared vectors cover several configs and recipes', () => {
  assert.ok(vectors.length >= 24);
  assert.ok(vectors.some((v) => v.expected.total_gib === null), 'a config that cannot be estimated');
});

for (const v of vectors) {
  test(`estimate ${v.recipe} on ${v.config} equals Python's`, () => {
    const got = estimateMemory(recipeOf(v.text), v.model_config);
    assert.deepEqual(Object.keys(got).sort(), Object.keys(v.expected).sort());
    for (const [key, want] of Object.entries(v.expected)) {
      const have = got[key as keyof MemoryEstimate];
      if (typeof want === 'number' && typeof have === 'number') {
        assert.ok(Math.abs(have - want) <= 1e-12 * Math.max(1, Math.abs(want)), `${key}: ${have} != ${want}`);
      } else {
        assert.deepEqual(have, want, key);
      }
    }
  });
}

test('without a config the figures are null but tokens per step is known', () => {
  const est = estimateMemory(recipeOf('base_model: m\ndata: {train: t}\ntraining: {micro_batch_size: 2, grad_accum: 4}\n'), undefined);
  assert.equal(est.total_gib, null);
  assert.equal(est.tokens_per_step, 2 * 2048 * 4);
  assert.match(est.notes[0] ?? '', /config/);
});

test('gradient checkpointing lowers the estimate, rank raises it', () => {
  const config = vectors.find((v) => v.config === 'llama3-8b')?.model_config;
  const total = (tail: string): number => estimateMemory(recipeOf(`base_model: m\ndata: {train: t}\n${tail}`), config).total_gib ?? NaN;
  assert.ok(total('training: {gradient_checkpointing: true}\n') < total('training: {gradient_checkpointing: false}\n'));
  assert.ok(total('lora: {r: 8}\n') < total('lora: {r: 128}\n'));
});
