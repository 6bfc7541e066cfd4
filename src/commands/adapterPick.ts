/**
 * Which adapter a command acts on, and its facts from the backend (`adapter.info`): from the
 * explorer (a folder), the runs tree (a run), a test (`{adapterDir}` / `{runId}`) or a quick pick
 * over the adapter folders the workspace scan and the backend's runs name. The extension reads
 * no file of the adapter itself: a remote backend's folders are not on this machine.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { AdapterInfo } from '../protocol';
import type { Views } from '../views';
import { pathOf, runIdOf } from './pickers';

/**
 * A short menu label for an adapter folder: "run-id · adapter" (or "· step 40") when it lies in
 * a known run's folder, else its parent's name and its own.
 */
export function adapterLabel(dir: string, runs: ReadonlyArray<{ run_id: string; run_dir?: string | null }> = []): string {
  const parent = path.dirname(path.resolve(dir));
  const run = runs.find((r) => r.run_dir && (parent === path.resolve(r.run_dir) || parent.startsWith(path.resolve(r.run_dir) + path.sep)));
  if (!run?.run_dir) return `${path.basename(path.dirname(dir))}/${path.basename(dir)}`;
  const name = path.basename(dir);
  const step = /^step-(\d+)$/.exec(name);
  return `${run.run_id} · ${step ? `step ${step[1]}` : name}`;
}

/** The known adapters as labelled choices. */
export async function knownAdapterChoices(ctx: Ctx, views: Views): Promise<Array<{ label: string; path: string }>> {
  const runs = ctx.runs.list();
  return (await knownAdapters(ctx, views)).map((p) => ({ label: adapterLabel(p, runs), path: p }));
}

/** Adapter folders to offer: the workspace scan's and those of the backend's runs. */
export async function knownAdapters(ctx: Ctx, views: Views): Promise<string[]> {
  const scanned = await views.adapters.rescan();
  return [...new Set([...scanned, ...ctx.runs.list().flatMap((r) => (r.adapter_path ? [r.adapter_path] : []))])];
}

/** The adapter's facts, or undefined when the user dismissed the pick. */
export async function resolveAdapter(ctx: Ctx, views: Views, arg: unknown, title: string): Promise<AdapterInfo | undefined> {
  const dir = pathOf(arg, 'adapterDir');
  const runId = dir ? undefined : runIdOf(arg);
  const conn = await ctx.backend();
  if (dir) return conn.request('adapter.info', { adapter_dir: dir });
  if (runId) return conn.request('adapter.info', { run_id: runId });
  const known = await knownAdapters(ctx, views);
  if (known.length === 0) {
    void vscode.window.showInformationMessage(`${title}: no adapter folder (one holding adapter_config.json) found. Finish a run first.`);
    return undefined;
  }
  const pick = await vscode.window.showQuickPick(
    known.map((d) => ({ label: adapterLabel(d, ctx.runs.list()), description: d, dir: d })),
    { title, placeHolder: 'Pick an adapter' },
  );
  return pick ? conn.request('adapter.info', { adapter_dir: pick.dir }) : undefined;
}
