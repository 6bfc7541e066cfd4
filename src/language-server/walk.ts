/**
 * The one directory walk behind completion's workspace scans (data files, model folders): depth
 * limited, hidden folders, node_modules and run folders skipped, unreadable folders passed over.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Calls `visit(dir, entries)` for each folder under `roots` down to `depth` levels; `visit`
 * returns false to stop the whole walk (e.g. when enough was found).
 */
export function walkFolders(roots: readonly string[], depth: number, visit: (dir: string, entries: fs.Dirent[]) => boolean): void {
  let going = true;
  const walk = (dir: string, level: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    going = visit(dir, entries);
    if (!going || level >= depth) return;
    for (const e of entries) {
      if (!going) return;
      if (e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules' && e.name !== 'runs') walk(path.join(dir, e.name), level + 1);
    }
  };
  for (const r of roots) if (going) walk(r, 0);
}
