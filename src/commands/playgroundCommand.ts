/**
 * Open Playground: picks the adapter (argument, runs tree node, or quick pick), finds its base
 * model and the recipe's sampling defaults, and shows the one playground panel.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { PlaygroundPanel, PlaygroundRun, PlaygroundTarget } from '../views/playground';
import { pathOf, runIdOf } from './pickers';
import type { Views } from './types';

/** Owns the single playground panel (created on demand, forgotten when closed). */
export class PlaygroundHost implements vscode.Disposable {
  private panel: PlaygroundPanel | undefined;
  constructor(private readonly ctx: Ctx) {}

  /** Shows the panel for `target`, creating it when needed (its module loads on first use). */
  async open(target: PlaygroundTarget): Promise<void> {
    if (!this.panel) {
      const { PlaygroundPanel: Panel } = await import('../views/playground');
      this.panel ??= new Panel(this.ctx, target, () => (this.panel = undefined));
    }
    this.panel.show(target);
  }

  /** Test hook: runs a prompt through the open panel's own UI. */
  runPrompt(prompt: string): Promise<PlaygroundRun> {
    if (!this.panel) return Promise.reject(new Error('the playground is not open: run "QLoRA: Open Playground" first'));
    return this.panel.runPrompt(prompt);
  }

  dispose(): void {
    this.panel?.dispose();
  }
}

/** Handler of qloraStudio.openPlayground; returns the adapter folder it opened with. */
export function openPlayground(ctx: Ctx, views: Views) {
  return async (arg?: unknown): Promise<string | undefined> => {
    const { adapterBaseModel, frozenRecipeFor, generationDefaults } = await import('../util/adapterInfo');
    let adapterDir = pathOf(arg, 'adapterDir');
    const runId = runIdOf(arg);
    const run = runId ? ctx.runs.get(runId) : undefined;
    if (!adapterDir && run) adapterDir = run.adapter_path ?? (run.run_dir ? path.join(run.run_dir, 'adapter') : undefined);
    const known = [...new Set([...(await views.adapters.rescan()), ...ctx.runs.list().flatMap((r) => (r.adapter_path ? [r.adapter_path] : []))])];
    if (!adapterDir) {
      if (known.length === 0) throw new Error('No adapter found: finish a run first (its adapter/ folder holds adapter_config.json).');
      const pick = await vscode.window.showQuickPick(known.map((d) => ({ label: path.basename(path.dirname(d)), description: d, dir: d })), {
        title: 'Open Playground: pick an adapter',
      });
      adapterDir = pick?.dir;
      if (!adapterDir) return undefined;
    }
    const recipe = run?.recipe_path ?? frozenRecipeFor(adapterDir);
    const baseModel = adapterBaseModel(adapterDir, recipe ? path.dirname(recipe) : undefined);
    const adapters = [...new Set([adapterDir, ...known])].map((p) => ({ label: path.basename(path.dirname(p)) + '/' + path.basename(p), path: p }));
    await views.playground.open({ baseModel, adapters, adapter: adapterDir, defaults: generationDefaults(recipe) });
    return adapterDir;
  };
}
