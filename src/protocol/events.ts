/**
 * Run events: one line of `runs/<run_id>/events.jsonl`, sent unchanged to every client that
 * attached to the run. The log file is the truth; a socket is only a view of it.
 *
 * Mirror: `python-backend/src/qlora_studio/events.py` (writer, states, event types) and the
 * generated `python-backend/src/qlora_studio/server/protocol.schema.json`.
 *
 * No `vscode` import: the client, the webviews' hosts and the unit tests load this module.
 */
import { z } from 'zod';

/** Every state a run can be in, in lifecycle order (mirror of `RUN_STATES`). */
export const RUN_STATES = ['queued', 'loading', 'running', 'saving', 'completed', 'failed', 'stopped', 'interrupted'] as const;
/** States after which a run's process is gone (mirror of `TERMINAL_STATES`). */
export const TERMINAL_STATES = ['completed', 'failed', 'stopped', 'interrupted'] as const;
/** Event types (mirror of `EVENT_TYPES`). */
export const EVENT_TYPES = ['status', 'log', 'metrics', 'eval', 'checkpoint', 'error'] as const;

export const runStateSchema = z.enum(RUN_STATES);
export type RunState = z.infer<typeof runStateSchema>;

/**
 * One run event, written by the training process (or by the server for a process that died) and
 * sent by the server to attached clients, in `seq` order, without gaps or duplicates.
 * `data` stays an open record here so a newer engine never breaks an older client; read typed
 * fields with {@link parseEventData}.
 */
export const runEventSchema = z
  .object({
    run_id: z.string().min(1),
    seq: z.number().int().min(1),
    type: z.enum(EVENT_TYPES),
    time: z.number(),
    data: z.record(z.string(), z.unknown()),
  })
  .strict();
export type RunEvent = z.infer<typeof runEventSchema>;

const optNum = z.number().nullable().optional();

/** `status`: the run moved to `state`; `reason` explains interrupted/failed/stopped. */
export const statusDataSchema = z
  .object({ state: runStateSchema, message: z.string().optional(), reason: z.string().optional(), adapter_path: z.string().optional() })
  .loose();
/** `log`: a line for the run's log view. */
export const logDataSchema = z.object({ level: z.enum(['info', 'warning', 'error']), message: z.string() }).loose();
/** `metrics`: one optimizer step's numbers, for the loss chart. */
export const metricsDataSchema = z
  .object({
    step: z.number().int(),
    total_steps: optNum,
    epoch: optNum,
    loss: optNum,
    lr: optNum,
    grad_norm: optNum,
    tokens_per_s: optNum,
    tokens_seen: optNum,
    mem_allocated_mb: optNum,
    mem_peak_mb: optNum,
    rss_mb: optNum,
  })
  .loose();
/** `eval`: an evaluation pass. */
export const evalDataSchema = z
  .object({ step: z.number().int(), eval_loss: z.number(), best_eval_loss: optNum, is_best: z.boolean().optional() })
  .loose();
/** `checkpoint`: a checkpoint directory was completed (renamed into place). */
export const checkpointDataSchema = z.object({ step: z.number().int(), path: z.string() }).loose();
/** `error`: why a run failed, with a hint on what to change. */
export const errorDataSchema = z
  .object({
    kind: z.enum(['oom', 'bad_data', 'bad_recipe', 'exception']),
    message: z.string(),
    hint: z.string().optional(),
    details: z.unknown().optional(),
  })
  .loose();

const dataSchemas = {
  status: statusDataSchema,
  log: logDataSchema,
  metrics: metricsDataSchema,
  eval: evalDataSchema,
  checkpoint: checkpointDataSchema,
  error: errorDataSchema,
} as const;

/** The typed `data` of each event type. */
export type EventDataOf<T extends RunEvent['type']> = z.infer<(typeof dataSchemas)[T]>;

/**
 * Reads an event's `data` as its type's shape; undefined when the engine wrote something this
 * client does not understand (the caller shows the raw event instead of failing).
 */
export function parseEventData<T extends RunEvent['type']>(ev: RunEvent & { type: T }): EventDataOf<T> | undefined {
  const r = dataSchemas[ev.type].safeParse(ev.data);
  return r.success ? (r.data as EventDataOf<T>) : undefined;
}
