import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { activateExtension } from './helpers';

describe('activation and command table', () => {
  it('activates without starting a backend', async () => {
    const { ext, api } = await activateExtension();
    assert.ok(ext.isActive);
    assert.equal(api.backendPhase(), 'disconnected', 'activation must not spawn the backend');
  });

  it('registers every contributed command and contributes every registered one', async () => {
    const { ext } = await activateExtension();
    const pkg = JSON.parse(fs.readFileSync(path.join(ext.extensionPath, 'package.json'), 'utf8')) as {
      contributes: { commands: Array<{ command: string; category: string }>; menus: Record<string, Array<{ command: string }>> };
    };
    const contributed = pkg.contributes.commands.map((c) => c.command).sort();
    // Views register their own focus/reset commands under their ids; those are not ours to contribute.
    const viewPrefixes = ['qloraStudio.runs.', 'qloraStudio.lossView.'];
    const registered = (await vscode.commands.getCommands(true))
      .filter((c) => c.startsWith('qloraStudio.') && !viewPrefixes.some((p) => c.startsWith(p)))
      .sort();
    assert.deepEqual(registered, contributed);
    for (const c of pkg.contributes.commands) assert.equal(c.category, 'QLoRA', `${c.command} has category QLoRA`);
    for (const [menu, items] of Object.entries(pkg.contributes.menus)) {
      for (const item of items) assert.ok(contributed.includes(item.command), `${menu} refers to ${item.command}, which is not contributed`);
    }
  });
});
