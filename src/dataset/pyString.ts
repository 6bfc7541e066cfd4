/** Python `str` behaviour the masking rule relies on: its whitespace set and code-point offsets. */

/** Characters Python's `str.isspace()` accepts (differs from JavaScript's `\s`/`trim`). */
const PY_SPACE = '\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000';

/** Python `ch.isspace()` for one character. */
function isPySpace(ch: string): boolean {
  return PY_SPACE.includes(ch);
}

/** Python `s.lstrip()`. */
export function pyLstrip(s: string): string {
  let a = 0;
  while (a < s.length && isPySpace(s[a]!)) a += 1;
  return s.slice(a);
}

/** Python `s.rstrip()`. */
export function pyRstrip(s: string): string {
  let b = s.length;
  while (b > 0 && isPySpace(s[b - 1]!)) b -= 1;
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
  // Positions of the high surrogates that share a code point with the next unit, found in one walk.
  const at: number[] = [];
  for (let i = 0; i < s.length - 1; i += 1) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) at.push(i);
  }
  if (at.length === 0) return (i) => i;
  let k = 0;
  return (i) => {
    if (k > 0 && at[k - 1]! >= i) k = 0;
    while (k < at.length && at[k]! < i) k += 1;
    return i - k;
  };
}

/** Number of code points in `s`. */
export function cpLength(s: string): number {
  return codePointIndex(s)(s.length);
}
