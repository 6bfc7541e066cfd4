/**
 * The Hugging Face token, kept only in VS Code's SecretStorage (the OS keychain): never in
 * settings, files or logs. The local backend gets it as `HF_TOKEN` in its environment.
 */
import type * as vscode from 'vscode';

/** The SecretStorage key of the token. */
export const HF_TOKEN_SECRET = 'qloraStudio.huggingFaceToken';

/** The stored token, if any. */
export async function readHfToken(secrets: vscode.SecretStorage): Promise<string | undefined> {
  return (await secrets.get(HF_TOKEN_SECRET)) || undefined;
}

/**
 * Why `token` cannot be a Hugging Face access token, or undefined when it can: the hub's tokens
 * are one word of letters, digits, `_` and `-` (today they start with `hf_`).
 */
export function hfTokenProblem(token: string): string | undefined {
  const t = token.trim();
  if (!t) return 'Paste a token from https://huggingface.co/settings/tokens';
  if (!/^[A-Za-z0-9_-]{8,512}$/.test(t)) return 'A Hugging Face token is one word of letters, digits, "_" and "-" (like hf_…)';
  return undefined;
}
