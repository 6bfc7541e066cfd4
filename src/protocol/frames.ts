/**
 * Backend frames: JSON text messages over the WebSocket between the extension (client) and
 * `qlora-studio serve` (server).
 *
 * Mirror: `python-backend/src/qlora_studio/server/protocol.py` (PROTOCOL_VERSION, ERROR_CODES,
 * frame checks), which validates against `server/protocol.schema.json`, generated from this
 * module by `npm run gen:schemas`. Golden frames in `test/fixtures/protocol/` get the same
 * verdict from zod (test/unit/protocol.unit.test.ts) and from jsonschema (tests/test_protocol.py).
 */
import { z } from 'zod';
import { methods, type MethodName } from './methods';
import { runEventEnvelopeSchema } from './events';

/**
 * Bumped on any incompatible change. `hello` must be the first request; a mismatch is answered
 * with `version_mismatch`, whose message names the side to update.
 */
export const PROTOCOL_VERSION = 1;

/**
 * Error codes (mirror of python `ERROR_CODES`); `timeout` and `disconnected` are raised only by the
 * client. `not_resumable`: a resume of a run that has nothing to continue from (the message says
 * why and what to do). `run_live`: a start or resume of a run whose process is still alive.
 */
export const ERROR_CODES = [
  'parse_error',
  'invalid_request',
  'method_not_found',
  'invalid_params',
  'unauthorized',
  'version_mismatch',
  'not_found',
  'conflict',
  'not_resumable',
  'run_live',
  'cancelled',
  'internal',
  'timeout',
  'disconnected',
] as const;
export const errorCodeSchema = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof errorCodeSchema>;

/** A request id: chosen by the client, echoed in the response and in every partial. */
export const requestIdSchema = z.union([z.string().min(1).max(128), z.number().int()]);

/** Client -> server, any time after `hello`: the shape every request has, before its params are checked. */
export const requestEnvelopeSchema = z
  .object({ id: requestIdSchema, method: z.string().min(1).max(128), params: z.record(z.string(), z.unknown()) })
  .strict();

function requestOf<M extends MethodName>(name: M) {
  return z.object({ id: requestIdSchema, method: z.literal(name), params: methods[name].params }).strict();
}

/** Client -> server: a request whose method is known and whose params are valid. */
export const requestFrameSchema = z.discriminatedUnion(
  'method',
  (Object.keys(methods) as MethodName[]).map((m) => requestOf(m)) as unknown as [
    ReturnType<typeof requestOf<'hello'>>,
    ...Array<ReturnType<typeof requestOf<MethodName>>>,
  ],
);
export type RequestFrame = z.infer<typeof requestFrameSchema>;

/** Server -> client: the successful answer to request `id`; `result` is checked per method by the client. */
export const resultFrameSchema = z.object({ id: requestIdSchema, result: z.unknown() }).strict();

/** The error object of an error frame. */
export const errorBodySchema = z
  .object({ code: errorCodeSchema, message: z.string().min(1), data: z.unknown().optional() })
  .strict();
export type ErrorBody = z.infer<typeof errorBodySchema>;

/**
 * Server -> client: request `id` failed. `id` is null when the frame could not be read far
 * enough to find one (bad JSON, not an object); the connection stays open.
 */
export const errorFrameSchema = z.object({ id: requestIdSchema.nullable(), error: errorBodySchema }).strict();

/** Server -> client: progress of a streamed request (generate text pieces, merge progress), before its result. */
export const partialFrameSchema = z.object({ id: requestIdSchema, partial: z.record(z.string(), z.unknown()) }).strict();

/**
 * Server -> client: several consecutive events of one run in a single frame (replay, or a burst
 * the log grew by between two reads). Same order and content as the log lines.
 */
export const eventBatchFrameSchema = z.object({ run_id: z.string().min(1), events: z.array(runEventEnvelopeSchema).min(1) }).strict();

/**
 * Server -> client: any frame. Events are sent exactly as their `events.jsonl` line; the frame
 * check reads their envelope, and the connection then parses each with the typed `runEventSchema`.
 */
export const serverFrameSchema = z.union([
  resultFrameSchema,
  errorFrameSchema,
  partialFrameSchema,
  runEventEnvelopeSchema,
  eventBatchFrameSchema,
]);
export type ServerFrame = z.infer<typeof serverFrameSchema>;
