/**
 * Merge adapter: from the explorer (a folder holding adapter_config.json), the runs tree, the
 * palette, or tests (`{adapterDir, outDir, dtype}` skips the dialogs). Shows cancellable
 * progress, then reveals the merged folder and the verification figure.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { ResultOf } from '../protocol';
import { ADAPTER_MARKER, defaultMergeOutDir } from '../util/paths';
import { pathOf, runIdOf } from './pickers';
import type { Views } from './types';

type Dtype = 'bfloat16' | 'float16';

async function resolveAdapterDir(ctx: Ctx, views: Views, arg: unknown): Promise<string | undefined> {
  const direct = pathOf(arg, 'adapterDir');
  if (direct) return direct;
  const runId = runIdOf(arg);
  if (runId) {
    const run = ctx.runs.get(runId);
    const p = run?.adapter_path ?? (run?.run_dir ? path.join(run.run_dir, 'adapter') : undefined);
    if (!p) throw new Error(`run ${runId} has no adapter yet; wait for it to complete`);
    return p;
  }
  const dirs = await views.adapters.rescan();
  const fromRuns = ctx.runs.list().flatMap((r) => (r.adapter_path ? [r.adapter_path] : []));
  const all = [...new Set([...dirs, ...fromRuns])];
  if (all.length === 0) {
    void vscode.window.showInformationMessage('No adapter folder (one holding adapter_config.json) found. Finish a run first.');
    return undefined;
  }
  const pick = await vscode.window.showQuickPick(all.map((d) => ({ label: path.basename(path.dirname(d)) + '/' + path.basename(d), description: d, dir: d })), {
    title: 'Merge adapter',
    placeHolder: 'Pick the adapter to merge into its base model',
  });
  return pick?.dir;
}

/** Returns the merge result, or undefined when the user cancelled a dialog. */
export function mergeAdapter(ctx: Ctx, views: Views) {
  return async (arg?: unknown): Promise<ResultOf<'adapter.merge'> | undefined> => {
    const adapterDir = await resolveAdapterDir(ctx, views, arg);
    if (!adapterDir) return undefined;
    if (!fs.existsSync(path.join(adapterDir, ADAPTER_MARKER))) {
      throw new Error(`${adapterDir} holds no adapter_config.json; pick the folder of a LoRA adapter`);
    }
    const opts = (arg && typeof arg === 'object' ? arg : {}) as { outDir?: unknown; dtype?: unknown };
    let dtype: Dtype | undefined = opts.dtype === 'bfloat16' || opts.dtype === 'float16' ? opts.dtype : undefined;
    if (!dtype) {
      const pick = await vscode.window.showQuickPick(
        [
          { label: 'bfloat16', description: 'same range as fp32; the usual choice', dtype: 'bfloat16' as const },
          { label: 'float16', description: 'for GPUs or runtimes without bf16', dtype: 'float16' as const },
        ],
        { title: 'Merge adapter: dtype of the merged weights' },
      );
      dtype = pick?.dtype;
      if (!dtype) return undefined;
    }
    let outDir = typeof opts.outDir === 'string' ? opts.outDir : undefined;
    if (!outDir) {
      outDir = await vscode.window.showInputBox({
        title: 'Merge adapter: output folder',
        value: defaultMergeOutDir(adapterDir),
        validateInput: (v) => (!path.isAbsolute(v) ? 'Give an absolute folder path' : fs.existsSync(v) && fs.readdirSync(v).length ? 'This folder is not empty; pick a new one' : undefined),
      });
      if (!outDir) return undefined;
    }
    const conn = await ctx.backend();
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Merging ${path.basename(adapterDir)}`, cancellable: true },
      async (progress, token) => {
        const abort = new AbortController();
        const sub = token.onCancellationRequested(() => abort.abort());
        let done = 0;
        try {
          return await conn.request(
            'adapter.merge',
            { adapter_dir: adapterDir, out_dir: outDir, dtype },
            {
              signal: abort.signal,
              timeoutMs: 60 * 60_000,
              onPartial: (p) => {
                const pct = Math.round(p.fraction * 100);
                progress.report({ increment: Math.max(0, pct - done), message: p.message });
                done = Math.max(done, pct);
              },
            },
          );
        } finally {
          sub.dispose();
        }
      },
    );
    ctx.log.info(`merged ${adapterDir} into ${result.out_dir} (max |logit diff| ${String(result.max_abs_logit_diff)})`);
    const merged = vscode.Uri.file(result.out_dir);
    if (vscode.workspace.getWorkspaceFolder(merged)) void vscode.commands.executeCommand('revealInExplorer', merged);
    const diff = result.max_abs_logit_diff === null ? 'not measured' : result.max_abs_logit_diff.toExponential(2);
    // A bf16/fp16 merge rounds the merged weights, so the difference is read against the logits' size.
    const scale = typeof result.max_abs_logit === 'number' ? ` (largest |logit| ${result.max_abs_logit.toFixed(1)})` : '';
    void vscode.window.showInformationMessage(`Merged into ${result.out_dir} (${dtype}). Max |logit difference| vs base+adapter: ${diff}${scale}.`);
    return result;
  };
}
