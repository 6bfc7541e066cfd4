/**
 * New Recipe text: valid against the schema, defaults taken from it, the purpose's rank, and a
 * note whenever the model is not on this machine, is gated, or the data file does not exist.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PURPOSES, renderNewRecipe, type Purpose } from '../../src/language-server/newRecipe';
import { recipeSchema } from '../../src/recipe/schema';
import { parseRecipeText } from '../../src/recipe/validate';

test('every purpose and format gives a valid recipe whose unchanged values are the schema defaults', () => {
  for (const purpose of Object.keys(PURPOSES) as Purpose[]) {
    for (const format of ['chat', 'instruction', 'text'] as const) {
      const text = renderNewRecipe({ baseModel: './models/m', modelSource: 'local', train: 'data/t.jsonl', trainExists: true, format, purpose });
      const { recipe, issues } = parseRecipeText(text);
      assert.deepEqual(issues, [], text);
      const defaults = recipeSchema.parse({ base_model: 'x', data: { train: 'y' } });
      assert.equal(recipe?.lora.r, PURPOSES[purpose].r);
      assert.equal(recipe?.lora.alpha, 2 * PURPOSES[purpose].r);
      assert.equal(recipe?.training.lr, defaults.training.lr);
      assert.equal(recipe?.training.grad_accum, defaults.training.grad_accum);
      assert.equal(recipe?.data.max_seq_len, defaults.data.max_seq_len);
      assert.equal(recipe?.data.train_on, format === 'text' ? 'all' : 'assistant');
      assert.doesNotMatch(text, /NOTE/, 'nothing to warn about');
      assert.match(text, /^ {2}lr: 2\.0e-4 {3}# Peak learning rate/m);
    }
  }
});

test('a typed gated model and a missing data file are called out in the file', () => {
  const text = renderNewRecipe({ baseModel: 'meta-llama/Llama-3.1-8B', modelSource: 'typed', train: 'data/train.jsonl', trainExists: false, format: 'chat', purpose: 'light' });
  assert.match(text, /NOTE: meta-llama\/Llama-3.1-8B is not on this machine/);
  assert.match(text, /NOTE: meta-llama models are gated/);
  assert.match(text, /NOTE: data\/train.jsonl does not exist yet/);
  const cached = renderNewRecipe({ baseModel: 'meta-llama/Llama-3.1-8B', modelSource: 'cache', train: 'd.jsonl', trainExists: true, format: 'chat', purpose: 'light' });
  assert.doesNotMatch(cached, /NOTE/);
});
