/**
 * Every recipe fixture gets the verdict, paths and lines its sidecar promises; the Python suite
 * (python-backend/tests/test_recipe_fixtures.py) reads the same files and must agree.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { formatIssue } from '../../src/recipe/issues';
import { parseRecipeText, validateRecipeText } from '../../src/recipe/validate';

const root = resolve(__dirname, '../..');
const fixtures = join(root, 'test/fixtures/recipes');

function recipesIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.qlora.yaml'))
    .sort()
    .map((f) => join(dir, f));
}

function sidecar(file: string): unknown {
  return JSON.parse(readFileSync(file.replace(/\.qlora\.yaml$/, '.expected.json'), 'utf8'));
}

/** Every `*.qlora.yaml` / `*.qlora.yml` below `dir` (node 20 has no fs.glob). */
function findRecipes(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) return findRecipes(full);
    return /\.qlora\.ya?ml$/.test(name) ? [full] : [];
  });
}

test('there are at least 6 valid and 12 invalid fixtures, each with a sidecar', () => {
  const valid = recipesIn(join(fixtures, 'valid'));
  const invalid = recipesIn(join(fixtures, 'invalid'));
  assert.ok(valid.length >= 6, `only ${valid.length} valid fixtures`);
  assert.ok(invalid.length >= 12, `only ${invalid.length} invalid fixtures`);
  for (const f of [...valid, ...invalid]) assert.ok(existsSync(f.replace(/\.qlora\.yaml$/, '.expected.json')), `${f} has no .expected.json`);
});

for (const file of recipesIn(join(fixtures, 'valid'))) {
  test(`valid fixture ${file.slice(fixtures.length + 1)}: no errors, zod output equals the sidecar`, () => {
    const { recipe, issues } = parseRecipeText(readFileSync(file, 'utf8'));
    const errors = issues.filter((i) => i.severity === 'error');
    assert.deepEqual(errors.map((i) => formatIssue(i, file)), []);
    assert.deepEqual(JSON.parse(JSON.stringify(recipe)), sidecar(file));
  });
}

for (const file of recipesIn(join(fixtures, 'invalid'))) {
  test(`invalid fixture ${file.slice(fixtures.length + 1)}: the expected errors at the expected lines`, () => {
    const issues = validateRecipeText(readFileSync(file, 'utf8'));
    const errors = issues.filter((i) => i.severity === 'error');
    // YAML syntax errors are worded by each language's YAML parser, so only their place is shared
    const expected = sidecar(file) as Array<{ path: string; line: number; message?: string }>;
    const got = errors.map(({ path, line, message }, n) => ({ path, line, ...(expected[n]?.message !== undefined ? { message } : {}) }));
    assert.deepEqual(got, expected, errors.map((i) => formatIssue(i, file)).join('\n'));
    for (const e of errors) {
      assert.ok(e.column >= 1, 'columns are 1-based');
      assert.ok(e.message.length > 10, `message too terse: ${e.message}`);
    }
    assert.equal(parseRecipeText(readFileSync(file, 'utf8')).recipe, undefined, 'an invalid recipe yields no recipe');
  });
}

test('every example recipe in the repo is valid', () => {
  const examples = findRecipes(join(root, 'examples'));
  assert.ok(examples.length > 0, 'no examples/**/*.qlora.yaml found');
  for (const file of examples) {
    const errors = validateRecipeText(readFileSync(file, 'utf8')).filter((i) => i.severity === 'error');
    assert.deepEqual(errors.map((i) => formatIssue(i, file)), []);
  }
});

test('snippets.json: the exact issues both languages report', () => {
  const file = JSON.parse(readFileSync(join(fixtures, 'snippets.json'), 'utf8')) as {
    cases: Array<{ text: string; issues: Array<{ severity: string; path: string; line: number; message: string; suggestion?: string }> }>;
  };
  assert.ok(file.cases.length >= 20);
  for (const c of file.cases) {
    const got = validateRecipeText(c.text).map(({ severity, path, line, message, suggestion }) =>
      suggestion === undefined ? { severity, path, line, message } : { severity, path, line, message, suggestion });
    assert.deepEqual(got, c.issues, JSON.stringify(c.text));
  }
});
