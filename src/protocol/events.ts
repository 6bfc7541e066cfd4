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
import { EVENT_TYPES, PROGRESS_PHASES, RUN_STATES } from './states';

export { EVENT_TYPES, PROGRESS_PHASES, RUN_STATES, TERMINAL_STATES, isTerminal } from './states';

/** A run state, checked. */
export const runStateSchema = z.enum(RUN_STATES);
export type RunState = z.infer<typeof runStateSchema>;

/**
 * The envelope of one run event, as a frame carries it: what the connection reads first, so one
 * event whose `data` a newer engine shaped differently never takes a whole batch frame with it.
 * The typed form of each event is {@link runEventSchema}.
 */
export const runEventEnvelopeSchema = z
  .object({
    run_id: z.string().min(1),
    seq: z.number().int().min(1),
    type: z.enum(EVENT_TYPES),
    time: z.number(),
    data: z.record(z.string(), z.unknown()),
  })
  .strict();
export type RunEventEnvelope = z.infer<typeof runEventEnvelopeSchema>;

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
/**
 * `progress`: what a run does between `loading` and `running` (hub downloads, loading, quantizing),
 * for the progress notification. `done` of `total` counts `unit` (bytes for downloads); `total`
 * is null when unknown (the hub did not say), and both are absent for a phase without a measure.
 */
export const progressDataSchema = z
  .object({
    phase: z.enum(PROGRESS_PHASES),
    message: z.string(),
    done: z.number().min(0).optional(),
    total: z.number().min(0).nullable().optional(),
    unit: z.enum(['bytes', 'files', 'steps']).optional(),
  })
  .loose();
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
  progress: progressDataSchema,
} as const;

function eventOf<T extends RunEventType, D extends z.ZodType>(type: T, data: D) {
  return runEventEnvelopeSchema.extend({ type: z.literal(type), data });
}

/**
 * One run event, written by the training process (or by the server for a process that died) and
 * sent by the server to attached clients, in `seq` order, without gaps or duplicates; its `data`
 * has the shape of its `type`. The connection parses every event with this schema, so everything
 * downstream of it switches on `type` and reads typed fields.
 */
export const runEventSchema = z.discriminatedUnion('type', [
  eventOf('status', statusDataSchema),
  eventOf('log', logDataSchema),
  eventOf('metrics', metricsDataSchema),
  eventOf('eval', evalDataSchema),
  eventOf('checkpoint', checkpointDataSchema),
  eventOf('error', errorDataSchema),
  eventOf('progress', progressDataSchema),
]);
/** A typed run event. */
export type RunEvent = z.infer<typeof runEventSchema>;
/** An event type. */
export type RunEventType = (typeof EVENT_TYPES)[number];
/** The typed `data` of each event type. */
export type EventDataOf<T extends RunEventType> = z.infer<(typeof dataSchemas)[T]>;
/** The event of one type. */
export type RunEventOf<T extends RunEventType> = Extract<RunEvent, { type: T }>;
