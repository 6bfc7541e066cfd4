/**
 * The dataset doctor finds every seeded bad-row kind of test/fixtures/dataset-doctor/doctor.jsonl
 * on its line, and nothing on the good line; the preview of one line follows the recipe.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runDoctor, type DoctorIssue } from '../../src/dataset/doctor';
import { findRecipeFor } from '../../src/dataset/recipeLink';
import { loadSession, PreviewSession } from '../../src/dataset/session';
import { ChatTemplate } from '../../src/dataset/template';
import { TextTokenizer } from '../../src/dataset/tokenizer';
import { dataSchema } from '../../src/recipe/schema';

const root = join(__dirname, '..', '..');
const dir = join(root, 'test', 'fixtures', 'dataset-doctor');
const builtin = join(root, 'python-backend', 'src', 'qlora_studio', 'data', 'builtin_templates');

describe('dataset doctor', () => {
  it('finds the recipe that names the file', () => {
    assert.equal(findRecipeFor(join(dir, 'doctor.jsonl'), root), join(dir, 'doctor.qlora.yaml'));
    assert.equal(findRecipeFor(join(dir, 'README.md'), root), undefined);
  });

  it('reports each seeded kind on its line', async () => {
    const session = loadSession(join(dir, 'doctor.qlora.yaml'), builtin);
    const issues: DoctorIssue[] = [];
    const summary = await runDoctor(join(dir, 'doctor.jsonl'), session, (i) => issues.push(i));
    const expected = (JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as { lines: Record<string, string[]> }).lines;
    const got: Record<string, string[]> = {};
    for (const i of issues) (got[String(i.line)] ??= []).push(i.kind);
    assert.deepEqual(got, expected);
    assert.equal(issues.find((i) => i.kind === 'duplicate')?.firstLine, 1);
    assert.equal(summary.lines, 14);
    assert.equal(summary.badRows, 10);
    assert.equal(summary.truncated, 1 + 0);
    for (const i of issues) assert.ok(i.message.length > 20, `${i.kind} explains itself: ${i.message}`);
  });

  it('stops when cancelled', async () => {
    const session = loadSession(join(dir, 'doctor.qlora.yaml'), builtin);
    const ac = new AbortController();
    ac.abort();
    const summary = await runDoctor(join(dir, 'doctor.jsonl'), session, () => undefined, { signal: ac.signal });
    assert.equal(summary.cancelled, true);
    assert.equal(summary.examples, 0);
  });

  it('previews one line with counts', () => {
    const session = loadSession(join(dir, 'doctor.qlora.yaml'), builtin);
    const p = session.previewLine('{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}');
    assert.ok(p.ok);
    assert.ok(p.trained > 0 && p.trained < p.encoded.inputIds.length);
    assert.match(p.encoded.text, /<start_of_turn>model\nHello!<end_of_turn>/);
  });
});

describe('bad-row verdicts equal the trainer', () => {
  it('gives test/fixtures/data/bad_rows.jsonl the kinds python-backend/tests/test_data_build.py expects', async () => {
    // The same setting as the Python test: the gemma fixture tokenizer, the built-in gemma template, max_seq_len 64.
    const gemma = join(root, 'test', 'fixtures', 'masking', 'gemma');
    const json = (f: string) => JSON.parse(readFileSync(join(gemma, f), 'utf8')) as Record<string, unknown>;
    const tokenizer = new TextTokenizer({ tokenizerJson: json('tokenizer.json'), tokenizerConfig: json('tokenizer_config.json') });
    const template = new ChatTemplate(readFileSync(join(builtin, 'gemma.jinja'), 'utf8'), 'gemma');
    const data = dataSchema.parse({ train: 'bad_rows.jsonl', max_seq_len: 64 });
    const session = new PreviewSession('python-test', data, tokenizer, template);
    const bad: Record<number, string> = {};
    await runDoctor(join(root, 'test', 'fixtures', 'data', 'bad_rows.jsonl'), session, (i) => {
      if (i.severity === 'error') bad[i.line] = i.kind;
    });
    assert.deepEqual(bad, { 2: 'malformed_json', 3: 'not_an_object', 4: 'missing_field', 5: 'unknown_role', 6: 'empty_conversation', 7: 'no_trained_tokens', 8: 'template_error', 9: 'no_trained_tokens', 11: 'missing_field' });
  });
});
