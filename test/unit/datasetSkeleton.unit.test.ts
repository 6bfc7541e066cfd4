/**
 * Render specialisation equals the interpreter: on every real template of the corpora and on
 * seeded random conversations (odd role orders, empty and padded contents, special-token text,
 * emoji, think tags, whitespace of every kind around a content, contents holding the strings
 * templates test for), a template with skeletons renders, locates turns, proves prefixes and spans
 * conversations exactly as one that renders everything through the interpreter, bad rows included.
 * Transforms and predicates on a content keep guarded skeletons; any other inspection keeps none.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { lazyRender, startsWith } from '../../src/dataset/lazyRender';
import { locate } from '../../src/dataset/locate';
import { conversationSpans, surelyTrainedUntruncated } from '../../src/dataset/masking';
import { RowError } from '../../src/dataset/rowError';
import { ChatTemplate, type ChatMessage, type SpecialTokens } from '../../src/dataset/template';
import { TextTokenizer } from '../../src/dataset/tokenizer';
import { rng } from '../seededRandom';

const fixtures = join(__dirname, '..', 'fixtures');
const masking = join(fixtures, 'masking');
const FIXED_NOW = new Date(2025, 5, 1, 12, 0, 0);
const CONTENTS = ['', ' ', 'hello', '  padded answer  ', '\n\nleading lines', 'multi\nline\ntext', 'x<|im_end|>y', '<think>why</think>the answer', 'emoji 😄 and 東京', 'tab\tand "quotes"', 'None', 'True', '{{ not jinja }}', '</s>', '<|eot_id|>',
  '  \n padded both sides \t ', '\n\n\n', '\u00a0nbsp and em space\u2003', '\u001cPython-only space\u001f', '\ufeffBOM, JavaScript-only space',
  '<think>\nreason\n</think>\n\nanswer', '</think>', 'one</think>two</think>three', '\n</think>\n\n  spaced answer ', '<think>open only',
  '<tool_call>{"name": "f"}</tool_call>', '<|im_start|>assistant', '[INST] inside [/INST]', 'ends with a question?', '\n',
  '<tool_response>\nresult\n</tool_response>', ' </think> ', '\u0085next line\u0085', 'x\n\n'];
/** Corpus templates known to keep a skeleton for a plain exchange (a regression back to the interpreter fails). */
const CORPUS_SPECIALISED = 65;
const ROLES = ['system', 'user', 'assistant', 'tool'] as const;

function conversation(r: () => number): ChatMessage[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const out: ChatMessage[] = [];
  if (r() < 0.3) out.push({ role: 'system', content: pick(CONTENTS) });
  const turns = 1 + Math.floor(r() * 3);
  for (let t = 0; t < turns; t += 1) {
    // Mostly alternating, sometimes an odd order (templates that raise on it must agree too).
    out.push({ role: r() < 0.9 ? 'user' : pick(ROLES), content: pick(CONTENTS) });
    out.push({ role: r() < 0.9 ? 'assistant' : pick(ROLES), content: pick(CONTENTS) });
  }
  return out;
}

function outcome<T>(fn: () => T): T | { error: string; message: string } {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RowError) return { error: err.kind, message: err.message };
    throw err;
  }
}

interface Family { name: string; source: string; tokenizer: TextTokenizer }

