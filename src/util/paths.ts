/**
 * Path rules without `vscode`: which files are recipes, which folders hold adapters, and which
 * Python interpreter starts the backend.
 */
import * as path from 'node:path';

/** Glob of recipe files for `workspace.findFiles` and file watchers. */
export const RECIPE_GLOB = '**/*.qlora.{yaml,yml}';
/** The file that makes a folder a LoRA adapter (peft writes it). */
export const ADAPTER_MARKER = 'adapter_config.json';
/** Glob of adapter markers; their folders get the explorer's "Merge adapter". */
export const ADAPTER_MARKER_GLOB = `**/${ADAPTER_MARKER}`;
/** Folders never searched: they are large and never hold user recipes. */
export const SEARCH_EXCLUDE = '**/{node_modules,.venv,.git,.tools,.test-work}/**';

/** True when `file` is named like a recipe (`*.qlora.yaml` or `*.qlora.yml`). */
export function isRecipeFile(file: string): boolean {
  return /\.qlora\.ya?ml$/i.test(path.basename(file));
}

/**
 * The user's recipes among `files`: those outside every run folder (a run keeps a frozen copy of
 * its recipe, which names no runs folder of its own).
 */
export function recipesOutsideRuns(files: readonly string[], runDirs: readonly string[]): string[] {
  const inside = (f: string) => runDirs.some((d) => !path.relative(d, f).startsWith('..') && !path.isAbsolute(path.relative(d, f)));
  return files.filter((f) => !inside(f));
}

/** The folders holding an adapter, from the paths of their `adapter_config.json`, sorted and unique. */
export function adapterFolders(markerPaths: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const p of markerPaths) if (path.basename(p) === ADAPTER_MARKER) dirs.add(path.dirname(p));
  return [...dirs].sort();
}

/** Recipes sorted for a quick pick: shortest relative path first, so top-level examples lead. */
export function sortRecipes(files: readonly string[], root?: string): string[] {
  const rel = (f: string) => (root ? path.relative(root, f) : f);
  return [...files].sort((a, b) => rel(a).split(path.sep).length - rel(b).split(path.sep).length || rel(a).localeCompare(rel(b)));
}

/** Inputs for picking the backend's interpreter; `exists` is injected so tests use fake trees. */
export interface PythonChoice {
  setting: string;
  /** QLORA_STUDIO_PYTHON from the environment (test harnesses and `npm start` set it). */
  envOverride?: string;
  pythonExtension?: string;
  candidateDirs: readonly string[];
  exists: (p: string) => boolean;
}

/**
 * Picks the interpreter: the explicit setting, else QLORA_STUDIO_PYTHON, else the Python extension's selected one, else the
 * first `.venv/bin/python` found in the candidate folders (workspace folders and their parents,
 * then the extension's own checkout), else `python3` from PATH.
 */
export function choosePython(c: PythonChoice): { python: string; source: string } {
  if (c.setting.trim()) return { python: c.setting.trim(), source: 'setting qloraStudio.pythonPath' };
  if (c.envOverride?.trim()) return { python: c.envOverride.trim(), source: 'QLORA_STUDIO_PYTHON' };
  if (c.pythonExtension) return { python: c.pythonExtension, source: 'Python extension' };
  for (const dir of c.candidateDirs) {
    const unix = path.join(dir, '.venv', 'bin', 'python');
    if (c.exists(unix)) return { python: unix, source: `.venv in ${dir}` };
    const win = path.join(dir, '.venv', 'Scripts', 'python.exe');
    if (c.exists(win)) return { python: win, source: `.venv in ${dir}` };
  }
  return { python: 'python3', source: 'PATH' };
}
