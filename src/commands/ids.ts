/**
 * The command table's metadata: one row per command, free of `vscode` imports so that unit tests
 * and the manifest check read the same list the extension registers.
 *
 * `needsTrust`: refuses in untrusted workspaces (anything that starts a backend or a run).
 * `palette`: false for commands that only make sense with a tree item or explorer selection.
 */
export interface CommandMeta {
  readonly id: string;
  readonly title: string;
  readonly needsTrust: boolean;
  readonly palette: boolean;
  readonly icon?: string;
}

export const COMMAND_CATEGORY = 'QLoRA';

export const COMMANDS = [
  { id: 'qloraStudio.startRun', title: 'Start QLoRA Run', needsTrust: true, palette: true, icon: '$(play)' },
  { id: 'qloraStudio.stopRun', title: 'Stop Run', needsTrust: true, palette: true, icon: '$(debug-stop)' },
  { id: 'qloraStudio.resumeRun', title: 'Resume Run', needsTrust: true, palette: true, icon: '$(debug-continue)' },
  { id: 'qloraStudio.attachRun', title: 'Attach to Run', needsTrust: true, palette: true },
  { id: 'qloraStudio.openPlayground', title: 'Open Playground', needsTrust: true, palette: true },
  { id: 'qloraStudio.mergeAdapter', title: 'Merge adapter', needsTrust: true, palette: true },
  { id: 'qloraStudio.newRecipe', title: 'New Recipe', needsTrust: false, palette: true },
  { id: 'qloraStudio.connectBackend', title: 'Connect Backend', needsTrust: true, palette: true },
  { id: 'qloraStudio.downloadAdapter', title: 'Download Adapter', needsTrust: true, palette: true },
  { id: 'qloraStudio.showLogs', title: 'Show Logs', needsTrust: false, palette: true },
  { id: 'qloraStudio.refreshRuns', title: 'Refresh Runs', needsTrust: true, palette: false, icon: '$(refresh)' },
  { id: 'qloraStudio.openRunFolder', title: 'Open Run Folder', needsTrust: false, palette: false },
  { id: 'qloraStudio.openRunRecipe', title: 'Open Run Recipe', needsTrust: false, palette: false },
  { id: 'qloraStudio.showRunLoss', title: 'Show Loss Chart', needsTrust: true, palette: false, icon: '$(graph-line)' },
  { id: 'qloraStudio.openLossPanel', title: 'Open Loss Chart in Editor', needsTrust: true, palette: true, icon: '$(screen-full)' },
  { id: 'qloraStudio.setHfToken', title: 'Set Hugging Face Token', needsTrust: false, palette: true },
  { id: 'qloraStudio.clearHfToken', title: 'Clear Hugging Face Token', needsTrust: false, palette: true },
  { id: 'qloraStudio.pickDatasetRecipe', title: 'Pick Recipe for Dataset Preview', needsTrust: false, palette: true },
  { id: 'qloraStudio.openDatasetPreview', title: 'Open Dataset Preview', needsTrust: false, palette: true, icon: '$(preview)' },
  { id: 'qloraStudio.runDatasetDoctor', title: 'Run Dataset Doctor', needsTrust: false, palette: true, icon: '$(checklist)' },
] as const satisfies readonly CommandMeta[];

/** A command id of the table; the type keeps handlers and metadata in step. */
export type CommandId = (typeof COMMANDS)[number]['id'];

/** The metadata of `id`; throws on an id outside the table (a programming error). */
export function commandMeta(id: string): CommandMeta {
  const found = COMMANDS.find((c) => c.id === id);
  if (!found) throw new Error(`unknown command ${id}`);
  return found;
}

/** Ids of the commands that stay usable in an untrusted workspace. */
export function untrustedCommandIds(): string[] {
  return COMMANDS.filter((c) => !c.needsTrust).map((c) => c.id);
}
