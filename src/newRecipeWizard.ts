/**
 * The New Recipe pickers: base model (local folders with config.json, the local Hugging Face
 * cache, or a typed hub id), dataset (workspace data files, or a path to create later) and
 * purpose; the text comes from the schema (language-server/newRecipe.ts). Arguments given by a
 * caller (tests, walkthrough links) skip the matching picker.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { z } from 'zod';
import { datasetColumns, DATA_EXTENSIONS, filesWith } from './language-server/datasets';
import { cachedModelIds, workspaceModelDirs } from './language-server/models';
import { PURPOSES, renderNewRecipe, type NewRecipeChoice, type Purpose } from './language-server/newRecipe';

/** Arguments a caller may pass to qloraStudio.newRecipe. */
export const newRecipeArgsSchema = z
  .object({
    name: z.string().optional(),
    baseModel: z.string().optional(),
    train: z.string().optional(),
    purpose: z.enum(['light', 'instruction', 'hard']).optional(),
  })
  .partial();

/** Parsed arguments of qloraStudio.newRecipe. */
export type NewRecipeArgs = z.infer<typeof newRecipeArgsSchema>;

const TYPE_ID = '$(edit) Type a Hugging Face model id…';
const LATER = '$(new-file) A file I will create: data/train.jsonl';

/** The data format a file's first rows look like. */
function formatOf(file: string, dir: string): NewRecipeChoice['format'] {
  const cols = datasetColumns(file, dir);
  if (cols.includes('messages')) return 'chat';
  if (cols.includes('instruction') || cols.includes('output')) return 'instruction';
  if (cols.includes('text')) return 'text';
  return 'chat';
}

async function pickModel(dir: string, given?: string): Promise<Pick<NewRecipeChoice, 'baseModel' | 'modelSource'> | undefined> {
  const local = workspaceModelDirs([dir], dir);
  const cached = cachedModelIds();
  const source = (id: string): NewRecipeChoice['modelSource'] => (local.includes(id) || fs.existsSync(path.join(dir, id, 'config.json')) ? 'local' : cached.includes(id) ? 'cache' : 'typed');
  if (given) return { baseModel: given, modelSource: source(given) };
  const items: vscode.QuickPickItem[] = [
    ...local.map((label) => ({ label, description: 'local folder with config.json' })),
    ...cached.map((label) => ({ label, description: 'in the local Hugging Face cache' })),
    { label: TYPE_ID, description: 'downloaded on the first run; gated models need a login' },
  ];
  const pick = await vscode.window.showQuickPick(items, { title: 'New Recipe (1/3): base model', ignoreFocusOut: true });
  if (!pick) return undefined;
  if (pick.label !== TYPE_ID) return { baseModel: pick.label, modelSource: source(pick.label) };
  const typed = await vscode.window.showInputBox({ title: 'Hugging Face model id', value: 'Qwen/Qwen2.5-0.5B-Instruct', ignoreFocusOut: true });
  return typed ? { baseModel: typed.trim(), modelSource: source(typed.trim()) } : undefined;
}

async function pickData(dir: string, given?: string): Promise<string | undefined> {
  if (given) return given;
  const files = filesWith([dir], dir, DATA_EXTENSIONS);
  const items = [...files.map((label) => ({ label, description: formatOf(label, dir) })), { label: LATER, description: 'not created yet' }];
  const pick = await vscode.window.showQuickPick(items, { title: 'New Recipe (2/3): training data', ignoreFocusOut: true });
  if (!pick) return undefined;
  return pick.label === LATER ? 'data/train.jsonl' : pick.label;
}

async function pickPurpose(given?: Purpose): Promise<Purpose | undefined> {
  if (given) return given;
  const items = (Object.keys(PURPOSES) as Purpose[]).map((k) => ({ label: PURPOSES[k].label, description: `r ${PURPOSES[k].r}, alpha ${2 * PURPOSES[k].r}`, key: k }));
  return (await vscode.window.showQuickPick(items, { title: 'New Recipe (3/3): purpose', ignoreFocusOut: true }))?.key;
}

/** Asks for what is not given and returns the recipe text, or undefined when cancelled. */
export async function newRecipeText(dir: string, args: NewRecipeArgs): Promise<string | undefined> {
  const model = await pickModel(dir, args.baseModel);
  if (!model) return undefined;
  const train = await pickData(dir, args.train);
  if (!train) return undefined;
  const purpose = await pickPurpose(args.purpose);
  if (!purpose) return undefined;
  const trainExists = fs.existsSync(path.resolve(dir, train));
  return renderNewRecipe({ ...model, train, trainExists, format: trainExists ? formatOf(train, dir) : 'chat', purpose });
}
