/**
 * Messages between the extension host and the dataset preview panel (webview-ui/preview/), one zod
 * schema per message; both sides parse what they receive and switch exhaustively on `type`.
 * Mirror: none outside TypeScript (the webview bundle imports this file).
 */
import { z } from 'zod';

/** Token classes: 0 masked, 1 trained, 2 special masked, 3 special trained. */
export const tokenClass = z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)]);

/** One example as the panel draws it: tokens `[text, id, class]`, or why the row is bad. */
export const previewRow = z.object({
  line: z.number().int().min(1),
  ok: z.boolean(),
  kind: z.string().optional(),
  message: z.string().optional(),
  tokens: z.array(z.tuple([z.string(), z.number().int(), tokenClass])).optional(),
  /** Tokens before truncation, trained tokens, whether max_seq_len cut it. */
  length: z.number().int().min(0).optional(),
  trained: z.number().int().min(0).optional(),
  truncated: z.boolean().optional(),
});
export type PreviewRow = z.infer<typeof previewRow>;

/** Totals over the lines scanned so far. */
export const previewStats = z.object({
  scannedLines: z.number().int().min(0),
  totalLines: z.number().int().min(0),
  examples: z.number().int().min(0),
  tokens: z.number().int().min(0),
  trained: z.number().int().min(0),
  truncated: z.number().int().min(0),
  badRows: z.number().int().min(0),
  /** Example lengths (tokens) in bins of `binWidth`. */
  histogram: z.array(z.number().int().min(0)),
  binWidth: z.number().int().min(1),
  /** Sequences the scanned examples pack into (best-fit decreasing at max_seq_len). */
  packedSequences: z.number().int().min(0),
  done: z.boolean(),
});
export type PreviewStats = z.infer<typeof previewStats>;

/** Rows the panel asks for at once, and the host sends unasked on opening: about one screen. */
export const FIRST_SCREEN_ROWS = 12;

export const rowFilter = z.enum(['all', 'bad', 'truncated']);
export type RowFilter = z.infer<typeof rowFilter>;

/** Host → panel. */
export const hostToPreview = z.discriminatedUnion('type', [
  /** Sent after `ready`, and again when the recipe or file changes. */
  z.object({ type: z.literal('init'), file: z.string(), recipe: z.string(), maxSeqLen: z.number().int(), packing: z.boolean(), error: z.string().optional() }),
  /** The number of rows the current filter/search selects (the list's virtual height). */
  z.object({ type: z.literal('count'), count: z.number().int().min(0), filter: rowFilter, search: z.string() }),
  /** Answer to `rows`: rows `start ..` of the current selection. */
  z.object({ type: z.literal('rows'), start: z.number().int().min(0), rows: z.array(previewRow) }),
  /** Totals, sent as the background scan proceeds. */
  z.object({ type: z.literal('stats'), stats: previewStats }),
]);
export type HostToPreview = z.infer<typeof hostToPreview>;

/** Panel → host. */
export const previewToHost = z.discriminatedUnion('type', [
  /** Sent once the script runs. */
  z.object({ type: z.literal('ready') }),
  /** The visible window of the list: rows `start .. start+count` of the current selection. */
  z.object({ type: z.literal('rows'), start: z.number().int().min(0), count: z.number().int().min(1).max(500) }),
  /** Filter or search changed. */
  z.object({ type: z.literal('select'), filter: rowFilter, search: z.string() }),
  /** Jump to the source line in the editor. */
  z.object({ type: z.literal('reveal'), line: z.number().int().min(1) }),
  /** After drawing rows: how many rows and coloured tokens are on screen (tests read it). */
  z.object({ type: z.literal('drawn'), rows: z.number().int(), trainedTokens: z.number().int(), maskedTokens: z.number().int(), specialTokens: z.number().int() }),
  /** Something failed inside the view; the host logs it. */
  z.object({ type: z.literal('error'), message: z.string() }),
]);
export type PreviewToHost = z.infer<typeof previewToHost>;

/** The row the panel shows for one previewed line. */
export function toPreviewRow(line: number, p: { ok: true; encoded: { inputIds: number[]; labels: number[]; tokens: string[]; offsets: Array<[number, number]>; text: string; fullLength: number; truncated: boolean }; trained: number } | { ok: false; kind: string; message: string }, isSpecial: (id: number) => boolean): PreviewRow {
  if (!p.ok) return { line, ok: false, kind: p.kind, message: p.message };
  const e = p.encoded;
  const cps = Array.from(e.text);
  const tokens = e.inputIds.map((id, k): [string, number, 0 | 1 | 2 | 3] => {
    const [a, b] = e.offsets[k]!;
    const cls = (isSpecial(id) ? 2 : 0) + (e.labels[k] !== -100 ? 1 : 0);
    return [cps.slice(a, b).join(''), id, cls as 0 | 1 | 2 | 3];
  });
  return { line, ok: true, tokens, length: e.fullLength, trained: p.trained, truncated: e.truncated };
}
