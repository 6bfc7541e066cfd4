/**
 * The SSH backend in real VS Code: Connect Backend -> the loopback SSH host (a private sshd started
 * here, test/ssh/sshd.sh) -> Start QLoRA Run -> the loss view fills with the remote run's points ->
 * Download Adapter brings the adapter into the workspace.
 * The remote folder is a fresh temp dir; its venv reuses the repo venv's packages (basePython), so
 * only our own wheel is installed, over ssh.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { QloraStudioApi } from '../../../src/extension';
import { activateExtension, EXTENSION_ID, ensureTinyExample, workspaceRoot } from './helpers';

describe('SSH backend: Connect Backend -> loopback host -> Start QLoRA Run', function () {
  this.timeout(15 * 60_000);
  let api: QloraStudioApi;
  let sshDir: string;
  let home: string;
  let extRoot: string;

  before(async () => {
    api = (await activateExtension()).api;
    extRoot = vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath;
    sshDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qls-it-sshd-'));
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'qls-it-remote-'));
    execFileSync('bash', [path.join(extRoot, 'test/ssh/sshd.sh'), 'start', sshDir], { stdio: 'pipe', timeout: 300_000 });
  });

  after(async () => {
    await vscode.commands.executeCommand('qloraStudio.connectBackend', 'local');
    for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(home)) process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    execFileSync('bash', [path.join(extRoot, 'test/ssh/sshd.sh'), 'stop', sshDir]);
    fs.rmSync(sshDir, { recursive: true, force: true });
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('connects to the SSH host from the Connect Backend command and bootstraps it', async () => {
    const entry = {
      name: 'loopback',
      host: 'qls-loopback',
      sshConfigFile: path.join(sshDir, 'ssh_config'),
      remoteDir: path.join(home, '.qlora-studio'),
      basePython: process.env['QLORA_STUDIO_PYTHON'] || path.join(extRoot, '.venv/bin/python'),
    };
    await vscode.workspace.getConfiguration('qloraStudio').update('backends', [entry], vscode.ConfigurationTarget.Global);
    const phase = await vscode.commands.executeCommand<unknown>('qloraStudio.connectBackend', 'loopback');
    assert.equal(phase, 'connected', `Connect Backend ended ${String(phase)}; last error: ${api.lastCommandError() ?? 'none'}`);
    assert.ok(fs.existsSync(path.join(home, '.qlora-studio/venv/bin/qlora-studio')), 'the remote venv was bootstrapped');
  });

  it('starts the tiny run on the host, the loss view fills with its points, Download Adapter brings the adapter back', async () => {
    const recipe = ensureTinyExample(workspaceRoot());
    const short = path.join(path.dirname(recipe), 'ssh-it.qlora.yaml');
    fs.writeFileSync(short, fs.readFileSync(recipe, 'utf8').replace(/max_steps: \d+/, 'max_steps: 6').replace(/(eval|save)_every: \d+/g, '$1_every: 6'));
    const started = await vscode.commands.executeCommand<unknown>('qloraStudio.startRun', vscode.Uri.file(short));
    assert.equal(typeof started, 'string', `Start QLoRA Run returned ${JSON.stringify(started)}; last error: ${api.lastCommandError() ?? 'none'}`);
    const runId = started as string;
    const final = await api.waitForRun(runId, 12 * 60_000);
    assert.equal(final.state, 'completed', `run ended ${final.state}: ${final.message ?? ''}`);
    assert.ok(final.run_dir?.startsWith(path.join(home, '.qlora-studio')), `the run lives on the remote: ${final.run_dir}`);
    const logged = fs
      .readFileSync(path.join(final.run_dir!, 'events.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as { type: string; data: Record<string, unknown> })
      .filter((e) => e.type === 'metrics' && typeof e.data['loss'] === 'number');
    const { points } = await api.getLossViewPoints(runId);
    assert.deepEqual((points['loss'] ?? []).map(([step]) => step), logged.map((e) => e.data['step']), 'one loss point per remote step');
    const local = await vscode.commands.executeCommand<unknown>('qloraStudio.downloadAdapter', runId);
    assert.equal(typeof local, 'string', `Download Adapter returned ${JSON.stringify(local)}; last error: ${api.lastCommandError() ?? 'none'}`);
    assert.ok((local as string).startsWith(workspaceRoot()), `the adapter lands in the workspace: ${String(local)}`);
    assert.ok(fs.existsSync(path.join(local as string, 'adapter_config.json')), 'the downloaded adapter holds adapter_config.json');
  });
});
