/**
 * Writes `test/fixtures/recipes/valid/<name>.expected.json`: what zod makes of each valid recipe
 * fixture, every default filled. The Python test compares its own default filling to these files,
 * so the two languages cannot drift apart. `--check` writes nothing and exits 1 when one is stale.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { formatIssue } from '../src/recipe/issues';
import { parseRecipeText } from '../src/recipe/validate';

const dir = resolve(__dirname, '../test/fixtures/recipes/valid');
const check = process.argv.includes('--check');
let problems = 0;
for (const name of readdirSync(dir).filter((f) => f.endsWith('.qlora.yaml')).sort()) {
  const { recipe, issues } = parseRecipeText(readFileSync(resolve(dir, name), 'utf8'));
  if (!recipe) {
    for (const issue of issues) console.error(formatIssue(issue, `valid/${name}`));
    problems++;
    continue;
  }
  const target = resolve(dir, name.replace(/\.qlora\.yaml$/, '.expected.json'));
  const text = JSON.stringify(recipe, null, 2) + '\n';
  const current = existsSync(target) ? readFileSync(target, 'utf8') : '';
  if (current === text) continue;
  if (check) {
    console.error(`stale: ${target} — run \`npx tsx scripts/genRecipeFixtures.ts\``);
    problems++;
  } else {
    writeFileSync(target, text);
    console.log(`wrote ${target}`);
  }
}
if (problems) process.exit(1);
