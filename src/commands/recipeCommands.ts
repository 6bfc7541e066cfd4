/**
 * New Recipe: a commented starter recipe in the workspace.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { givenOrAsked } from './pickers';
import { newRecipeArgsSchema, newRecipeText } from '../newRecipeWizard';

/** Writes a commented recipe (model, data and purpose picked, defaults from the schema) into the first workspace folder and opens it. */
export function newRecipe(ctx: Ctx) {
  return async (arg?: unknown): Promise<string | undefined> => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!folder) throw new Error('Open a folder first: recipes live in the workspace.');
    const args = newRecipeArgsSchema.safeParse(arg ?? {}).data ?? {};
    const name = await givenOrAsked(args, 'name', {
      title: 'New Recipe',
      value: 'my-run.qlora.yaml',
      validateInput: (v) => (/^[\w.-]+\.qlora\.ya?ml$/.test(v) ? undefined : 'Name it like my-run.qlora.yaml'),
    });
    if (!name) return undefined;
    const target = path.join(folder.uri.fsPath, name);
    if (fs.existsSync(target)) throw new Error(`${target} already exists; choose another name`);
    const text = await newRecipeText(folder.uri.fsPath, args);
    if (!text) return undefined;
    await vscode.workspace.fs.writeFile(vscode.Uri.file(target), Buffer.from(text, 'utf8'));
    await vscode.window.showTextDocument(vscode.Uri.file(target));
    ctx.log.info(`created ${target}`);
    return target;
  };
}
