/**
 * Reads what the playground needs about an adapter without `vscode`: its base model (from
 * adapter_config.json, else the run's frozen recipe) and the recipe's generation defaults.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { generationSchema } from '../recipe/schema';
import type { SamplingParams } from '../protocol/webview';
import { ADAPTER_MARKER } from './paths';

/** The frozen recipe next to a run's adapter (`runs/<id>/adapter` → `runs/<id>/recipe.qlora.yaml`). */
export function frozenRecipeFor(adapterDir: string): string | undefined {
  const p = path.join(path.dirname(adapterDir), 'recipe.qlora.yaml');
  return fs.existsSync(p) ? p : undefined;
}

function readRecipeObject(recipePath: string): Record<string, unknown> | undefined {
  try {
    const doc: unknown = parseYaml(fs.readFileSync(recipePath, 'utf8'));
    return doc && typeof doc === 'object' ? (doc as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The base model an adapter was trained on. adapter_config.json's `base_model_name_or_path`
 * wins; a relative path there or in the recipe is resolved against `recipeDir`.
 * Throws with what to fix when neither names a model.
 */
export function adapterBaseModel(adapterDir: string, recipeDir?: string): string {
  const cfgPath = path.join(adapterDir, ADAPTER_MARKER);
  let base: string | undefined;
  try {
    const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
    if (typeof cfg['base_model_name_or_path'] === 'string' && cfg['base_model_name_or_path']) base = cfg['base_model_name_or_path'];
  } catch (err) {
    throw new Error(`${cfgPath} is missing or not JSON (${(err as Error).message}); pick a folder that holds a LoRA adapter`);
  }
  const frozen = frozenRecipeFor(adapterDir);
  if (!base && frozen) {
    const b = readRecipeObject(frozen)?.['base_model'];
    if (typeof b === 'string') base = b;
  }
  if (!base) throw new Error(`${cfgPath} names no base_model_name_or_path; add it or open the playground from the run's recipe`);
  const looksRelative = base.startsWith('./') || base.startsWith('../');
  return looksRelative && recipeDir ? path.resolve(recipeDir, base) : base;
}

/** The recipe's `generation:` section with defaults filled; schema defaults when unreadable. */
export function generationDefaults(recipePath: string | undefined): SamplingParams {
  const raw = recipePath ? readRecipeObject(recipePath)?.['generation'] : undefined;
  const parsed = generationSchema.safeParse(raw ?? {});
  return parsed.success ? parsed.data : generationSchema.parse({});
}
