/**
 * The doctor judges a row without tokens only for a tokenizer whose token count its UTF-8 bytes
 * bound (tokenBound.ts), and its findings are the same either way; on real tokenizers the bound
 * holds wherever it is claimed.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runDoctor, type DoctorIssue } from '../../src/dataset/doctor';
import { loadSession, PreviewSession } from '../../src/dataset/session';
import { LazySpanned } from '../../src/dataset/spanned';
import { bytesBoundTokens } from '../../src/dataset/tokenBound';
import { rng } from '../seededRandom';
import { TextTokenizer } from '../../src/dataset/tokenizer';

const root = join(__dirname, '..', '..');
const masking = join(root, 'test', 'fixtures', 'masking');
const builtin = join(root, 'python-backend', 'src', 'qlora_studio', 'data', 'builtin_templates');
const shared = process.env['QLORA_SHARED_DATA'] ?? join(root, '..', '..', 'shared', 'data');
const json = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;

describe('token count bounded by bytes', () => {
  const metaspace = json(join(masking, 'corpus', 'tokenizer-metaspace.json'));
  const byteLevel = json(join(masking, 'chatml', 'tokenizer.json'));

  it('holds for byte-level BPE and SentencePiece-style Metaspace', () => {
    assert.equal(bytesBoundTokens(byteLevel), true);
    assert.equal(bytesBoundTokens(metaspace), true);
  });

  it('is not claimed for a normalizer that can expand text, or a model it does not know', () => {
    assert.equal(bytesBoundTokens({ ...byteLevel, normalizer: { type: 'NFKC' } }), false);
    assert.equal(bytesBoundTokens({ ...byteLevel, normalizer: { type: 'Lowercase' } }), false);
    assert.equal(bytesBoundTokens({ ...metaspace, pre_tokenizer: { ...(metaspace['pre_tokenizer'] as object), prepend_scheme: 'always' } }), false);
    assert.equal(bytesBoundTokens({ ...byteLevel, model: { type: 'Mystery' } }), false);
  });

  it('holds where claimed: no text has more tokens than bytes plus one', () => {
    const files = [join(masking, 'chatml', 'tokenizer.json'), join(masking, 'corpus', 'tokenizer-metaspace.json')];
    for (const d of ['gpt2', 'phi-3-mini']) files.push(join(shared, 'tokenizers', d, 'tokenizer.json'));
    const texts = ['a', ' ', '   leading', 'naïve café 東京 😄', 'x'.repeat(50), ' a b c d e f ', '\n\n\t', '😄😄😄', 'ＡＢＣ ﷺ İ'];
    let checked = 0;
    for (const f of files) {
      let tokenizerJson: Record<string, unknown>;
      try {
        tokenizerJson = json(f);
      } catch {
        continue; // a shared tokenizer that is not on this machine
      }
      if (!bytesBoundTokens(tokenizerJson)) continue;
      const tok = new TextTokenizer({ tokenizerJson, tokenizerConfig: {} });
      for (const t of texts) {
        for (const plain of [false, true]) assert.ok(tok.encode(t, plain).ids.length <= Buffer.byteLength(t) + 1, `${f}: ${JSON.stringify(t)}`);
      }
      checked += 1;
    }
    assert.ok(checked >= 2, `checked ${checked} tokenizers`);
  });
});

describe('doctor findings do not depend on the bound', () => {
  it('finds the same on every fixture dataset with and without judging rows by bytes', async () => {
    const dir = join(root, 'test', 'fixtures', 'dataset-doctor');
    const session = loadSession(join(dir, 'doctor.qlora.yaml'), builtin);
    assert.equal(session.bytesBoundTokens, true, 'the fixture tokenizer is byte-level BPE');
    const tokenizeAll = new PreviewSession(session.recipePath, session.data, session.tokenizer, session.template, session.sources, false);
    const files = [join(dir, 'doctor.jsonl'), join(root, 'test', 'fixtures', 'data', 'bad_rows.jsonl'), ...readdirSync(join(root, 'test', 'fixtures', 'data')).filter((f) => f.endsWith('.jsonl')).map((f) => join(root, 'test', 'fixtures', 'data', f))];
    for (const file of files) {
      const a: DoctorIssue[] = [];
      const b: DoctorIssue[] = [];
      const sa = await runDoctor(file, session, (i) => a.push(i));
      const sb = await runDoctor(file, tokenizeAll, (i) => b.push(i));
      assert.deepEqual(a, b, file);
      assert.deepEqual(sa, sb, file);
    }
  });
});

describe('spans kept in UTF-16 until read', () => {
  it('tells an empty code-point span from UTF-16 positions exactly as the code points do', () => {
    const r = rng(13);
    const units = ['a', '😄', '\ud83d', '\ude00', 'é', '東'];
    for (let k = 0; k < 3000; k += 1) {
      let text = '';
      for (let n = Math.floor(r() * 8); n > 0; n -= 1) text += units[Math.floor(r() * units.length)]!;
      const spans: Array<[number, number]> = [];
      for (let n = 1 + Math.floor(r() * 2); n > 0; n -= 1) {
        const a = Math.floor(r() * (text.length + 1));
        spans.push([a, Math.min(text.length, a + Math.floor(r() * 3))]);
      }
      const lazy = new LazySpanned(text, [[text, false]], spans);
      assert.equal(lazy.hasEmptySpan(), lazy.spans.some(([a, b]) => b <= a), `${JSON.stringify(text)} ${JSON.stringify(spans)}`);
    }
  });
});
