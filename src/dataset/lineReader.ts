/**
 * Streams the lines of a file as readline does (`\n`, `\r\n` and a lone `\r` end a line; a last
 * line without an ending counts when it is not empty), reading Buffers and decoding each line once,
 * so a pass over a large file costs little more than reading it. Lines are handed over
 * synchronously a chunk at a time; the event loop gets a turn between chunks.
 */
import * as fs from 'node:fs';

/** Called for each line: its text, and the bytes it took in the file with its line ending. */
export type OnLine = (text: string, bytes: number) => void;

const LF = 10;
const CR = 13;

/**
 * Hands every complete line of `buf` to `onLine`; returns where the unfinished rest starts. At
 * the end of the file (`last`) everything is complete; before it, a `\r` closing the buffer waits
 * for the next byte (it may open a `\r\n`).
 */
function splitBuffer(buf: Buffer, last: boolean, onLine: OnLine): number {
  let pos = 0;
  let lf = buf.indexOf(LF);
  let cr = buf.indexOf(CR);
  for (;;) {
    if (lf !== -1 && lf < pos) lf = buf.indexOf(LF, pos);
    if (cr !== -1 && cr < pos) cr = buf.indexOf(CR, pos);
    const end = lf === -1 ? cr : cr === -1 ? lf : Math.min(lf, cr);
    if (end === -1) break;
    let width = 1;
    if (buf[end] === CR) {
      if (end + 1 === buf.length && !last) break;
      if (buf[end + 1] === LF) width = 2;
    }
    onLine(buf.toString('utf8', pos, end), end - pos + width);
    pos = end + width;
  }
  if (last && pos < buf.length) {
    onLine(buf.toString('utf8', pos), buf.length - pos);
    return buf.length;
  }
  return pos;
}

/** Reads `file` line by line; returns false when `signal` aborted the pass, true at the end of the file. */
export async function readLines(file: string, onLine: OnLine, signal?: AbortSignal, chunkBytes = 1 << 20): Promise<boolean> {
  const fd = await fs.promises.open(file, 'r');
  try {
    let rest: Buffer = Buffer.alloc(0);
    for (;;) {
      if (signal?.aborted) return false;
      const chunk = Buffer.allocUnsafe(chunkBytes);
      const { bytesRead } = await fd.read(chunk, 0, chunkBytes, null);
      const buf = rest.length ? Buffer.concat([rest, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
      const done = bytesRead === 0;
      const used = splitBuffer(buf, done, onLine);
      if (done) return true;
      rest = Buffer.from(buf.subarray(used));
    }
  } finally {
    await fd.close();
  }
}
