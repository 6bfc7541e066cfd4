/** docs/recipe.md is generated from the schema and must not go stale; it covers every field. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { recipeFields, renderRecipeReference } from '../../src/recipe/reference';
import { recipeSchema } from '../../src/recipe/schema';

const docPath = resolve(__dirname, '../../docs/recipe.md');

test('docs/recipe.md is fresh (regenerate with `npx tsx scripts/genRecipeDoc.ts`)', () => {
  assert.equal(readFileSync(docPath, 'utf8'), renderRecipeReference());
});

test('every field is documented with its default, taken from zod', () => {
  const defaults = recipeSchema.parse({ base_model: 'm', data: { train: 't' } }) as unknown as Record<string, Record<string, unknown>>;
  const fields = new Map(recipeFields().map((f) => [f.path, f]));
  assert.equal(fields.get('base_model')?.default, '**required**');
  assert.equal(fields.get('data.train')?.default, '**required**');
  assert.equal(fields.get('training.max_steps')?.default, 'optional');
  for (const section of ['quantization', 'lora', 'training', 'output', 'generation'] as const) {
    for (const [key, value] of Object.entries(defaults[section] ?? {})) {
      if (typeof value === 'object' && !Array.isArray(value)) continue;
      assert.equal(fields.get(`${section}.${key}`)?.default, `\`${JSON.stringify(value)}\``, `${section}.${key}`);
    }
  }
  for (const f of fields.values()) assert.ok(f.description.length > 0, `${f.path} has no description`);
});

test('types read like a person wrote them', () => {
  const fields = new Map(recipeFields().map((f) => [f.path, f.type]));
  assert.equal(fields.get('training.lr'), 'number > 0, ≤ 1');
  assert.equal(fields.get('lora.r'), 'integer ≥ 1, ≤ 1024');
  assert.equal(fields.get('training.max_steps'), 'integer ≥ 1');
  assert.equal(fields.get('quantization.bits'), '`4` or `8`');
  assert.equal(fields.get('training.scheduler'), '`cosine` | `linear` | `constant`');
});
