/**
 * Download Adapter: copies a finished run's adapter from the SSH host into the workspace
 * (`adapters/<run_id>/`), streamed through ssh with progress. With a local backend the adapter is
 * already on this machine and its folder is revealed instead.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { pickRun } from './pickers';

/** Download Adapter; returns the local adapter folder, or undefined when nothing was picked. */
export function downloadAdapter(ctx: Ctx) {
  return async (arg?: unknown): Promise<string | undefined> => {
    const runId = await pickRun(ctx, arg, 'Download Adapter', (r) => !!r.adapter_path);
    if (!runId) return undefined;
    const remote = ctx.runs.get(runId)?.adapter_path;
    if (!remote) throw new Error(`run ${runId} has no adapter yet: wait until it completes (or resume it)`);
    const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    if (!root) throw new Error('Open a folder first: the adapter is downloaded into the workspace.');
    const host = ctx.remoteLabel();
    if (!host) {
      void vscode.window.showInformationMessage(`The adapter of ${runId} is already on this machine: ${remote}`);
      return remote;
    }
    const parent = path.join(root, 'adapters', runId);
    const got = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `QLoRA: downloading the adapter of ${runId} from ${host}` }, (progress) =>
      ctx.downloadFromBackend(remote, parent, (n) => progress.report({ message: `${(n / 1e6).toFixed(1)} MB` })),
    );
    ctx.log.info(`[ssh] downloaded ${remote} from ${host} to ${got.dir} (${got.bytes} bytes)`);
    void vscode.window.showInformationMessage(`Adapter of ${runId} downloaded to ${path.relative(root, got.dir)}.`);
    return got.dir;
  };
}
