/**
 * The one zod object the Python server's JSON Schema is generated from (scripts/genSchemas.ts ->
 * `python-backend/src/qlora_studio/server/protocol.schema.json`). Python picks its parts by
 * property name: `request_envelope`, `methods.<name>.params|result|partial`, `server_frame`,
 * `run_event`, `error_codes`, `protocol_version`.
 */
import { z } from 'zod';
import { methods, type MethodName } from './methods';
import { ERROR_CODES, PROTOCOL_VERSION, requestEnvelopeSchema, requestFrameSchema, serverFrameSchema } from './frames';
import { runEventSchema } from './events';

function methodsObject() {
  const shape: Record<string, z.ZodType> = {};
  for (const name of Object.keys(methods) as MethodName[]) {
    const m = methods[name];
    shape[name] = z.object({ params: m.params, result: m.result, partial: m.partial });
  }
  return z.object(shape);
}

/** Container schema: never validates a frame itself, it only carries the parts by name. */
export const protocolJsonSchemaSource = z.object({
  protocol_version: z.literal(PROTOCOL_VERSION),
  error_codes: z.enum(ERROR_CODES),
  request_envelope: requestEnvelopeSchema,
  request_frame: requestFrameSchema,
  server_frame: serverFrameSchema,
  run_event: runEventSchema,
  methods: methodsObject(),
});