/** Every real template with a tokenizer carrying its special tokens (the masking corpora's own setup). */
function families(): Family[] {
  const out: Family[] = [];
  for (const d of readdirSync(masking).filter((f) => existsSync(join(masking, f, 'vectors.json'))).sort()) {
    const json = (f: string) => JSON.parse(readFileSync(join(masking, d, f), 'utf8')) as Record<string, unknown>;
    const config = json('tokenizer_config.json');
    out.push({ name: d, source: config['chat_template'] as string, tokenizer: new TextTokenizer({ tokenizerJson: json('tokenizer.json'), tokenizerConfig: config }) });
  }
  const vectors = join(masking, 'corpus', 'vectors');
  const bases = new Map<string, Record<string, unknown>>();
  for (const f of readdirSync(vectors).filter((x) => x.endsWith('.json')).sort()) {
    const v = JSON.parse(readFileSync(join(vectors, f), 'utf8')) as { template: string; template_file: string; tokenizer_file?: string; bos_token: string | null; eos_token: string; pad_token: string; added_tokens: Array<{ id: number; content: string; special: boolean }> };
    const tf = v.tokenizer_file ?? 'corpus/tokenizer.json';
    if (!bases.has(tf)) bases.set(tf, JSON.parse(readFileSync(join(masking, tf), 'utf8')) as Record<string, unknown>);
    const base = bases.get(tf)!;
    const added = [...((base['added_tokens'] ?? []) as unknown[]), ...v.added_tokens.map((t) => ({ id: t.id, content: t.content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: t.special }))];
    const tokenizer = new TextTokenizer({ tokenizerJson: { ...base, added_tokens: added }, tokenizerConfig: { bos_token: v.bos_token, eos_token: v.eos_token, pad_token: v.pad_token } });
    out.push({ name: f.replace(/\.json$/, ''), source: readFileSync(join(masking, '..', v.template_file), 'utf8'), tokenizer });
  }
  const renders = JSON.parse(readFileSync(join(fixtures, 'dataset-render', 'renders.json'), 'utf8')) as { templates: Record<string, string> };
  const plain = out[0]!.tokenizer;
  for (const [name, source] of Object.entries(renders.templates)) out.push({ name: `dataset-render/${name}`, source, tokenizer: plain });
  return out;
}

describe('skeleton renders equal the interpreter on the real-template corpora', () => {
  const all = families();
  let specialised = 0;
  let corpusSpecialised = 0;
  it('covers the corpora', () => assert.ok(all.length >= 40, `found ${all.length}`));
  for (const f of all) {
    it(f.name, () => {
      const fast = new ChatTemplate(f.source, f.name, () => FIXED_NOW);
      const slow = new ChatTemplate(f.source, f.name, () => FIXED_NOW, false);
      const tokens: SpecialTokens = f.tokenizer.special;
      const r = rng(f.name.length * 7919 + 17);
      for (let k = 0; k < 24; k += 1) {
        const messages = conversation(r);
        const where = `${f.name} / ${JSON.stringify(messages.map((m) => m.role))} / case ${k}`;
        for (const gen of [false, true]) {
          assert.deepEqual(outcome(() => fast.renderSpans(messages, gen, tokens)), outcome(() => slow.renderSpansFull(messages, gen, tokens)), `${where} / render gen=${gen}`);
        }
        for (let i = 0; i <= messages.length; i += 1) {
          const head = messages.slice(0, i);
          const want = outcome(() => slow.render(messages, false, tokens).startsWith(slow.render(head, true, tokens)));
          const got = outcome(() => startsWith(lazyRender(fast, messages, false, tokens, true), lazyRender(fast, head, true, tokens, true)));
          assert.deepEqual(got, want, `${where} / prefix ${i}`);
        }
        for (const trainOn of ['assistant', 'completion'] as const) {
          const spanned = (t: ChatTemplate) => outcome(() => {
            const s = conversationSpans(messages, f.tokenizer, t, trainOn);
            return { text: s.text, pieces: s.pieces, spans: s.spans, surely: surelyTrainedUntruncated(s, 1 << 20) };
          });
          assert.deepEqual(spanned(fast), spanned(slow), `${where} / spans ${trainOn}`);
        }
      }
      const exchange: ChatMessage[] = [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }, { role: 'user', content: 'q2' }, { role: 'assistant', content: 'a2' }];
      outcome(() => fast.render(exchange, false, tokens));
      if (fast.skeletonVerdict(exchange, false, tokens) === '') {
        specialised += 1;
        if (!f.name.includes('/') && !/^(chatml|gemma|llama3|llama3-generation|mistral|phi3|plain-eos|qwen)$/.test(f.name)) corpusSpecialised += 1;
      }
    });
  }
  it('specialises a good share of them (the fast path is exercised)', (t) => {
    t.diagnostic(`${specialised} of ${all.length} templates have a skeleton for a user/assistant exchange`);
    assert.ok(specialised >= 10, `${specialised} of ${all.length}`);
  });
  it('keeps a skeleton for most of the 59 real-template corpus (trim, strip, think splits, guards)', (t) => {
    t.diagnostic(`${corpusSpecialised} of the corpus templates have a skeleton for a user/assistant/user/assistant exchange`);
    assert.ok(corpusSpecialised >= CORPUS_SPECIALISED, `${corpusSpecialised} < ${CORPUS_SPECIALISED}: a template fell back to the interpreter`);
  });
});

