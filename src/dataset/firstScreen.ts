/**
 * The panel's first screen: the first rows of a dataset file, previewed before anything else
 * (before the line index scans the file and the totals pass starts), reading only the bytes those
 * lines take.
 */
import * as fs from 'node:fs';
import { FIRST_SCREEN_ROWS, toPreviewRow, type PreviewRow } from './previewProtocol';
import type { PreviewSession } from './session';

/** The first `n` lines of `file`, numbered as LineIndex numbers them (split at `\n`, a closing `\r` dropped). */
export async function readFirstLines(file: string, n: number, chunkBytes = 64 * 1024): Promise<string[]> {
  const fd = await fs.promises.open(file, 'r');
  try {
    const parts: Buffer[] = [];
    let newlines = 0;
    let eof = false;
    while (newlines < n && !eof) {
      const chunk = Buffer.allocUnsafe(chunkBytes);
      const { bytesRead } = await fd.read(chunk, 0, chunkBytes, null);
      eof = bytesRead === 0;
      const got = chunk.subarray(0, bytesRead);
      for (let at = got.indexOf(10); at >= 0; at = got.indexOf(10, at + 1)) newlines += 1;
      parts.push(got);
    }
    const lines = Buffer.concat(parts).toString('utf8').split('\n');
    // Without a final newline the last piece is a line; after one, the empty rest is not.
    if (eof && lines[lines.length - 1] === '') lines.pop();
    return lines.slice(0, n).map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  } finally {
    await fd.close();
  }
}

/** The first screen of `file` as panel rows (line numbers 1-based). */
export async function firstScreen(file: string, session: PreviewSession, n = FIRST_SCREEN_ROWS): Promise<PreviewRow[]> {
  const lines = await readFirstLines(file, n);
  return lines.map((text, i) => toPreviewRow(i + 1, session.previewLine(text), (id) => session.tokenizer.isAdded(id)));
}
