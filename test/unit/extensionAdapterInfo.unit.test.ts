import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { adapterBaseModel, frozenRecipeFor, generationDefaults } from '../../src/util/adapterInfo';

function runDir(): { root: string; adapter: string } {
  const root = mkdtempSync(path.join(tmpdir(), 'qlora-adapter-'));
  const adapter = path.join(root, 'run-1', 'adapter');
  mkdirSync(adapter, { recursive: true });
  return { root, adapter };
}

test('the base model comes from adapter_config.json, relative paths resolved against the recipe', () => {
  const { root, adapter } = runDir();
  try {
    writeFileSync(path.join(adapter, 'adapter_config.json'), JSON.stringify({ base_model_name_or_path: './model', r: 16 }));
    assert.equal(adapterBaseModel(adapter, '/ws/tiny'), path.resolve('/ws/tiny', 'model'));
    writeFileSync(path.join(adapter, 'adapter_config.json'), JSON.stringify({ base_model_name_or_path: 'meta-llama/Llama-3.2-1B' }));
    assert.equal(adapterBaseModel(adapter, '/ws/tiny'), 'meta-llama/Llama-3.2-1B');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('without a base in adapter_config.json the frozen recipe names it; with neither the error says what to do', () => {
  const { root, adapter } = runDir();
  try {
    writeFileSync(path.join(adapter, 'adapter_config.json'), JSON.stringify({ r: 16 }));
    assert.throws(() => adapterBaseModel(adapter), /names no base_model_name_or_path/);
    writeFileSync(path.join(root, 'run-1', 'recipe.qlora.yaml'), 'base_model: org/base\ngeneration:\n  temperature: 0\n  max_new_tokens: 12\n');
    assert.equal(frozenRecipeFor(adapter), path.join(root, 'run-1', 'recipe.qlora.yaml'));
    assert.equal(adapterBaseModel(adapter), 'org/base');
    const g = generationDefaults(frozenRecipeFor(adapter));
    assert.equal(g.temperature, 0);
    assert.equal(g.max_new_tokens, 12);
    assert.equal(g.top_p, 0.9, 'unset keys get schema defaults');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a folder without adapter_config.json is refused with a hint; unreadable recipes give defaults', () => {
  const { root, adapter } = runDir();
  try {
    assert.throws(() => adapterBaseModel(adapter), /missing or not JSON.*LoRA adapter/);
    writeFileSync(path.join(root, 'bad.qlora.yaml'), 'generation: [unclosed');
    assert.equal(generationDefaults(path.join(root, 'bad.qlora.yaml')).max_new_tokens, 256);
    assert.equal(generationDefaults(undefined).top_k, 50);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
