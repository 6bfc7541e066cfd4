/**
 * New Recipe and Show Logs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';

const TEMPLATE = `# QLoRA Studio recipe: hover a key for its documentation.
base_model: meta-llama/Llama-3.2-1B-Instruct   # a Hugging Face id or a local folder
data:
  train: data/train.jsonl          # chat rows: {"messages": [{"role": ..., "content": ...}]}
  eval_split: 0.05
  chat_template: tokenizer
  train_on: assistant
  max_seq_len: 2048
lora:
  r: 16
  alpha: 32
  target_modules: all-linear
training:
  epochs: 1
  lr: 2.0e-4
  grad_accum: 8
output:
  dir: runs
`;

/** Writes a commented starter recipe into the first workspace folder and opens it. */
export function newRecipe(ctx: Ctx) {
  return async (arg?: unknown): Promise<string | undefined> => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!folder) throw new Error('Open a folder first: recipes live in the workspace.');
    const given = arg && typeof arg === 'object' ? (arg as { name?: unknown }).name : undefined;
    const name =
      typeof given === 'string'
        ? given
        : await vscode.window.showInputBox({
            title: 'New Recipe',
            value: 'my-run.qlora.yaml',
            validateInput: (v) => (/^[\w.-]+\.qlora\.ya?ml$/.test(v) ? undefined : 'Name it like my-run.qlora.yaml'),
          });
    if (!name) return undefined;
    const target = path.join(folder.uri.fsPath, name);
    if (fs.existsSync(target)) throw new Error(`${target} already exists; choose another name`);
    await vscode.workspace.fs.writeFile(vscode.Uri.file(target), Buffer.from(TEMPLATE, 'utf8'));
    await vscode.window.showTextDocument(vscode.Uri.file(target));
    ctx.log.info(`created ${target}`);
    return target;
  };
}

/** Show Logs: reveals the QLoRA Studio log channel. */
export function showLogs(ctx: Ctx) {
  return () => ctx.log.show();
}
