import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { activateExtension, workspaceRoot } from '../suite/helpers';

describe('untrusted workspace', () => {
  it('is really untrusted', () => {
    assert.equal(vscode.workspace.isTrusted, false, 'the harness must open this suite with Workspace Trust on and the folder untrusted');
  });

  it('refuses to start a run and starts no backend', async () => {
    const { api } = await activateExtension();
    const recipe = path.join(workspaceRoot(), 'tiny', 'tiny.qlora.yaml');
    const res = await vscode.commands.executeCommand<{ refused?: string; message?: string }>('qloraStudio.startRun', vscode.Uri.file(recipe));
    assert.equal(res?.refused, 'untrusted');
    assert.match(res?.message ?? '', /trusted workspace/);
    assert.equal(api.backendPhase(), 'disconnected');
    assert.ok(!fs.existsSync(path.join(workspaceRoot(), 'runs')), 'no runs folder was created');
  });

  it('refuses the other commands that run code', async () => {
    for (const id of ['qloraStudio.connectBackend', 'qloraStudio.mergeAdapter', 'qloraStudio.openPlayground', 'qloraStudio.resumeRun']) {
      const res = await vscode.commands.executeCommand<{ refused?: string }>(id, {});
      assert.equal(res?.refused, 'untrusted', `${id} refuses`);
    }
    const { api } = await activateExtension();
    assert.equal(api.backendPhase(), 'disconnected');
  });
});
