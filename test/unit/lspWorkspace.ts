/**
 * A throw-away workspace for the language-server tests: a local model folder with a Llama-shaped
 * config.json, instruction and text data files, and a .jinja chat template.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before } from 'node:test';
import { LspClient } from './lspHarness';

/** An 8B Llama-3 shape: enough to give a memory estimate of several GiB. */
export const LLAMA_8B = {
  model_type: 'llama', hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32,
  num_key_value_heads: 8, vocab_size: 128256, max_position_embeddings: 8192,
};

/** The workspace folder and helpers to name files in it. */
export interface TestWorkspace {
  dir: string;
  uri(rel: string): string;
  dispose(): void;
}

/** Creates the workspace under the OS temp folder. */
export function makeWorkspace(): TestWorkspace {
  const dir = mkdtempSync(join(tmpdir(), 'qlora-lsp-'));
  mkdirSync(join(dir, 'models', 'llama-8b'), { recursive: true });
  writeFileSync(join(dir, 'models', 'llama-8b', 'config.json'), JSON.stringify(LLAMA_8B));
  mkdirSync(join(dir, 'data'));
  writeFileSync(join(dir, 'data', 'instr.jsonl'), '{"question": "2+2?", "context": "", "answer": "4"}\n{"question": "Capital of France?", "answer": "Paris"}\n');
  writeFileSync(join(dir, 'data', 'empty.jsonl'), '');
  mkdirSync(join(dir, 'templates'));
  writeFileSync(join(dir, 'templates', 'mine.jinja'), '{% for m in messages %}{{ m.content }}{% endfor %}');
  return {
    dir,
    uri: (rel) => pathToFileURL(join(dir, rel)).href,
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The real server on a fresh workspace for one test file: started before its tests, stopped after. */
export function serverForTests(): { readonly lsp: LspClient; readonly ws: TestWorkspace } {
  const state = {} as { lsp: LspClient; ws: TestWorkspace };
  before(async () => {
    state.ws = makeWorkspace();
    state.lsp = await LspClient.start(state.ws.dir);
  });
  after(async () => {
    await state.lsp.stop();
    state.ws.dispose();
  });
  return state;
}
