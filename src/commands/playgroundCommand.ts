/**
 * Open Playground: picks the adapter (argument, runs tree node, or quick pick) and shows the one
 * playground panel with the base model and sampling defaults the backend names for it.
 */
import type { Ctx } from '../ctx';
import type { Views } from '../views';
import { adapterLabel, knownAdapters, resolveAdapter } from './adapterPick';

/** Handler of qloraStudio.openPlayground; returns the adapter folder it opened with. */
export function openPlayground(ctx: Ctx, views: Views) {
  return async (arg?: unknown): Promise<string | undefined> => {
    const info = await resolveAdapter(ctx, views, arg, 'Open Playground');
    if (!info) return undefined;
    const known = await knownAdapters(ctx, views);
    const adapters = [...new Set([info.adapter_dir, ...known])].map((p) => ({ label: adapterLabel(p), path: p }));
    await views.playground.open({ baseModel: info.base_model, adapters, adapter: info.adapter_dir, defaults: info.generation });
    return info.adapter_dir;
  };
}
