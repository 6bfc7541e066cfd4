/**
 * Backend commands: Show Logs, and the Hugging Face token (set / clear) that the
 * local backend gets in its environment as HF_TOKEN, so gated models and datasets load.
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { HF_TOKEN_SECRET, hfTokenProblem } from '../secrets';
import { givenOrAsked } from './pickers';

/** Show Logs: reveals the QLoRA Studio log channel. */
export function showLogs(ctx: Ctx) {
  return () => ctx.log.show();
}

/**
 * Set Hugging Face Token: asks for the token (masked) or takes `{token}` from a test, keeps it in
 * SecretStorage only, and restarts a running backend so it gets the token. Returns true when set.
 */
export function setHfToken(ctx: Ctx) {
  return async (arg?: unknown): Promise<boolean> => {
    const token = await givenOrAsked(arg, 'token', {
      title: 'QLoRA: Hugging Face token',
      prompt: 'A read token from https://huggingface.co/settings/tokens, for gated base models and datasets. Kept in VS Code\'s secret storage.',
      password: true,
      ignoreFocusOut: true,
      validateInput: hfTokenProblem,
    });
    if (token === undefined) return false;
    const problem = hfTokenProblem(token);
    if (problem) throw new Error(problem);
    await ctx.ext.secrets.store(HF_TOKEN_SECRET, token.trim());
    ctx.log.info('Hugging Face token stored in secret storage');
    await ctx.restartBackendIfRunning();
    void vscode.window.showInformationMessage('Hugging Face token saved. The backend uses it for downloads from now on.');
    return true;
  };
}

/** Clear Hugging Face Token: forgets the token and restarts a running backend without it. */
export function clearHfToken(ctx: Ctx) {
  return async (): Promise<boolean> => {
    await ctx.ext.secrets.delete(HF_TOKEN_SECRET);
    ctx.log.info('Hugging Face token removed from secret storage');
    await ctx.restartBackendIfRunning();
    void vscode.window.showInformationMessage('Hugging Face token cleared.');
    return true;
  };
}
