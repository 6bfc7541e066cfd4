/**
 * The backend protocol, in one import: versions, frames, methods and run events.
 * Mirror: `python-backend/src/qlora_studio/server/protocol.py` + generated `protocol.schema.json`.
 */
export * from './events';
export * from './frames';
export * from './methods';
export { protocolJsonSchemaSource } from './jsonSchema';
