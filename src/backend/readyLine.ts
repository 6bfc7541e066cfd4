/**
 * The server's ready line (`QLORA_STUDIO_READY {...}` on stdout, see python server/cli.py), parsed
 * with zod: the launcher trusts nothing it reads from a child process unchecked.
 */
import { z } from 'zod';

export const READY_PREFIX = 'QLORA_STUDIO_READY ';

export const readyInfoSchema = z.object({
  port: z.number().int().min(1).max(65535),
  pid: z.number().int().min(1),
  host: z.string(),
  token_file: z.string().min(1),
  protocol: z.number().int(),
});
export type ReadyInfo = z.infer<typeof readyInfoSchema>;

/** The ready info in a stdout line, or undefined when the line is something else. Throws on a malformed ready line. */
export function parseReadyLine(line: string): ReadyInfo | undefined {
  if (!line.startsWith(READY_PREFIX)) return undefined;
  return readyInfoSchema.parse(JSON.parse(line.slice(READY_PREFIX.length)));
}

/** The WebSocket URL of a ready server (IPv6 hosts bracketed). */
export function wsUrl(info: Pick<ReadyInfo, 'host' | 'port'>): string {
  const host = info.host === 'localhost' ? '127.0.0.1' : info.host;
  return `ws://${host.includes(':') ? `[${host}]` : host}:${info.port}`;
}
