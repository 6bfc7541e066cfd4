import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { adapterFolders, choosePython, isRecipeFile, recipesOutsideRuns, sortRecipes } from '../../src/util/paths';
import { SerialStarter } from '../../src/backend/serialStarter';

test('recipe files are *.qlora.yaml or *.qlora.yml only', () => {
  assert.ok(isRecipeFile('/w/examples/tiny/tiny.qlora.yaml'));
  assert.ok(isRecipeFile('x.QLORA.YML'));
  assert.ok(!isRecipeFile('/w/qlora.yaml'));
  assert.ok(!isRecipeFile('/w/a.qlora.yaml.bak'));
});

test('adapter folders come from adapter_config.json paths, unique and sorted', () => {
  assert.deepEqual(adapterFolders(['/r/b/adapter/adapter_config.json', '/r/a/adapter_config.json', '/r/a/adapter_config.json', '/r/c/config.json']), [
    '/r/a',
    '/r/b/adapter',
  ]);
});

test('sortRecipes puts shallow recipes first', () => {
  assert.deepEqual(sortRecipes(['/w/a/b/deep.qlora.yaml', '/w/top.qlora.yaml', '/w/a/mid.qlora.yaml'], '/w'), [
    '/w/top.qlora.yaml',
    '/w/a/mid.qlora.yaml',
    '/w/a/b/deep.qlora.yaml',
  ]);
});

test('choosePython: setting, then Python extension, then a .venv, then python3', () => {
  const exists = (p: string) => p === path.join('/repo', '.venv', 'bin', 'python');
  assert.equal(choosePython({ setting: ' /opt/py ', pythonExtension: '/ext/py', candidateDirs: ['/repo'], exists }).python, '/opt/py');
  assert.equal(choosePython({ setting: '', envOverride: '/env/py', pythonExtension: '/ext/py', candidateDirs: ['/repo'], exists }).python, '/env/py');
  assert.equal(choosePython({ setting: '', pythonExtension: '/ext/py', candidateDirs: ['/repo'], exists }).python, '/ext/py');
  const venv = choosePython({ setting: '', candidateDirs: ['/ws', '/repo'], exists });
  assert.equal(venv.python, '/repo/.venv/bin/python');
  assert.match(venv.source, /\/repo/);
  assert.equal(choosePython({ setting: '', candidateDirs: ['/ws'], exists }).python, 'python3');
});

test('SerialStarter never runs two starts at once and collapses queued requests', async () => {
  let active = 0;
  let maxActive = 0;
  let starts = 0;
  const s = new SerialStarter(async () => {
    active++;
    starts++;
    maxActive = Math.max(maxActive, active);
    await new Promise((r) => setTimeout(r, 20));
    active--;
    return starts;
  });
  const first = s.request();
  const queued = [s.request(), s.request(), s.request()];
  assert.equal(queued[0], queued[2], 'callers arriving during a start share one queued start');
  const results = await Promise.all([first, ...queued]);
  assert.equal(maxActive, 1);
  assert.equal(starts, 2);
  assert.deepEqual(results, [1, 2, 2, 2]);
  assert.equal(s.current(), undefined);
});

test('SerialStarter runs the queued start after a failed one', async () => {
  let n = 0;
  const s = new SerialStarter(async () => {
    n++;
    if (n === 1) throw new Error('boom');
    return n;
  });
  const a = s.request();
  const b = s.request();
  await assert.rejects(a, /boom/);
  assert.equal(await b, 2);
});

test('recipes inside run folders (their frozen copies) are not the workspace recipes', () => {
  const files = ['/w/tiny/tiny.qlora.yaml', '/w/tiny/runs/tiny-1/recipe.qlora.yaml', '/w/tiny/runs-other/x.qlora.yaml'];
  assert.deepEqual(recipesOutsideRuns(files, ['/w/tiny/runs/tiny-1']), ['/w/tiny/tiny.qlora.yaml', '/w/tiny/runs-other/x.qlora.yaml']);
  assert.deepEqual(recipesOutsideRuns(files, []), files);
});
