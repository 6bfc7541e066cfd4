/**
 * Merge adapter: from the explorer (a folder holding adapter_config.json), the runs tree, the
 * palette, or tests (`{adapterDir, outDir, dtype}` skips the dialogs). The backend names the base
 * model and suggests the output folder (`adapter.info`); shows cancellable progress, then reveals
 * the merged folder and the verification figure.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { ResultOf } from '../protocol';
import type { Views } from '../views';
import { resolveAdapter } from './adapterPick';

type Dtype = 'bfloat16' | 'float16';

/**
 * The merge check as a sentence a user can act on: the verdict, the tolerance the backend holds it
 * to, and the figure behind it.
 */
export function mergeVerdictText(r: Pick<ResultOf<'adapter.merge'>, 'max_abs_logit_diff' | 'max_abs_logit' | 'tolerance' | 'verified'>, dtype: string): string {
  const diff = r.max_abs_logit_diff;
  if (diff === null) return 'the merged model was not checked against base+adapter.';
  const figure = `max |logit difference| ${diff.toExponential(2)}`;
  const scale = typeof r.max_abs_logit === 'number' ? `, largest |logit| ${r.max_abs_logit.toFixed(1)}` : '';
  const tol = typeof r.tolerance === 'number' ? r.tolerance.toExponential(2) : undefined;
  if (r.verified === true) return `Verified: it gives the same outputs as base+adapter within ${dtype} rounding (${figure} ≤ tolerance ${tol ?? '?'}${scale}).`;
  if (r.verified === false) return `the check FAILED: its outputs differ from base+adapter beyond ${dtype} rounding (${figure} > tolerance ${tol ?? '?'}${scale}). Try float32 or check the base model.`;
  return `Check: ${figure}${scale} (the backend gave no verdict).`;
}

/** Returns the merge result, or undefined when the user cancelled a dialog. */
export function mergeAdapter(ctx: Ctx, views: Views) {
  return async (arg?: unknown): Promise<ResultOf<'adapter.merge'> | undefined> => {
    const info = await resolveAdapter(ctx, views, arg, 'Merge adapter');
    if (!info) return undefined;
    const adapterDir = info.adapter_dir;
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
        // The backend's suggestion; it refuses a folder that is not empty, with a message saying so.
        value: info.merge_out_dir,
        validateInput: (v) => (path.isAbsolute(v) ? undefined : 'Give an absolute folder path'),
      });
      if (!outDir) return undefined;
    }
    const conn = await ctx.backend();
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Merging ${path.basename(adapterDir)} into ${info.base_model}`, cancellable: true },
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
    const verdict = mergeVerdictText(result, dtype);
    if (result.verified === false) void vscode.window.showWarningMessage(`Merged into ${result.out_dir}, but ${verdict}`);
    else void vscode.window.showInformationMessage(`Merged into ${result.out_dir}. ${verdict}`);
    return result;
  };
}
