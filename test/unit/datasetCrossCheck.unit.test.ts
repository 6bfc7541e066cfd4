/**
 * The comparison with the trainer's `dataset.preview`: the trainer's answer for a line is built
 * from our own preview (agreement), then changed in one place at a time, each of which must come
 * out as a "preview differs from trainer" problem on its line.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { compareWithTrainer, DIFFERS, type TrainerPreview } from '../../src/dataset/crossCheck';
import { loadSession } from '../../src/dataset/session';

const root = join(__dirname, '..', '..');
const dir = join(root, 'test', 'fixtures', 'dataset-doctor');
const session = loadSession(join(dir, 'doctor.qlora.yaml'), join(root, 'python-backend', 'src', 'qlora_studio', 'data', 'builtin_templates'));
const lines = readFileSync(join(dir, 'doctor.jsonl'), 'utf8').split('\n');
const preview = (line: number) => session.previewLine(lines[line - 1]!);

function trainerView(): TrainerPreview {
  const p = preview(1);
  assert.ok(p.ok);
  return {
    examples: [{ line: 1, tokens: p.encoded.inputIds.map((id, k) => ({ id, trained: p.encoded.labels[k] !== -100 })) }],
    bad_rows: [{ line: 2, kind: 'malformed_json' }],
  };
}

describe('comparison with the trainer', () => {
  it('reports nothing when both agree', () => {
    assert.deepEqual(compareWithTrainer(trainerView(), new Map([[2, 'malformed_json']]), preview), []);
  });

  it('reports a token the two label differently, on its line', () => {
    const py = trainerView();
    const tokens = py.examples[0]!.tokens!;
    const k = tokens.findIndex((t) => t.trained);
    tokens[k] = { ...tokens[k], trained: false };
    const issues = compareWithTrainer(py, new Map([[2, 'malformed_json']]), preview);
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.line, 1);
    assert.equal(issues[0]!.kind, DIFFERS);
    assert.match(issues[0]!.message, new RegExp(`token ${k + 1} differs`));
  });

  it('reports a row one side calls bad and the other good, or bad for another reason', () => {
    const issues = compareWithTrainer(trainerView(), new Map([[2, 'not_an_object'], [5, 'unknown_role']]), preview);
    assert.deepEqual(issues.map((i) => [i.line, i.kind]), [[2, DIFFERS], [5, DIFFERS]]);
    assert.match(issues[1]!.message, /the trainer calls this row good, the preview unknown_role/);
  });
});
