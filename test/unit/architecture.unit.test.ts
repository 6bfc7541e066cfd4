/**
 * The extension's structure, read from its source: who may import whom, that the extension reads
 * none of the backend's files, and that every protocol method has a caller. Plain file reads, no
 * `vscode`: a change that breaks a rule fails here before any review.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { METHOD_NAMES } from '../../src/protocol';

const root = resolve(__dirname, '../..');
const src = join(root, 'src');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const files = tsFiles(src).map((p) => ({ rel: relative(src, p), text: readFileSync(p, 'utf8') }));

/** Module specifiers a file imports (static and dynamic). */
function imports(text: string): string[] {
  return [...text.matchAll(/(?:from\s+|import\()\s*'([^']+)'/g)].map((m) => m[1]!);
}

test('layering: ctx does not import views; views do not import commands; run state is vscode-free and imports nothing above it', () => {
  for (const f of files) {
    const specs = imports(f.text);
    if (f.rel === 'ctx.ts') assert.deepEqual(specs.filter((s) => s.startsWith('./views')), [], 'ctx.ts imports from views/');
    if (f.rel.startsWith('views/')) assert.deepEqual(specs.filter((s) => s.includes('/commands')), [], `${f.rel} imports from commands/`);
    if (f.rel.startsWith('runs/')) {
      assert.deepEqual(specs.filter((s) => s === 'vscode' || /\/(views|commands|ctx)\b/.test(s)), [], `${f.rel} must stay vscode-free and below views, commands and ctx`);
    }
    if (f.rel.startsWith('backend/')) assert.ok(!specs.includes('vscode'), `${f.rel} imports vscode`);
  }
  assert.ok(files.some((f) => f.rel.startsWith('runs/')), 'the run state lives in src/runs/');
});

test('the extension reads none of the backend files and builds no run-folder paths', () => {
  // Reading files is allowed only for what lives on this machine and is not the backend's: the local
  // workspace, the interpreter choice, the local launcher's own server token, and the SSH parts'
  // own inputs. Each file is named with its reason; any other file that imports fs fails.
  const mayReadFiles = new Map<string, string>([
    ['ctx.ts', 'the interpreter choice'],
    [join('commands', 'recipeCommands.ts'), 'writes a new recipe into the workspace'],
    [join('backend', 'localLauncher.ts'), "reads its own server's token file"],
    [join('backend', 'sshHosts.ts'), 'reads ~/.ssh/config and its Include files'],
    [join('backend', 'remoteTarget.ts'), "finds the backend wheel shipped inside the extension"],
    [join('backend', 'sshBootstrap.ts'), 'reads that wheel to send it to the host'],
    [join('backend', 'sshSync.ts'), "reads a recipe's local inputs to send them, writes a downloaded adapter"],
    ['newRecipeWizard.ts', 'checks whether a picked model is a local folder'],
    [join('views', 'datasetPanel.ts'), 'streams the dataset file it previews'],
    [join('views', 'datasetDoctorView.ts'), 'reads the recipe it opens at data.max_seq_len'],
  ]);
  // The dataset previewer and the recipe language server work without a backend, on the user's
  // inputs only: dataset files, recipes, tokenizer and model config files (workspace, hub cache).
  const mayReadInputs = [`dataset${sep}`, `language-server${sep}`];
  for (const f of files) {
    const fsImport = imports(f.text).some((s) => s === 'node:fs' || s === 'fs' || s === 'node:fs/promises' || s === 'fs/promises');
    if (fsImport) assert.ok(mayReadFiles.has(f.rel) || mayReadInputs.some((d) => f.rel.startsWith(d)), `${f.rel} imports fs: ask the backend instead`);
    if (f.rel.startsWith('protocol/') || f.rel.startsWith('recipe/')) continue;
    // The run folder's layout is the backend's: names of its parts never appear in the extension.
    for (const part of ['recipe.qlora.yaml', 'events.jsonl', "'checkpoints'", "'adapter')", 'qlora_studio.json']) {
      assert.ok(!f.text.includes(part), `${f.rel} names the run folder's ${part}`);
    }
  }
  assert.ok(!files.some((f) => f.rel === join('util', 'adapterInfo.ts')), 'adapter facts come from adapter.info');
});

test('hello is said once, by the connection; everything else reads its answer', () => {
  const sayers = files.filter((f) => /\b(?:request|send)\(\s*'hello'/.test(f.text)).map((f) => f.rel);
  assert.deepEqual(sayers, [join('backend', 'wsConnection.ts')]);
});

/**
 * Methods whose caller is being built elsewhere in the extension (the recipe language server).
 * The test fails when one of them gains a caller, so the list only shrinks; a new method can never
 * join it silently.
 */
const CALLERS_IN_PROGRESS: Record<string, string> = {
  'model.introspect': 'recipe completion in the language server',
  'memory.estimate': 'the memory CodeLens of the language server',
};

test('every protocol method has a caller in the extension', () => {
  const called = new Set<string>();
  for (const f of files) {
    if (f.rel.startsWith('protocol/')) continue;
    for (const m of f.text.matchAll(/\b(?:request|send)\(\s*'([A-Za-z.]+)'/g)) called.add(m[1]!);
  }
  const uncalled = METHOD_NAMES.filter((m) => !called.has(m) && !(m in CALLERS_IN_PROGRESS));
  assert.deepEqual(uncalled, [], `protocol methods nobody in src/ calls: ${uncalled.join(', ')}`);
  for (const m of Object.keys(CALLERS_IN_PROGRESS)) {
    assert.ok((METHOD_NAMES as string[]).includes(m), `${m} is not a protocol method any more: drop it from the list`);
    assert.ok(!called.has(m), `${m} has a caller now: drop it from CALLERS_IN_PROGRESS`);
  }
});
