import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS, untrustedCommandIds } from '../../src/commands/ids';

interface Manifest {
  main: string;
  activationEvents: string[];
  capabilities: { untrustedWorkspaces: { supported: string | boolean; description?: string } };
  contributes: {
    commands: Array<{ command: string; title: string; category: string }>;
    menus: Record<string, Array<{ command: string; when?: string }>>;
    views: Record<string, Array<{ id: string; type?: string }>>;
    viewsContainers: { activitybar: Array<{ id: string }> };
    configuration: { properties: Record<string, { default: unknown }> };
    walkthroughs: Array<{ steps: unknown[] }>;
    languages: Array<{ id: string; filenamePatterns: string[] }>;
  };
}

const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as Manifest;

test('the manifest contributes exactly the command table, all in category QLoRA', () => {
  const contributed = pkg.contributes.commands.map((c) => c.command).sort();
  assert.deepEqual(contributed, COMMANDS.map((c) => c.id).sort());
  for (const c of pkg.contributes.commands) {
    assert.equal(c.category, 'QLoRA');
    assert.equal(c.title, COMMANDS.find((m) => m.id === c.command)!.title);
  }
});

test('the issue\'s palette commands are present', () => {
  const titles = pkg.contributes.commands.map((c) => c.title);
  for (const t of ['Start QLoRA Run', 'Stop Run', 'Resume Run', 'Attach to Run', 'Open Playground', 'Merge adapter', 'New Recipe', 'Connect Backend', 'Show Logs']) {
    assert.ok(titles.includes(t), t);
  }
});

test('menus only name contributed commands; tree-only commands are hidden from the palette', () => {
  const ids = new Set(pkg.contributes.commands.map((c) => c.command));
  for (const [menu, items] of Object.entries(pkg.contributes.menus)) for (const i of items) assert.ok(ids.has(i.command), `${menu}: ${i.command}`);
  const hidden = new Set(pkg.contributes.menus['commandPalette']!.filter((i) => i.when === 'false').map((i) => i.command));
  for (const c of COMMANDS) assert.equal(hidden.has(c.id), !c.palette, c.id);
});

test('Merge adapter shows in the explorer only on adapter folders', () => {
  const item = pkg.contributes.menus['explorer/context']!.find((i) => i.command === 'qloraStudio.mergeAdapter');
  assert.ok(item?.when?.includes('resourcePath in qloraStudio.adapterFolders'));
  assert.ok(item?.when?.includes('explorerResourceIsFolder'));
});

test('views, container, settings, walkthrough and trust are declared', () => {
  assert.equal(pkg.main, './out/extension.js');
  assert.ok(pkg.contributes.viewsContainers.activitybar.some((c) => c.id === 'qlora'));
  const views = pkg.contributes.views['qlora']!;
  assert.deepEqual(views.map((v) => v.id), ['qloraStudio.runs', 'qloraStudio.lossView']);
  assert.equal(views[1]!.type, 'webview');
  for (const key of ['qloraStudio.pythonPath', 'qloraStudio.runsDir', 'qloraStudio.backends']) assert.ok(key in pkg.contributes.configuration.properties, key);
  assert.equal(pkg.contributes.configuration.properties['qloraStudio.pythonPath']!.default, '');
  assert.ok(pkg.contributes.walkthroughs[0]!.steps.length >= 3);
  assert.equal(pkg.capabilities.untrustedWorkspaces.supported, 'limited');
  assert.ok(pkg.activationEvents.every((e) => !e.startsWith('*')), 'no eager activation');
  assert.ok(pkg.contributes.languages.some((l) => l.id === 'qlora-recipe' && l.filenamePatterns.includes('*.qlora.yaml')));
});

test('only commands that run nothing stay available when untrusted (the token commands only touch secret storage)', () => {
  assert.deepEqual(untrustedCommandIds().sort(), ['qloraStudio.clearHfToken', 'qloraStudio.newRecipe', 'qloraStudio.openDatasetPreview', 'qloraStudio.openRunFolder', 'qloraStudio.openRunRecipe', 'qloraStudio.pickDatasetRecipe', 'qloraStudio.runDatasetDoctor', 'qloraStudio.setHfToken', 'qloraStudio.showLogs']);
});
