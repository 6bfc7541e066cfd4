/**
 * Messages between the extension host and its webviews (loss view, playground), one zod schema
 * each. Both sides parse what they receive with these schemas and switch exhaustively on `type`.
 * Mirror: none outside TypeScript; the webview bundles (webview-ui/) import this same file.
 */
import { z } from 'zod';
import { evalDataSchema, metricsDataSchema } from './events';

/**
 * A run event the loss chart draws from, as the host forwards it: the typed data of a metrics or
 * eval event (the connection parsed it), with its seq so a reloaded view can say what it holds.
 */
export const chartEventSchema = z.discriminatedUnion('type', [
  z.object({ seq: z.number().int(), type: z.literal('metrics'), data: metricsDataSchema }),
  z.object({ seq: z.number().int(), type: z.literal('eval'), data: evalDataSchema }),
]);
export type ChartEvent = z.infer<typeof chartEventSchema>;

const runMeta = z.object({ runId: z.string(), state: z.string() });

/** Host → loss view. */
export const hostToLoss = z.discriminatedUnion('type', [
  /** Sent for new metrics/eval events of a run, after `ready` and live as they arrive. */
  z.object({ type: z.literal('events'), runId: z.string(), events: z.array(chartEventSchema) }),
  /** Sent when the set of runs or their states change, so the run picker stays current. */
  z.object({ type: z.literal('runs'), runs: z.array(runMeta) }),
  /** Sent when the user asks to see one run (Start, Attach, tree "Show Loss Chart"). */
  z.object({ type: z.literal('focus'), runId: z.string() }),
  /** Sent to the loss panel: overlay these runs (each in its own colour) instead of one. */
  z.object({ type: z.literal('overlay'), runIds: z.array(z.string()) }),
  /** Sent by the test hook: the view answers with `points` carrying the same requestId. */
  z.object({ type: z.literal('getPoints'), requestId: z.number().int(), runId: z.string() }),
]);
export type HostToLoss = z.infer<typeof hostToLoss>;

/** Loss view → host. */
export const lossToHost = z.discriminatedUnion('type', [
  /** Sent once the script runs; `lastSeq` says what the restored state already holds per run. */
  z.object({ type: z.literal('ready'), lastSeq: z.record(z.string(), z.number()) }),
  /** Answer to `getPoints`: every point the chart holds for the run, by metric. */
  z.object({
    type: z.literal('points'),
    requestId: z.number().int(),
    runId: z.string(),
    points: z.record(z.string(), z.array(z.tuple([z.number(), z.number()]))),
    /** Steps on the drawn loss chart's x axis (after downsampling); 0 when nothing is drawn. */
    drawnSteps: z.number().int().min(0),
    /** The runs drawn, each with its line colour. */
    shown: z.array(z.object({ runId: z.string(), color: z.string() })),
    /** The loss chart's size in CSS pixels. */
    chart: z.object({ width: z.number(), height: z.number() }),
  }),
  /** The user pressed "Export CSV". */
  z.object({ type: z.literal('exportCsv'), csv: z.string() }),
  /** The user pressed "Export PNG": the chart canvas as a data URL. */
  z.object({ type: z.literal('exportPng'), dataUrl: z.string().startsWith('data:image/png;base64,') }),
  /** Something failed inside the view; the host logs it. */
  z.object({ type: z.literal('error'), message: z.string() }),
]);
export type LossToHost = z.infer<typeof lossToHost>;

export const samplingParams = z.object({
  max_new_tokens: z.number().int().min(1),
  temperature: z.number().min(0),
  top_p: z.number().gt(0).max(1),
  top_k: z.number().int().min(0),
  repetition_penalty: z.number().positive(),
});
export type SamplingParams = z.infer<typeof samplingParams>;

const chatMessage = z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() });
const side = z.enum(['base', 'adapter']);
/** How the playground sends the input: as a raw prompt, or as chat messages through the template. */
export const playgroundMode = z.enum(['prompt', 'chat']);
export type PlaygroundMode = z.infer<typeof playgroundMode>;
export type Side = z.infer<typeof side>;

/** Host → playground. */
export const hostToPlayground = z.discriminatedUnion('type', [
  /** Sent after `ready` and whenever the model or adapter choice changes. */
  z.object({
    type: z.literal('init'),
    baseModel: z.string(),
    adapters: z.array(z.object({ label: z.string(), path: z.string() })),
    adapter: z.string().nullable(),
    defaults: samplingParams,
    /** The mode that fits the recipe's data format (chat for `format: chat`); the user may switch. */
    mode: playgroundMode,
  }),
  /** A streamed piece of generated text for one side of one generation. */
  z.object({ type: z.literal('chunk'), genId: z.number().int(), side, text: z.string() }),
  /** One side finished (stopped, completed or failed with `error`). */
  z.object({ type: z.literal('done'), genId: z.number().int(), side, error: z.string().optional(), stopped: z.boolean() }),
  /**
   * Test hook: type `prompt` into the view and press Generate, as a user would; the view answers
   * `automationResult` once every side is done.
   */
  z.object({ type: z.literal('automation'), requestId: z.number().int(), prompt: z.string() }),
]);
export type HostToPlayground = z.infer<typeof hostToPlayground>;

/** Playground → host. */
export const playgroundToHost = z.discriminatedUnion('type', [
  /** Sent once the script runs. */
  z.object({ type: z.literal('ready') }),
  /** Generate with the base model and, when an adapter is chosen, base+adapter side by side. */
  z.object({
    type: z.literal('generate'),
    genId: z.number().int(),
    mode: playgroundMode,
    prompt: z.string().optional(),
    messages: z.array(chatMessage).optional(),
    adapter: z.string().nullable(),
    params: samplingParams,
  }),
  /** Answer to `automation`: the text each side shows, and the error line if any. */
  z.object({
    type: z.literal('automationResult'),
    requestId: z.number().int(),
    /** The adapter the view generated with (null: base only). */
    adapter: z.string().nullable(),
    /** The mode the view generated in. */
    mode: playgroundMode,
    outputs: z.object({ base: z.string(), adapter: z.string() }),
    error: z.string(),
  }),
  /** Stop both sides of a generation. */
  z.object({ type: z.literal('stop'), genId: z.number().int() }),
  /** Something failed inside the view; the host logs it. */
  z.object({ type: z.literal('error'), message: z.string() }),
]);
export type PlaygroundToHost = z.infer<typeof playgroundToHost>;

/** Parses an incoming message; returns an error text rather than throwing, for logging. */
export function parseMessage<T>(schema: z.ZodType<T>, raw: unknown): { ok: true; msg: T } | { ok: false; error: string } {
  const r = schema.safeParse(raw);
  return r.success ? { ok: true, msg: r.data } : { ok: false, error: z.prettifyError(r.error) };
}

export { assertNever } from '../util/assertNever';
