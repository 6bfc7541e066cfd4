/**
 * Which backend the extension talks to: the local one or an SSH host (an entry of the host list),
 * and how an SSH target becomes a launcher. No `vscode` import.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from './logger';
import type { BackendSetting } from './sshHosts';
import type { SshBackendLauncher } from './sshLauncher';

/** The backend to use; kept in the workspace state so a reopened window reconnects to it. */
export type BackendTarget = { kind: 'local' } | ({ kind: 'ssh' } & BackendSetting);

/** Workspace-state key of the chosen target. */
export const TARGET_STATE_KEY = 'qloraStudio.backendTarget';

/** A key that changes when the launcher must change (another host or other options). */
export function targetKey(t: BackendTarget, localKey: string): string {
  switch (t.kind) {
    case 'local':
      return `local\0${localKey}`;
    case 'ssh':
      return `ssh\0${JSON.stringify([t.host, t.remoteDir, t.python, t.basePython, t.sshConfigFile])}`;
    default: {
      const never: never = t;
      throw new Error(`unknown backend target ${JSON.stringify(never)}`);
    }
  }
}

/** A short name for the status bar: undefined for local, the label or host for SSH. */
export function targetLabel(t: BackendTarget): string | undefined {
  return t.kind === 'ssh' ? (t.name ?? t.host) : undefined;
}

/** The backend wheel shipped in the extension (out/backend/*.whl, built by scripts/buildBackendWheel.sh). */
export function shippedWheel(extensionRoot: string): string {
  const dir = join(extensionRoot, 'out', 'backend');
  let whl: string | undefined;
  try {
    whl = readdirSync(dir).find((f) => /^qlora_studio-.*\.whl$/.test(f));
  } catch {
    /* reported below */
  }
  if (!whl) throw new Error(`this build of the extension lacks its backend package (${dir}/qlora_studio-*.whl), which SSH hosts need. Build it with: bash scripts/buildBackendWheel.sh`);
  return join(dir, whl);
}

/** The launcher for an SSH target. */
export async function sshLauncherFor(t: BackendTarget & { kind: 'ssh' }, extensionRoot: string, logger: Logger, onProgress: (m: string) => void): Promise<SshBackendLauncher> {
  // Loaded on first need, like the local client: it pulls in zod and the protocol.
  const { SshBackendLauncher } = await import('./sshLauncher');
  return new SshBackendLauncher({
    target: { host: t.host, configFile: t.sshConfigFile },
    remoteDir: t.remoteDir,
    python: t.python,
    basePython: t.basePython,
    wheelPath: shippedWheel(extensionRoot),
    logger,
    onProgress,
  });
}
