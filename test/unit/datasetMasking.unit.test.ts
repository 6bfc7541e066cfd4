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

interface CorpusFile {
  template: string;
  template_file: string;
  tokenizer_file?: string;
  bos_token: string | null;
  eos_token: string;
  pad_token: string;
  added_tokens: Array<{ id: number; content: string; special: boolean }>;
  special_texts: string[];
  cases: Array<{ conversation: string; train_on: TrainOn; max_seq_len: number; text?: string; input_ids?: number[]; trained?: Array<[number, number]>; trained_spans?: Array<[number, number]>; truncated?: boolean; error?: { kind: string; message?: string } }>;
}

const corpusDir = join(root, 'corpus');
const corpusFiles = existsSync(join(corpusDir, 'vectors')) ? readdirSync(join(corpusDir, 'vectors')).filter((f) => f.endsWith('.json')).sort() : [];
/** The instant the corpus vectors render `strftime_now` at (local time). */
const FIXED_NOW = new Date(2025, 5, 1, 12, 0, 0);

describe('masking parity with Python on the real-template corpus (test/fixtures/masking/corpus)', () => {
  it('has at least 30 real templates', () => assert.ok(new Set(corpusFiles.map((f) => f.split('@')[0])).size >= 30, `found ${corpusFiles.length}`));
  const conversations = corpusFiles.length ? (JSON.parse(readFileSync(join(corpusDir, 'conversations.json'), 'utf8')) as { conversations: Record<string, ChatMessage[]> }).conversations : {};
  const tokenizerJson = new Map<string, Record<string, unknown>>();
  for (const f of corpusFiles) {
    it(f.replace(/\.json$/, ''), () => {
      const v = JSON.parse(readFileSync(join(corpusDir, 'vectors', f), 'utf8')) as CorpusFile;
      const tf = v.tokenizer_file ?? 'corpus/tokenizer.json';
      if (!tokenizerJson.has(tf)) tokenizerJson.set(tf, JSON.parse(readFileSync(join(root, tf), 'utf8')) as Record<string, unknown>);
      const base = tokenizerJson.get(tf)!;
      const added = [...((base['added_tokens'] ?? []) as unknown[]), ...v.added_tokens.map((t) => ({ id: t.id, content: t.content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: t.special }))];
      const tokenizer = new TextTokenizer({ tokenizerJson: { ...base, added_tokens: added }, tokenizerConfig: { bos_token: v.bos_token, eos_token: v.eos_token, pad_token: v.pad_token } });
      assert.deepEqual(tokenizer.specialTexts, v.special_texts, 'SPECIAL, in the rule\'s order');
      const template = new ChatTemplate(readFileSync(join(root, '..', v.template_file), 'utf8'), v.template, () => FIXED_NOW);
      for (const c of v.cases) {
        const where = `${v.template} / ${c.conversation} / ${c.train_on} / ${c.max_seq_len}`;
        let got;
        try {
          got = encodeConversation(conversations[c.conversation]!, tokenizer, template, c.train_on, c.max_seq_len);
        } catch (err) {
          if (!(err instanceof RowError)) throw err;
          assert.equal(err.kind, c.error?.kind, `${where}: TypeScript says ${err.kind}: ${err.message}`);
          if (c.error?.message !== undefined) assert.equal(err.message, c.error.message, where);
          continue;
        }
        assert.equal(c.error, undefined, `${where}: Python says ${c.error?.kind}: ${c.error?.message}`);
        assert.equal(got.text, c.text, where);
        assert.deepEqual(got.inputIds, c.input_ids, where);
        const labels = c.input_ids!.map((id, k) => (c.trained!.some(([a, b]) => k >= a && k < b) ? id : -100));
        assert.deepEqual(got.labels, labels, where);
        assert.deepEqual(got.trainedSpans, c.trained_spans, where);
        assert.equal(got.truncated, c.truncated, where);
      }
    });
  }
});
