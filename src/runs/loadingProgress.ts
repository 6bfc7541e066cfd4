/**
 * What the "loading" notification of a run says, free of `vscode`: it opens when a run starts
 * loading (or reports a progress phase), follows the `progress` events (hub downloads with bytes
 * done of total, loading, quantizing) and closes when the run trains or ends.
 */
import type { RunEvent } from '../protocol';
import { isTerminal } from '../protocol/states';

/** An instruction for the notification of one run. */
export type LoadingUpdate =
  | { kind: 'open'; runId: string; message: string; percent?: number }
  | { kind: 'update'; runId: string; message: string; percent?: number }
  | { kind: 'close'; runId: string };

/**
 * Events older than this open nothing: a replay of a run that loaded long ago (attaching after
 * a reload) must not flash notifications. A run still loading keeps sending fresh events.
 */
export const STALE_AFTER_S = 300;

const PHASE_TITLES: Record<Extract<RunEvent, { type: 'progress' }>['data']['phase'], string> = {
  model_download: 'Downloading the model',
  dataset_download: 'Downloading the dataset',
  tokenizer: 'Loading the tokenizer',
  data: 'Preparing the data',
  model_load: 'Loading the model',
  quantize: 'Quantizing to 4 bits',
  lora: 'Adding LoRA adapters',
};

/** Follows runs' events and says when to open, update or close each run's notification. */
export class LoadingTracker {
  private readonly open = new Set<string>();

  constructor(private readonly now: () => number = () => Date.now() / 1000) {}

  /** The notification change this event causes, if any. */
  apply(ev: RunEvent): LoadingUpdate | undefined {
    const isOpen = this.open.has(ev.run_id);
    if (ev.type === 'status') {
      if (ev.data.state === 'loading') return this.show(ev, isOpen, ev.data.message ?? 'Loading the model…');
      if (isOpen && (ev.data.state === 'running' || isTerminal(ev.data.state))) {
        this.open.delete(ev.run_id);
        return { kind: 'close', runId: ev.run_id };
      }
      return undefined;
    }
    if (ev.type !== 'progress') return undefined;
    const { phase, message, done, total, unit } = ev.data;
    const measured = typeof done === 'number' && typeof total === 'number' && total > 0;
    const percent = measured ? Math.min(100, Math.round((done / total) * 100)) : undefined;
    const amount = typeof done === 'number' ? ` — ${formatAmount(done, total ?? undefined, unit)}` : '';
    return this.show(ev, isOpen, `${message || PHASE_TITLES[phase]}${amount}`, percent);
  }

  private show(ev: RunEvent, isOpen: boolean, message: string, percent?: number): LoadingUpdate | undefined {
    if (!isOpen) {
      if (this.now() - ev.time > STALE_AFTER_S) return undefined;
      this.open.add(ev.run_id);
      return { kind: 'open', runId: ev.run_id, message, percent };
    }
    return { kind: 'update', runId: ev.run_id, message, percent };
  }
}

/** "1.2 of 4.9 GB (24%)", "3 of 7 files", "512 MB": what a measured phase has done. */
export function formatAmount(done: number, total: number | undefined, unit: 'bytes' | 'files' | 'steps' | undefined): string {
  const pct = total && total > 0 ? ` (${Math.min(100, Math.round((done / total) * 100))}%)` : '';
  if (unit === 'bytes') {
    const scale = bytesScale(total ?? done);
    const of = total ? ` of ${(total / scale.div).toFixed(1)}` : '';
    return `${(done / scale.div).toFixed(1)}${of} ${scale.name}${pct}`;
  }
  const noun = unit ?? 'steps';
  return total ? `${done} of ${total} ${noun}${pct}` : `${done} ${noun}`;
}

function bytesScale(n: number): { div: number; name: string } {
  if (n >= 1e9) return { div: 1e9, name: 'GB' };
  if (n >= 1e6) return { div: 1e6, name: 'MB' };
  return { div: 1e3, name: 'kB' };
}
