/**
 * Data files in the workspace, chat templates on disk, and the column names of a dataset's first
 * rows, for completion and the dataset diagnostics. Reads at most a few kilobytes of a file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { walkFolders } from './walk';

/** File extensions a recipe's data.train can name. */
export const DATA_EXTENSIONS = ['.jsonl', '.json', '.csv', '.parquet'] as const;

/** Whether a data.train/eval value is meant as a file (else it is a hub dataset id). */
export function looksLikeFile(value: string): boolean {
  return /^(\.{1,2}\/|\/|~)/.test(value) || DATA_EXTENSIONS.some((e) => value.toLowerCase().endsWith(e));
}

/** JSON files that belong to models and tools, never training data. */
const NOT_DATA = /(^|_)config\.json$|^tokenizer|^special_tokens|^package(-lock)?\.json$|\.index\.json$|^vocab\.json$/;

/** Files under `roots` (depth-limited) whose name ends with one of `exts`, relative to `from`. */
export function filesWith(roots: readonly string[], from: string, exts: readonly string[], depth = 4, limit = 200): string[] {
  const out: string[] = [];
  walkFolders(roots, depth, (dir, entries) => {
    for (const e of entries) {
      if (out.length >= limit) return false;
      if (e.isFile() && exts.some((x) => e.name.endsWith(x)) && !NOT_DATA.test(e.name)) out.push(path.relative(from, path.join(dir, e.name)));
    }
    return true;
  });
  return [...new Set(out)].sort();
}

/** Why a data file cannot be read, or undefined when it can. */
export function dataFileProblem(value: string, recipeDir: string): string | undefined {
  const abs = path.resolve(recipeDir, value);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(abs);
  } catch {
    return `file not found: ${abs}; create it or fix the path (relative to the recipe)`;
  }
  if (!stat.isFile()) return `${abs} is not a file; name a .jsonl, .json, .csv or .parquet file`;
  try {
    fs.accessSync(abs, fs.constants.R_OK);
  } catch {
    return `cannot read ${abs} (permission denied); fix its permissions`;
  }
  if (stat.size === 0) return `${abs} is empty; add training rows`;
  return undefined;
}

/** Column names of the first rows of a .jsonl/.json/.csv file (empty when unknown). */
export function datasetColumns(value: string, recipeDir: string, rows = 5): string[] {
  const abs = path.resolve(recipeDir, value);
  let head: string;
  try {
    const fd = fs.openSync(abs, 'r');
    try {
      const buf = Buffer.alloc(16_384);
      head = buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0)).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return [];
  }
  const cols = new Set<string>();
  const addKeys = (v: unknown): void => {
    if (v && typeof v === 'object' && !Array.isArray(v)) for (const k of Object.keys(v)) cols.add(k);
  };
  if (abs.endsWith('.csv')) return (head.split(/\r?\n/)[0] ?? '').split(',').map((c) => c.trim().replace(/^"|"$/g, '')).filter(Boolean);
  if (abs.endsWith('.jsonl')) {
    for (const line of head.split(/\r?\n/).slice(0, rows)) {
      try {
        addKeys(JSON.parse(line));
      } catch {
        // a half-read or bad line: the run reports bad rows with their numbers
      }
    }
  } else if (abs.endsWith('.json')) {
    // the first objects of a JSON array, without parsing the whole file
    for (const m of head.matchAll(/\{[^{}]*\}/g)) {
      if (cols.size && m.index > 4096) break;
      try {
        addKeys(JSON.parse(m[0]));
      } catch {
        // not a flat object
      }
    }
  }
  return [...cols];
}
