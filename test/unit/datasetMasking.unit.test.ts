/**
 * Parity with the Python trainer: on every vector of test/fixtures/masking/ (written by
 * scripts/gen_masking_vectors.py from python `encode_conversation`), the TypeScript previewer
 * produces the same text, input_ids, labels, trained spans and truncation, or the same bad-row kind.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { encodeConversation, type TrainOn } from '../../src/dataset/masking';
import { RowError } from '../../src/dataset/rowError';
import { ChatTemplate, type ChatMessage } from '../../src/dataset/template';
import { TextTokenizer } from '../../src/dataset/tokenizer';

interface Case {
  name: string;
  train_on: TrainOn;
  max_seq_len: number;
  messages: ChatMessage[];
  text?: string;
  input_ids?: number[];
  labels?: number[];
  trained_spans?: Array<[number, number]>;
  truncated?: boolean;
  error?: { kind: string };
}

const root = join(__dirname, '..', 'fixtures', 'masking');
const families = readdirSync(root).filter((d) => existsSync(join(root, d, 'vectors.json'))).sort();

function load(dir: string): { tokenizer: TextTokenizer; template: ChatTemplate; cases: Case[] } {
  const json = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>;
  const config = json('tokenizer_config.json');
  return {
    tokenizer: new TextTokenizer({ tokenizerJson: json('tokenizer.json'), tokenizerConfig: config }),
    template: new ChatTemplate(config['chat_template'] as string, dir),
    cases: (json('vectors.json') as { cases: Case[] }).cases,
  };
}

describe('masking parity with Python on test/fixtures/masking', () => {
  it('has vectors to check', () => assert.ok(families.length >= 8, `found ${families.join(', ')}`));
  for (const family of families) {
    describe(family, () => {
      const { tokenizer, template, cases } = load(join(root, family));
      for (const c of cases) {
        it(`${c.name} train_on=${c.train_on} max_seq_len=${c.max_seq_len}`, () => {
          let got;
          try {
            got = encodeConversation(c.messages, tokenizer, template, c.train_on, c.max_seq_len);
          } catch (err) {
            if (!(err instanceof RowError)) throw err;
            assert.equal(err.kind, c.error?.kind, `bad row ${err.kind}: ${err.message}`);
            return;
          }
          assert.equal(c.error, undefined, `Python calls this row ${c.error?.kind}`);
          assert.equal(got.text, c.text);
          assert.deepEqual(got.inputIds, c.input_ids);
          assert.deepEqual(got.labels, c.labels);
          assert.deepEqual(got.trainedSpans, c.trained_spans);
          assert.equal(got.truncated, c.truncated);
        });
      }
    });
  }
});