describe('a template that transforms or tests a content keeps guarded skeletons', () => {
  const tokens: SpecialTokens = { bos_token: '<s>', eos_token: '</s>', pad_token: '', unk_token: '' };
  const cases: Record<string, string> = {
    'a trim filter': '{% for m in messages %}[{{ m.content | trim }}]{% endfor %}',
    'a comparison': "{% for m in messages %}{% if m.content == '' %}E{% else %}{{ m.content }}{% endif %}{% endfor %}",
    'truthiness': '{% for m in messages %}{% if m.content %}{{ m.content }}{% endif %}{% if not m.content %}-{% endif %}{% endfor %}',
    'strip methods': "{% for m in messages %}({{ m.content.strip() }}|{{ m.content.lstrip('\\n ') }}|{{ m.content.rstrip() }}){% endfor %}",
    'in and not in': "{% for m in messages %}{{ 'H' in m.content }}{% if '</think>' not in m.content %}!{% endif %}{% endfor %}",
    'startswith and endswith': "{% for m in messages %}{% if m.content.startswith('<think>') or m.content.endswith(('?', '!')) %}T{% endif %}{{ m.content }}{% endfor %}",
    'a think split': "{% for m in messages %}{% set c = m.content %}{% if '</think>' in c %}{% set c = c.split('</think>')[-1].lstrip('\\n') %}{{ m.content.split('</think>')[0].strip() }}{% endif %}<{{ c }}>{% endfor %}",
    'a test and a length': '{% for m in messages %}{% if m.content is string %}{{ m.content | length }}:{% endif %}{{ m.content }}{% endfor %}',
    'a macro or set block that only writes a content, then trimmed': "{% macro show(c) %}{%- if c is string %}{{- c }}{% endif -%}{% endmacro %}{% for m in messages %}{% set x %}{{ m.content }}{% endset %}{% set y = show(m.content) | trim %}({{ y }}|{{ x.strip() }}|{{ '' + m.content | trim }}){% if y.startswith('H') %}!{% endif %}{% endfor %}",
  };
  const contents = ['', '  Hi  ', 'Hi?', '<think>r</think>\n\na', 'x</think>y</think>z', '\n\n', '\ufeff Hi', 'H'];
  for (const [name, source] of Object.entries(cases)) {
    it(name, () => {
      const fast = new ChatTemplate(source, name, () => FIXED_NOW);
      const slow = new ChatTemplate(source, name, () => FIXED_NOW, false);
      for (const a of contents) {
        for (const b of contents) {
          const chat: ChatMessage[] = [{ role: 'user', content: a }, { role: 'assistant', content: b }];
          assert.deepEqual(outcome(() => fast.render(chat, false, tokens)), outcome(() => slow.render(chat, false, tokens)), `${JSON.stringify(chat)}`);
          // A guard on a length tells rows of other lengths apart: past the variant cap they render in full.
          if (!name.includes('length') || a === '') assert.equal(fast.skeletonVerdict(chat, false, tokens), '', `${name}: expected a skeleton for ${JSON.stringify(chat)}`);
          // Turn locations from the skeleton equal differential rendering through the interpreter.
          const regions = fast.regions(chat, tokens);
          if (regions) {
            const full = slow.render(chat, false, tokens);
            const want = chat.map((_, j) => locate(full, slow, chat, j, tokens));
            assert.deepEqual(regions.map((r, j) => r ?? want[j]), want, `${name}: regions of ${JSON.stringify(chat)}`);
          }
        }
      }
    });
  }
});

