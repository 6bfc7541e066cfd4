/**
 * Compile-time exhaustiveness check for switches over message types (kept free of zod so the
 * activation path can use it without loading schemas).
 */
export function assertNever(x: never): never {
  throw new Error(`unhandled message ${JSON.stringify(x)}`);
}
