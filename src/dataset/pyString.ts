/** Python `str` behaviour the masking rule relies on: its whitespace set and code-point offsets. */

/** Characters Python's `str.isspace()` accepts (differs from JavaScript's `\s`/`trim`). */
const PY_SPACE = '\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000';

function isSpace(ch: string): boolean {
  return PY_SPACE.includes(ch);
}

/** Python `s.lstrip()`. */
export function pyLstrip(s: string): string {
  let a = 0;
  while (a < s.length && isSpace(s[a]!)) a += 1;
  return s.slice(a);
}

/** Python `s.rstrip()`. */
export function pyRstrip(s: string): string {
  let b = s.length;
  while (b > 0 && isSpace(s[b - 1]!)) b -= 1;
  return s.slice(0, b);
}

/** Python `s.strip()`. */
export function pyStrip(s: string): string {
  return pyLstrip(pyRstrip(s));
}

/**
 * Maps UTF-16 indices of `s` to code-point indices (Python `str` indices): a high surrogate
 * followed by another unit shares its code point. Indices asked in increasing order cost one walk
 * in all (the walk restarts for a smaller one).
 */
export function codePointIndex(s: string): (utf16: number) => number {
  const high = /[\uD800-\uDBFF]/g;
  if (!high.test(s)) return (i) => i;
  let at = 0;
  let highs = 0;
  return (i) => {
    const stop = Math.min(i, s.length - 1);
    if (stop < at) {
      at = 0;
      highs = 0;
    }
    high.lastIndex = at;
    for (let m = high.exec(s); m && m.index < stop; m = high.exec(s)) highs += 1;
    at = Math.max(at, stop);
    return i - highs;
  };
}

/** Number of code points in `s`. */
export function cpLength(s: string): number {
  return codePointIndex(s)(s.length);
}
