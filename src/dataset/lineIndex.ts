/**
 * Byte offsets of every line of a large file, built by one streamed scan (never the whole file in
 * memory), so any window of lines can be read on demand.
 */
import * as fs from 'node:fs';

/** Start offsets of lines, growing while `build` runs. */
export class LineIndex {
  private readonly starts: number[] = [0];
  private size = 0;
  done = false;

  constructor(readonly file: string) {}

  /** Lines known so far (a final line without a newline counts once the scan is done). */
  get lines(): number {
    const n = this.starts.length - 1;
    return this.done && this.size > this.starts[n]! ? n + 1 : n;
  }

  /** Scans the file; `onProgress` after each chunk; stops early when `signal` aborts. */
  async build(onProgress?: () => void, signal?: AbortSignal): Promise<void> {
    const stream = fs.createReadStream(this.file, { highWaterMark: 1 << 20 });
    let offset = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (signal?.aborted) {
        stream.destroy();
        return;
      }
      let at = chunk.indexOf(10);
      while (at >= 0) {
        this.starts.push(offset + at + 1);
        at = chunk.indexOf(10, at + 1);
      }
      offset += chunk.length;
      this.size = offset;
      onProgress?.();
    }
    this.done = true;
    onProgress?.();
  }

  /** The text of line `i` (0-based), without its newline. */
  async read(i: number, fd: fs.promises.FileHandle): Promise<string> {
    const start = this.starts[i]!;
    const end = i + 1 < this.starts.length ? this.starts[i + 1]! - 1 : this.size;
    const buf = Buffer.alloc(Math.max(0, end - start));
    await fd.read(buf, 0, buf.length, start);
    return buf.toString('utf8').replace(/\r$/, '');
  }
}
