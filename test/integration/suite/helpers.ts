/**
 * Helpers shared by the integration tests (bundled into each test file).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { QloraStudioApi } from '../../../src/extension';

export const EXTENSION_ID = 'qlora-studio.qlora-studio';

/** The extension, activated; returns its API. */
export async function activateExtension(): Promise<{ ext: vscode.Extension<QloraStudioApi>; api: QloraStudioApi; ms: number }> {
  const ext = vscode.extensions.getExtension<QloraStudioApi>(EXTENSION_ID);
  if (!ext) throw new Error(`extension ${EXTENSION_ID} is not installed in this VS Code`);
  const t0 = performance.now();
  const api = await ext.activate();
  return { ext, api, ms: performance.now() - t0 };
}

/** The workspace folder the harness opened (a copy of examples/). */
export function workspaceRoot(): string {
  const f = vscode.workspace.workspaceFolders?.[0];
  if (!f) throw new Error('the integration suite needs a workspace folder (a copy of examples/)');
  return f.uri.fsPath;
}

/** Builds the tiny example's model and data when the workspace copy lacks them. */
export function ensureTinyExample(root: string): string {
  const tiny = path.join(root, 'tiny');
  if (!fs.existsSync(path.join(tiny, 'model', 'config.json')) || !fs.existsSync(path.join(tiny, 'data', 'train.jsonl'))) {
    const python = process.env['QLORA_STUDIO_PYTHON'] || 'python3';
    execFileSync(python, [path.join(tiny, 'make_tiny.py')], { cwd: tiny, stdio: 'pipe', timeout: 300_000 });
  }
  return path.join(tiny, 'tiny.qlora.yaml');
}

/** Polls `probe` every 200 ms until it returns a value (not undefined); fails after timeoutMs. */
export async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
