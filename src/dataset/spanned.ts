/**
 * Trained spans kept in UTF-16 positions of the text and turned into code points (what the rule
 * reports, as Python does) only when read: a row judged without tokens needs only to know whether
 * a span is empty, which the UTF-16 positions answer in a step or two.
 */
import type { Piece } from './pieces';
import { codePointIndex } from './pyString';

function isHigh(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

/** A spanned conversation (masking.ts `Spanned`) whose `spans` (code points) are computed on first read. */
export class LazySpanned {
  private cps: Array<[number, number]> | undefined;

  constructor(readonly text: string, readonly pieces: Piece[], private readonly units: Array<[number, number]>) {}

  /** The spans in code points of `text`. */
  get spans(): Array<[number, number]> {
    if (!this.cps) {
      const cp = codePointIndex(this.text);
      this.cps = this.units.map(([s, e]): [number, number] => [cp(s), cp(e)]);
    }
    return this.cps;
  }

  /** Number of spans (without computing them). */
  get count(): number {
    return this.units.length;
  }

  /**
   * True when some span is empty in code points. A UTF-16 span `[s, e)` with s < e is empty there
   * only when each of its units is a high surrogate followed by another unit (those share the next
   * unit's code point), so the walk stops at the first unit that is not.
   */
  hasEmptySpan(): boolean {
    const t = this.text;
    return this.units.some(([s, e]) => {
      for (let k = s; k < e; k += 1) if (!(k < t.length - 1 && isHigh(t.charCodeAt(k)))) return false;
      return true;
    });
  }
}
