/**
 * Which recipe a dataset file belongs to: the nearest `*.qlora.yaml`/`*.qlora.yml`, walking up from
 * the file's folder to the workspace root, whose `data.train` or `data.eval` names the file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';

/** True for a recipe file name. */
export function isRecipeFile(name: string): boolean {
  return /\.qlora\.ya?ml$/.test(name);
}

/** The data files a recipe names (train and eval), resolved against its folder. */
export function recipeDataFiles(recipePath: string, text = fs.readFileSync(recipePath, 'utf8')): string[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch {
    return [];
  }
  const data = (doc as { data?: { train?: unknown; eval?: unknown } } | null)?.data;
  const dir = path.dirname(recipePath);
  return [data?.train, data?.eval].filter((v): v is string => typeof v === 'string').map((v) => path.resolve(dir, v));
}

/** The nearest recipe naming `dataPath`, or undefined; `root` bounds the walk up. */
export function findRecipeFor(dataPath: string, root: string): string | undefined {
  const target = path.resolve(dataPath);
  let dir = path.dirname(target);
  const top = path.resolve(root);
  for (;;) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir).filter(isRecipeFile).sort();
    } catch {
      names = [];
    }
    for (const name of names) {
      const recipe = path.join(dir, name);
      if (recipeDataFiles(recipe).includes(target)) return recipe;
    }
    const parent = path.dirname(dir);
    if (dir === top || parent === dir || !dir.startsWith(top)) return undefined;
    dir = parent;
  }
}
