/** The wording and placement of recipe diagnostics, beyond what the fixtures pin down. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIssue, type RecipeIssue } from '../../src/recipe/issues';
import { suggest } from '../../src/recipe/messages';
import { parseRecipeText, validateRecipeText } from '../../src/recipe/validate';

const HEAD = 'base_model: org/model\ndata:\n  train: train.jsonl\n';

function only(text: string): RecipeIssue {
  const issues = validateRecipeText(text);
  assert.equal(issues.length, 1, issues.map((i) => formatIssue(i)).join('\n'));
  return issues[0]!;
}

test('a bound violation names the bound and the value', () => {
  const issue = only(`${HEAD}training:\n  lr: -1\n`);
  assert.deepEqual([issue.path, issue.line, issue.column], ['training.lr', 5, 7]);
  assert.equal(issue.message, 'must be > 0 (got -1)');
  assert.equal(formatIssue(issue, 'r.qlora.yaml'), 'r.qlora.yaml:5:7: training.lr: must be > 0 (got -1)');
});

test('an unknown key points at the key and suggests the closest one', () => {
  const issue = only(`${HEAD}lora:\n  r: 8\n  aplha: 16\n`);
  assert.deepEqual([issue.path, issue.line, issue.column], ['lora.aplha', 6, 3]);
  assert.match(issue.message, /unknown key "aplha"; did you mean "alpha"\?/);
});

test('a transformers argument name maps to the recipe key', () => {
  assert.match(only(`${HEAD}training:\n  gradient_accumulation_steps: 4\n`).message, /did you mean "grad_accum"/);
});

test('an unknown key with nothing close lists the allowed keys', () => {
  assert.match(only(`${HEAD}output:\n  zzz: 1\n`).message, /allowed keys here: dir, run_name/);
});

test('an enum error lists every allowed value', () => {
  const issue = only(`${HEAD}training:\n  optimizer: sgd\n`);
  assert.match(issue.message, /must be one of: paged_adamw_8bit, adamw_8bit, paged_adamw_32bit, adamw \(got "sgd"\)/);
});

test('a missing required key points at its parent mapping', () => {
  const issue = only('base_model: m\nlora:\n  r: 8\ndata:\n  format: chat\n');
  assert.deepEqual([issue.path, issue.line], ['data.train', 4]);
  assert.match(issue.message, /^missing required key "train"/);
});

test('every error is reported, not only the first', () => {
  const issues = validateRecipeText('data:\n  train: ""\nlora:\n  r: 0\n  dropout: 2\ntraining:\n  seed: -3\n');
  assert.deepEqual(
    issues.map((i) => [i.path, i.line]),
    [['base_model', 1], ['data.train', 2], ['lora.r', 4], ['lora.dropout', 5], ['training.seed', 7]],
  );
});

test('YAML 1.2 scalars: 1e-4 is a number, yes is text', () => {
  const { recipe } = parseRecipeText(`${HEAD}  system_prompt: yes\ntraining:\n  lr: 1e-4\n`);
  assert.equal(recipe?.training.lr, 1e-4);
  assert.equal(recipe?.data.system_prompt, 'yes');
});

test('max_steps with epochs is a warning on epochs, not an error', () => {
  const { recipe, issues } = parseRecipeText(`${HEAD}training:\n  epochs: 3\n  max_steps: 10\n`);
  assert.ok(recipe, 'still a usable recipe');
  assert.deepEqual(issues.map((i) => [i.severity, i.path, i.line]), [['warning', 'training.epochs', 5]]);
});

test('trust_remote_code is never on unless written', () => {
  assert.equal(parseRecipeText(HEAD).recipe?.trust_remote_code, false);
  assert.equal(parseRecipeText(`${HEAD}trust_remote_code: true\n`).recipe?.trust_remote_code, true);
});

test('a syntax error stops validation and carries its line', () => {
  const issues = validateRecipeText(`${HEAD}lora: {r: 8\ntraining:\n  lr: -1\n`);
  assert.equal(issues.length, 1);
  assert.equal(issues[0]?.path, '');
  assert.match(issues[0]?.message ?? '', /^YAML syntax error/);
});

test('a recursive alias is an error, not a hang', () => {
  const issues = validateRecipeText(`${HEAD}lora: &a\n  target_modules: [*a]\n`);
  assert.ok(issues.some((i) => i.severity === 'error'), issues.map((i) => formatIssue(i)).join('\n'));
});

test('suggest finds likely typos only', () => {
  assert.equal(suggest('cosin', ['cosine', 'linear', 'constant']), 'cosine');
  assert.equal(suggest('xyz', ['cosine', 'linear', 'constant']), undefined);
});
