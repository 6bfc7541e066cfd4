/**
 * The protocol's run-state and event-type names, free of zod so the activation path (run state,
 * status bar) reads them without loading the schemas.
 *
 * Mirror: `python-backend/src/qlora_studio/events.py` (RUN_STATES, TERMINAL_STATES, EVENT_TYPES,
 * PROGRESS_PHASES), checked through the generated `server/protocol.schema.json`.
 */

/** Every state a run can be in, in lifecycle order. */
export const RUN_STATES = ['queued', 'loading', 'running', 'saving', 'completed', 'failed', 'stopped', 'interrupted'] as const;
/** States after which a run's process is gone. */
export const TERMINAL_STATES = ['completed', 'failed', 'stopped', 'interrupted'] as const;
/** Event types. */
export const EVENT_TYPES = ['status', 'log', 'metrics', 'eval', 'checkpoint', 'error', 'progress'] as const;
/** What a run is busy with between `loading` and `running`, roughly in order. */
export const PROGRESS_PHASES = ['model_download', 'dataset_download', 'tokenizer', 'data', 'model_load', 'quantize', 'lora'] as const;

/** A run state. */
export type RunStateName = (typeof RUN_STATES)[number];

/** True for states after which nothing more happens to a run unless it is resumed. */
export function isTerminal(state: string): boolean {
  return (TERMINAL_STATES as readonly string[]).includes(state);
}