describe('a template that reads the clock keeps a skeleton guarded by what it read', () => {
  it('renders the new date once the clock reads another day', () => {
    const tokens: SpecialTokens = { bos_token: '', eos_token: '</s>', pad_token: '', unk_token: '' };
    const source = "Today {{ strftime_now('%d %b %Y') }}{% for m in messages %}|{{ m.content }}{% endfor %}";
    let now = new Date(2025, 0, 31, 23, 59, 0);
    const fast = new ChatTemplate(source, 'clock', () => now);
    const slow = new ChatTemplate(source, 'clock', () => now, false);
    const chat: ChatMessage[] = [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }];
    for (const day of [31, 31, 1, 2, 1]) {
      now = new Date(2025, day === 31 ? 0 : 1, day, 12, 0, 0);
      assert.equal(fast.render(chat, false, tokens), slow.render(chat, false, tokens));
      assert.equal(fast.skeletonVerdict(chat, false, tokens), '');
    }
    assert.equal(fast.render(chat, false, tokens), 'Today 01 Feb 2025|q|a');
  });
});

describe('a template that looks inside a content otherwise keeps no skeleton', () => {
  const tokens: SpecialTokens = { bos_token: '<s>', eos_token: '</s>', pad_token: '', unk_token: '' };
  const chat: ChatMessage[] = [{ role: 'user', content: '  Hi  ' }, { role: 'assistant', content: '' }];
  const cases: Record<string, string> = {
    'an unknown filter': '{% for m in messages %}{{ m.content | upper }}{% endfor %}',
    'an unknown method': "{% for m in messages %}{{ m.content.replace('H', 'J') }}{% endfor %}",
    'an index': '{% for m in messages %}{{ m.content[0] }}{% endfor %}',
    'a split by whitespace': '{% for m in messages %}{{ m.content.split() | length }}{% endfor %}',
    'a comparison between contents': '{% for m in messages %}{{ m.content == messages[0].content }}{% endfor %}',
    'a concatenation then a filter': "{% for m in messages %}{{ ('[' + m.content + ']') | trim }}{% endfor %}",
    'a ~ concatenation then a length': "{% for m in messages %}{{ (m.role ~ m.content) | length }}{% endfor %}",
    'a set block then a filter': '{% for m in messages %}{% set x %}[{{ m.content }}]{% endset %}{{ x | trim }}{% endfor %}',
    'a macro result then a filter': '{% macro show(m) %}<{{ m.content }}>{% endmacro %}{% for m in messages %}{{ show(m) | trim }}{% endfor %}',
    'a filter block': '{% for m in messages %}{% filter upper %}{{ m.content }}{% endfilter %}{% endfor %}',
    'json': '{{ messages | tojson }}',
    'a raise': "{{ raise_exception('no') }}",
  };
  for (const [name, source] of Object.entries(cases)) {
    it(name, () => {
      const fast = new ChatTemplate(source, name, () => FIXED_NOW);
      const slow = new ChatTemplate(source, name, () => FIXED_NOW, false);
      assert.deepEqual(outcome(() => fast.render(chat, false, tokens)), outcome(() => slow.render(chat, false, tokens)));
      const verdict = fast.skeletonVerdict(chat, false, tokens);
      assert.ok(verdict !== undefined && verdict !== '', `${name}: expected no skeleton, got ${JSON.stringify(verdict)}`);
    });
  }

  it('keeps one for output, concatenation and macros that only write contents out', () => {
    const source = "{% macro show(m) %}<{{ m.role }}>{{ m.content }}{% endmacro %}{% for m in messages %}{{ show(m) }}{{ '|' ~ m.content ~ '|' }}{{ 'x' + m.content }}{% endfor %}{% if add_generation_prompt %}<gen>{% endif %}";
    const fast = new ChatTemplate(source, 'writer');
    const slow = new ChatTemplate(source, 'writer', undefined, false);
    for (const content of ['', ' a ', 'b\nc']) {
      const msgs = chat.map((m) => ({ ...m, content }));
      assert.equal(fast.render(msgs, true, tokens), slow.render(msgs, true, tokens));
    }
    assert.equal(fast.skeletonVerdict(chat, true, tokens), '');
  });
});
