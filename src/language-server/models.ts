/**
 * Base models on this machine: folders in the local Hugging Face cache and workspace folders that
 * hold a config.json, their config, and the linear module names LoRA can target. Never downloads.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { walkFolders } from './walk';

/** The hub cache folder, as huggingface_hub resolves it. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['HF_HUB_CACHE']) return env['HF_HUB_CACHE'];
  const home = env['HF_HOME'] ?? path.join(env['XDG_CACHE_HOME'] ?? path.join(os.homedir(), '.cache'), 'huggingface');
  return path.join(home, 'hub');
}

/** Hub ids of the models in the local cache (`models--org--name` folders). */
export function cachedModelIds(cacheDir = hubCacheDir()): string[] {
  try {
    return fs
      .readdirSync(cacheDir)
      .filter((d) => d.startsWith('models--'))
      .map((d) => d.slice('models--'.length).split('--').join('/'))
      .sort();
  } catch {
    return [];
  }
}

/** config.json of a cached hub model (the snapshot `refs/main` names, else any), if present. */
export function cachedConfigPath(id: string, cacheDir = hubCacheDir()): string | undefined {
  const repo = path.join(cacheDir, `models--${id.split('/').join('--')}`);
  const snapshots = path.join(repo, 'snapshots');
  let names: string[] = [];
  try {
    const main = fs.readFileSync(path.join(repo, 'refs', 'main'), 'utf8').trim();
    names = [main];
  } catch {
    // no refs/main: look at every snapshot
  }
  try {
    names.push(...fs.readdirSync(snapshots));
  } catch {
    return undefined;
  }
  for (const n of names) {
    const p = path.join(snapshots, n, 'config.json');
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

/** Whether `base_model` names a local folder (the rule of docs/recipe.md). */
export function isLocalModel(name: string, recipeDir: string): boolean {
  return /^(\.{1,2}\/|\/|~)/.test(name) || fs.existsSync(path.join(recipeDir, name, 'config.json'));
}

/** The config.json path for `base_model`, local or cached; undefined when neither has it. */
export function modelConfigPath(name: string, recipeDir: string): string | undefined {
  if (isLocalModel(name, recipeDir)) {
    const dir = name.startsWith('~') ? path.join(os.homedir(), name.slice(1)) : path.resolve(recipeDir, name);
    const p = path.join(dir, 'config.json');
    return fs.existsSync(p) ? p : undefined;
  }
  return cachedConfigPath(name);
}

/** The parsed config.json, or undefined when missing or not a JSON object. */
export function readModelConfig(name: string, recipeDir: string): Record<string, unknown> | undefined {
  const p = modelConfigPath(name, recipeDir);
  if (!p) return undefined;
  try {
    const v: unknown = JSON.parse(fs.readFileSync(p, 'utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const LLAMA = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const NEOX = ['query_key_value', 'dense', 'dense_h_to_4h', 'dense_4h_to_h'];
/** Linear module names by `model_type`; anything unlisted is assumed Llama-shaped. */
const LINEARS: Readonly<Record<string, readonly string[]>> = {
  phi3: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'],
  phi: ['q_proj', 'k_proj', 'v_proj', 'dense', 'fc1', 'fc2'],
  gpt2: ['c_attn', 'c_proj', 'c_fc'],
  gpt_neox: NEOX,
  falcon: NEOX,
  bloom: NEOX,
  opt: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc1', 'fc2'],
  gpt_bigcode: ['c_attn', 'c_proj', 'c_fc'],
};

/** The linear module names LoRA can target in a model of this config, and whether they are known. */
export function linearModules(config: Record<string, unknown> | undefined): { names: readonly string[]; known: boolean } {
  const type = typeof config?.['model_type'] === 'string' ? (config['model_type'] as string) : undefined;
  const listed = type ? LINEARS[type] : undefined;
  return listed ? { names: listed, known: true } : { names: LLAMA, known: type !== undefined };
}

/** Workspace folders (up to `depth` levels) that hold a config.json, relative to `from`. */
export function workspaceModelDirs(roots: readonly string[], from: string, depth = 3): string[] {
  const out: string[] = [];
  walkFolders(roots, depth, (dir, entries) => {
    if (entries.some((e) => e.isFile() && e.name === 'config.json')) {
      const rel = path.relative(from, dir);
      out.push(rel.startsWith('..') ? rel : `./${rel}`);
    }
    return true;
  });
  return out;
}
