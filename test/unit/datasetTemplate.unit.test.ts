/**
 * The TypeScript chat-template renderer equals Python jinja2 on every render of
 * test/fixtures/dataset-render/renders.json (scripts/gen_render_vectors.py writes it), including
 * the probes for the places where the JavaScript engine alone differs from jinja2.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Template } from '@huggingface/jinja';
import { ChatTemplate, type ChatMessage, type SpecialTokens } from '../../src/dataset/template';
import { RowError } from '../../src/dataset/rowError';

interface RenderCase { template: string; conversation: string; add_generation_prompt: boolean; text?: string; error?: string }
interface RenderFile {
  tokens: SpecialTokens;
  conversations: Record<string, ChatMessage[]>;
  templates: Record<string, string>;
  cases: RenderCase[];
}

const file = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'dataset-render', 'renders.json'), 'utf8')) as RenderFile;

/** The instant the Python side rendered `strftime_now` at (scripts/gen_render_vectors.py). */
const FIXED_NOW = new Date(2025, 5, 1, 12, 0, 0);

function renderTs(c: RenderCase): { text?: string; error?: string } {
  const template = new ChatTemplate(file.templates[c.template]!, c.template, () => FIXED_NOW);
  try {
    return { text: template.render(file.conversations[c.conversation]!, c.add_generation_prompt, file.tokens) };
  } catch (err) {
    if (err instanceof RowError) return { error: err.kind };
    throw err;
  }
}

describe('chat template rendering equals Python jinja2', () => {
  for (const name of Object.keys(file.templates)) {
    it(name, () => {
      const cases = file.cases.filter((c) => c.template === name);
      assert.ok(cases.length > 0);
      for (const c of cases) {
        const got = renderTs(c);
        const want = c.error !== undefined ? { error: c.error } : { text: c.text };
        assert.deepEqual(got, want, `${name} / ${c.conversation} / generation prompt ${c.add_generation_prompt}`);
      }
    });
  }

  it('closes each known difference of the JavaScript engine', () => {
    const probe = (name: string, conversation: string) =>
      file.cases.find((c) => c.template === name && c.conversation === conversation && !c.add_generation_prompt)!;
    // An empty system message is not equal to false in Python; 0 is.
    assert.equal(probe('probe-empty-system-vs-false', 'empty_system').text, 'TTrueFalse');
    assert.deepEqual(renderTs(probe('probe-empty-system-vs-false', 'empty_system')), { text: 'TTrueFalse' });
    // str.lstrip/rstrip/strip honour their chars argument.
    const strip = probe('probe-strip-chars', 'padded');
    assert.deepEqual(renderTs(strip), { text: strip.text });
    assert.match(strip.text!, /\[spaced out \n\|/);
    // The engine's own `==` differs (the string builtins are patched on its shared class, so
    // only the operator can be compared unpatched), so the equality above is our doing.
    const plain = (name: string, conversation: string) =>
      new Template(file.templates[name]!).render({ messages: file.conversations[conversation], ...file.tokens });
    assert.notEqual(plain('probe-empty-system-vs-false', 'empty_system'), 'TTrueFalse');
  });
});
