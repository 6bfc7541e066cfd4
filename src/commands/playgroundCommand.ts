/**
 * Open Playground: picks the adapter (argument, runs tree node, or quick pick) and shows the one
 * playground panel with the base model, sampling defaults and mode the backend names for it
 * (Chat for a `format: chat` recipe: its answers go through the chat template it was trained with).
 */
import * as path from 'node:path';
import type { Ctx } from '../ctx';
import type { AdapterInfo } from '../protocol';
import type { Views } from '../views';
import type { PlaygroundTarget } from '../views/playground';
import { checkpointLabel } from '../views/runsTree';
import { knownAdapterChoices, resolveAdapter } from './adapterPick';

/** The panel's target for an adapter: its run's checkpoints first, then the other adapters known. */
export function playgroundTarget(info: AdapterInfo, others: ReadonlyArray<{ label: string; path: string }>): PlaygroundTarget {
  const own = info.checkpoints.map((c) => ({ label: checkpointLabel(info.run_id, c.name, c.step), path: c.path }));
  if (!own.some((c) => path.resolve(c.path) === path.resolve(info.adapter_dir))) {
    own.unshift({ label: checkpointLabel(info.run_id, path.basename(info.adapter_dir), null), path: info.adapter_dir });
  }
  const seen = new Set(own.map((c) => path.resolve(c.path)));
  const adapters = [...own, ...others.filter((o) => !seen.has(path.resolve(o.path)))];
  return { baseModel: info.base_model, adapters, adapter: info.adapter_dir, defaults: info.generation, mode: info.data_format === 'chat' ? 'chat' : 'prompt' };
}

/** Handler of qloraStudio.openPlayground; returns the adapter folder it opened with. */
export function openPlayground(ctx: Ctx, views: Views) {
  return async (arg?: unknown): Promise<string | undefined> => {
    const info = await resolveAdapter(ctx, views, arg, 'Open Playground');
    if (!info) return undefined;
    await views.playground.open(playgroundTarget(info, await knownAdapterChoices(ctx, views)));
    return info.adapter_dir;
  };
}
