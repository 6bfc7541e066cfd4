/**
 * Writes docs/recipe.md, the recipe reference, from the zod schema (src/recipe/reference.ts).
 * `--check` writes nothing and exits 1 when the committed file is stale.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { renderRecipeReference } from '../src/recipe/reference';

const target = resolve(__dirname, '../docs/recipe.md');
const text = renderRecipeReference();
const current = existsSync(target) ? readFileSync(target, 'utf8') : '';
if (current === text) {
  if (process.argv.includes('--check')) console.log('docs/recipe.md is fresh');
} else if (process.argv.includes('--check')) {
  console.error('stale: docs/recipe.md — run `npx tsx scripts/genRecipeDoc.ts`');
  process.exit(1);
} else {
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, text);
  console.log('wrote docs/recipe.md');
}
