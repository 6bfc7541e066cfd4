/**
 * Keeps the context key `qloraStudio.adapterFolders` (paths of folders holding
 * `adapter_config.json`) current, so the explorer shows "Merge adapter" only on those folders.
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { ADAPTER_MARKER_GLOB, SEARCH_EXCLUDE, adapterFolders } from '../util/paths';

export const ADAPTER_CONTEXT_KEY = 'qloraStudio.adapterFolders';

/** Handles on the adapter-folder scan. */
export interface AdapterFolders {
  /** Scans now and updates the context key; resolves with the folders. */
  rescan(): Promise<string[]>;
  /** The folders of the last finished scan (what the explorer's menu sees now). */
  current(): readonly string[];
}

/**
 * Scans once now (deferred, so activation stays quick) and again, debounced, whenever a marker
 * file appears or disappears or a run changes state.
 */
export function registerAdapterContext(ctx: Ctx): AdapterFolders {
  let timer: NodeJS.Timeout | undefined;
  let last: string[] = [];
  const scan = async (): Promise<string[]> => {
    const files = await vscode.workspace.findFiles(ADAPTER_MARKER_GLOB, SEARCH_EXCLUDE, 5000);
    const dirs = adapterFolders(files.map((f) => f.fsPath));
    // `resourcePath` in when-clauses is the URI path (forward slashes, also on Windows).
    await vscode.commands.executeCommand('setContext', ADAPTER_CONTEXT_KEY, dirs.map((d) => vscode.Uri.file(d).path));
    last = dirs;
    return dirs;
  };
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void scan().catch((err: unknown) => ctx.log.warn(`adapter scan failed: ${String(err)}`)), 300);
  };
  const watcher = vscode.workspace.createFileSystemWatcher(ADAPTER_MARKER_GLOB);
  ctx.push(
    watcher,
    watcher.onDidCreate(schedule),
    watcher.onDidDelete(schedule),
    // A run writes its adapter to a temp folder and renames it into place; a folder rename need not
    // raise a create event for the file inside, so a run that ends rescans too.
    ctx.onRunEvent((ev) => {
      if (ev.type === 'status' || ev.type === 'checkpoint') schedule();
    }),
    { dispose: () => timer && clearTimeout(timer) },
  );
  schedule();
  return { rescan: scan, current: () => last };
}
