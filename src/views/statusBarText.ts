/**
 * What the status bar item says, free of `vscode`: connection state, the device once connected,
 * and the active run's step and loss.
 */
import type { BackendPhase } from '../runs/backendState';
import { formatLoss } from '../runs/runsModel';

/** Inputs of the status bar; `device` comes from the backend's hello answer. */
export interface StatusInput {
  phase: BackendPhase;
  device?: string;
  /** The SSH host the backend runs on; undefined for the local backend. */
  remote?: string;
  run?: { run_id: string; state: string; step?: number | null; total_steps?: number | null; last_loss?: number | null };
  /** The other active runs (queued or training beside `run`), so none is hidden. */
  others?: ReadonlyArray<{ run_id: string; state: string }>;
}

/** Text (with codicons), tooltip and the command a click runs. */
export interface StatusView {
  text: string;
  tooltip: string;
  command: string;
  error: boolean;
}

/** Renders the status bar; a running run takes precedence over the bare connection state. */
export function statusBarView(s: StatusInput): StatusView {
  if (s.remote && s.phase !== 'connected') return remoteView(s.phase, s.remote);
  if (s.phase === 'failed') {
    return { text: '$(error) QLoRA: backend failed', tooltip: 'The QLoRA backend could not start. Click to see the logs.', command: 'qloraStudio.showLogs', error: true };
  }
  if (s.phase === 'disconnected') {
    return { text: '$(debug-disconnect) QLoRA', tooltip: 'QLoRA backend: not connected. Click to connect.', command: 'qloraStudio.connectBackend', error: false };
  }
  if (s.phase === 'connecting') {
    return { text: '$(loading~spin) QLoRA: connecting', tooltip: 'QLoRA backend: starting and connecting…', command: 'qloraStudio.showLogs', error: false };
  }
  const device = `${s.device ?? 'CPU'}${s.remote ? ` on ${s.remote}` : ''}`;
  if (s.run) {
    const others = s.others ?? [];
    const total = s.run.total_steps ? `/${s.run.total_steps}` : '';
    return {
      text: `$(pulse) QLoRA: ${s.run.state} ${s.run.step ?? 0}${total} · loss ${formatLoss(s.run.last_loss)}${others.length ? ` (+${others.length} more)` : ''}`,
      tooltip: [`Run ${s.run.run_id} on ${device}. Click to show the loss chart.`, ...others.map((o) => `Also ${o.state}: ${o.run_id}`)].join('\n'),
      command: 'qloraStudio.showRunLoss',
      error: false,
    };
  }
  return { text: `$(plug) QLoRA: ${device}`, tooltip: `QLoRA backend connected (${device}).`, command: 'qloraStudio.showLogs', error: false };
}

/** The SSH backend while it is not connected: the tunnel or ssh is down and the client retries. */
function remoteView(phase: Exclude<BackendPhase, 'connected'>, host: string): StatusView {
  switch (phase) {
    case 'connecting':
      return { text: `$(sync~spin) QLoRA: ${host} reconnecting`, tooltip: `QLoRA backend on ${host} (SSH): connecting, or the tunnel dropped and the client is retrying with backoff. Runs keep going on ${host}.`, command: 'qloraStudio.showLogs', error: false };
    case 'disconnected':
      return { text: `$(debug-disconnect) QLoRA: ${host} disconnected`, tooltip: `QLoRA backend on ${host} (SSH): not connected; runs keep going there. Click to connect.`, command: 'qloraStudio.connectBackend', error: false };
    case 'failed':
      return { text: `$(error) QLoRA: ${host} failed`, tooltip: `The QLoRA backend on ${host} (SSH) could not be reached. Click to see the logs.`, command: 'qloraStudio.showLogs', error: true };
    default: {
      const never: never = phase;
      return never;
    }
  }
}

