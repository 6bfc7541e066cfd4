/**
 * The status bar item: follows the backend phase and the active run (text from statusBarView).
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { isTerminal } from '../protocol/states';
import { statusBarView } from './statusBarText';

/** Creates the item and keeps it current; everything is owned by the Ctx. */
export function registerStatusBar(ctx: Ctx): void {
  const item = vscode.window.createStatusBarItem('qloraStudio.status', vscode.StatusBarAlignment.Left, 10);
  item.name = 'QLoRA Studio';
  const update = () => {
    const run = ctx.runs.activeRun();
    const others = ctx.runs.list().filter((r) => r !== run && !isTerminal(r.state));
    const v = statusBarView({ phase: ctx.phase, device: ctx.device, remote: ctx.remoteLabel(), run, others });
    item.text = v.text;
    item.tooltip = v.tooltip;
    item.command = v.command;
    item.backgroundColor = v.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  };
  update();
  item.show();
  ctx.push(item, ctx.onPhase(update), ctx.onRunsChanged(update));
}
