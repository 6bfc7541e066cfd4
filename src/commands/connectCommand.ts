/**
 * Connect Backend: a quick pick of Local and every SSH host (ssh config and its Includes, plus the
 * `qloraStudio.backends` setting), then the connection with a progress notification. A host's
 * bootstrap problems (no CUDA, missing torch) are shown with the command that fixes them.
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { BackendTarget } from '../backend/remoteTarget';
import type { Views } from '../views';

type Item = vscode.QuickPickItem & { target: BackendTarget };

/** The pick's items: Local first, then the hosts. */
async function items(ctx: Ctx): Promise<Item[]> {
  // Loaded on first use: the host list's zod schema is not needed at activation.
  const { listSshHosts } = await import('../backend/sshHosts');
  const { hosts, errors } = listSshHosts(vscode.workspace.getConfiguration('qloraStudio').get<unknown>('backends'));
  for (const e of errors) ctx.log.warn(e);
  const current = ctx.target;
  const mark = (t: BackendTarget) => (JSON.stringify(t) === JSON.stringify(current) ? ' (current)' : '');
  return [
    { label: '$(vm) Local', description: `this machine${mark({ kind: 'local' })}`, target: { kind: 'local' } },
    ...hosts.map(({ source, ...h }): Item => {
      const target: BackendTarget = { kind: 'ssh', ...h };
      return { label: `$(remote) ${h.name ?? h.host}`, description: `${source === 'setting' ? 'qloraStudio.backends' : '~/.ssh/config'}${mark(target)}`, detail: h.name ? h.host : undefined, target };
    }),
  ];
}

/**
 * Connect Backend. An argument skips the pick (tests, links): `'local'`, a host name, or a target
 * object. Returns the connection phase.
 */
export function connectBackend(ctx: Ctx, views: Views) {
  return async (arg?: unknown) => {
    const all = await items(ctx);
    let pick: Item | undefined;
    if (arg === undefined) {
      pick = await vscode.window.showQuickPick(all, { title: 'Connect QLoRA Backend', placeHolder: 'Where should runs execute?' });
      if (!pick) return undefined;
    } else {
      const wanted = typeof arg === 'string' ? arg : (arg as { host?: unknown }).host;
      pick = wanted === 'local' ? all[0] : all.find((i) => i.target.kind === 'ssh' && (i.target.host === wanted || i.target.name === wanted));
      if (!pick && typeof arg === 'object' && arg && typeof wanted === 'string') pick = { label: wanted, target: { kind: 'ssh', ...(arg as { host: string }) } };
      if (!pick) throw new Error(`no backend named ${String(wanted)}: add it to ~/.ssh/config or the qloraStudio.backends setting`);
    }
    const target = pick.target;
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `QLoRA: connecting to ${target.kind === 'ssh' ? target.host : 'the local backend'}` }, async (progress) => {
      const sub = ctx.onBackendProgress((m) => progress.report({ message: m }));
      try {
        await (target.kind === 'local' && ctx.target.kind === 'local' ? ctx.restartBackend() : ctx.connectTo(target));
      } finally {
        sub.dispose();
      }
    });
    views.runs.retry();
    const problems = ctx.remoteProblems();
    if (problems.length) {
      const first = problems[0]!;
      void vscode.window.showWarningMessage(`QLoRA backend on ${ctx.remoteLabel()}: ${first.what}. Fix: ${first.fix}`, 'Copy Fix Command').then((b) => b && vscode.env.clipboard.writeText(first.fix));
    } else {
      void vscode.window.showInformationMessage(`QLoRA backend connected${ctx.remoteLabel() ? ` on ${ctx.remoteLabel()}` : ''} (${ctx.device ?? 'CPU'}).`);
    }
    return ctx.phase;
  };
}
