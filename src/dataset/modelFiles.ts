/**
 * Where a recipe's tokenizer and chat template come from, without a backend: `tokenizer` or
 * `base_model` as a local folder (relative to the recipe), else the Hugging Face hub cache
 * (`$HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`: models--org--name/snapshots/<rev>).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Hub cache folders to look in, in order. */
export function hubCacheDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs: string[] = [];
  if (env['HF_HUB_CACHE']) dirs.push(env['HF_HUB_CACHE']);
  if (env['HF_HOME']) dirs.push(path.join(env['HF_HOME'], 'hub'));
  dirs.push(path.join(os.homedir(), '.cache', 'huggingface', 'hub'));
  return dirs;
}

function snapshotIn(cache: string, id: string, revision: string | undefined): string | undefined {
  const repo = path.join(cache, `models--${id.replace(/\//g, '--')}`);
  const snapshots = path.join(repo, 'snapshots');
  if (!fs.existsSync(snapshots)) return undefined;
  const ref = path.join(repo, 'refs', revision ?? 'main');
  if (fs.existsSync(ref)) {
    const commit = fs.readFileSync(ref, 'utf8').trim();
    if (fs.existsSync(path.join(snapshots, commit))) return path.join(snapshots, commit);
  }
  if (revision && fs.existsSync(path.join(snapshots, revision))) return path.join(snapshots, revision);
  const all = fs.readdirSync(snapshots).map((d) => path.join(snapshots, d)).filter((d) => fs.existsSync(path.join(d, 'tokenizer.json')));
  all.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  return all[0];
}

/**
 * The folder holding `tokenizer.json` for `model` (a folder or hub id), or an error message
 * saying what to do.
 */
export function tokenizerFolder(model: string, recipeDir: string, revision?: string, caches = hubCacheDirs()): { folder: string } | { error: string } {
  const local = path.resolve(recipeDir, model.startsWith('~') ? path.join(os.homedir(), model.slice(1)) : model);
  if (fs.existsSync(local) && fs.statSync(local).isDirectory()) {
    if (fs.existsSync(path.join(local, 'tokenizer.json'))) return { folder: local };
    return { error: `${local} has no tokenizer.json: the preview needs a fast tokenizer file (save one with tokenizer.save_pretrained)` };
  }
  if (/^[\w.-]+\/[\w.-]+$/.test(model)) {
    for (const cache of caches) {
      const snap = snapshotIn(cache, model, revision);
      if (snap && fs.existsSync(path.join(snap, 'tokenizer.json'))) return { folder: snap };
    }
    return { error: `${model} is not in the Hugging Face cache (${caches.join(', ')}); download it once (huggingface-cli download ${model} tokenizer.json tokenizer_config.json) or point base_model at a local folder` };
  }
  return { error: `base_model ${model} is neither a folder (looked for ${local}) nor a Hugging Face id (org/name)` };
}

/** Reads a JSON file of a tokenizer folder; a missing optional file is `{}`. */
export function readJson(file: string, optional = false): Record<string, unknown> {
  if (optional && !fs.existsSync(file)) return {};
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
}
