/**
 * Writes the JSON Schemas that Python validates against, generated from the zod sources in src/.
 * `--check` writes nothing and exits 1 when a committed file is stale (run by `npm test`).
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { recipeSchema } from '../src/recipe/schema';
import { protocolJsonSchemaSource } from '../src/protocol/jsonSchema';

const root = resolve(__dirname, '..');
const pkg = 'python-backend/src/qlora_studio';

/** Every generated file: where it goes and the zod schema it comes from. */
const targets: Array<{ path: string; schema: z.ZodType; title: string }> = [
  { path: `${pkg}/recipe/recipe.schema.json`, schema: recipeSchema, title: 'QLoRA Studio recipe' },
  { path: `${pkg}/server/protocol.schema.json`, schema: protocolJsonSchemaSource, title: 'QLoRA Studio backend protocol' },
];

function render(schema: z.ZodType, title: string): string {
  const json = z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  const out = { $comment: 'Generated from src/ by `npm run gen:schemas`. Do not edit.', title, ...json };
  return JSON.stringify(out, null, 2) + '\n';
}

const check = process.argv.includes('--check');
let stale = 0;
for (const t of targets) {
  const file = resolve(root, t.path);
  const text = render(t.schema, t.title);
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '';
  if (current === text) continue;
  if (check) {
    console.error(`stale: ${t.path} — run \`npm run gen:schemas\` and commit the result`);
    stale++;
  } else {
    writeFileSync(file, text);
    console.log(`wrote ${t.path}`);
  }
}
if (stale) process.exit(1);
if (check) console.log(`${targets.length} generated schema file(s) are fresh`);
