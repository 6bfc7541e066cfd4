/**
 * A compact open-addressing hash map from 52-bit line digests to the line that first had them:
 * two typed arrays (12 bytes a slot, at most half full), so a million lines cost about 24 MB and
 * no per-entry objects.
 */

/** Digest -> first line (1-based). */
export class DigestSet {
  private keys: Float64Array;
  private lines: Int32Array;
  private count = 0;

  constructor(capacity = 1 << 16) {
    this.keys = new Float64Array(capacity);
    this.lines = new Int32Array(capacity);
  }

  private slot(key: number): number {
    const mask = this.keys.length - 1;
    let i = (key >>> 0) & mask;
    while (this.lines[i] !== 0 && this.keys[i] !== key) i = (i + 1) & mask;
    return i;
  }

  /** The line first seen with `key`; or records `line` for it and returns undefined. */
  firstOrAdd(key: number, line: number): number | undefined {
    const i = this.slot(key);
    if (this.lines[i] !== 0) return this.lines[i];
    this.keys[i] = key;
    this.lines[i] = line;
    this.count += 1;
    if (this.count * 2 > this.keys.length) this.grow();
    return undefined;
  }

  private grow(): void {
    const keys = this.keys;
    const lines = this.lines;
    this.keys = new Float64Array(keys.length * 2);
    this.lines = new Int32Array(lines.length * 2);
    for (let i = 0; i < keys.length; i += 1) {
      if (lines[i] === 0) continue;
      const j = this.slot(keys[i]!);
      this.keys[j] = keys[i]!;
      this.lines[j] = lines[i]!;
    }
  }
}
