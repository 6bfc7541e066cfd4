/**
 * A 52-bit digest of a line's text for exact-duplicate detection: two independent 32-bit
 * MurmurHash3-style lanes over the UTF-16 code units (two units a step), finalised and joined. Equal
 * texts always agree; different texts collide with probability about 2^-52 per pair (a million
 * lines: about one chance in ten thousand of a single false duplicate, as with 52 bits of SHA-1).
 */

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function step(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** The digest of `text`, an integer below 2^52. */
export function lineDigest(text: string): number {
  let a = 0x9747b28c;
  let b = 0x1b56c4e9;
  const n = text.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const k = text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16);
    a = step(a, k);
    b = step(b, k ^ 0x5bd1e995);
  }
  if (i < n) {
    const k = text.charCodeAt(i);
    a = step(a, k);
    b = step(b, k ^ 0x5bd1e995);
  }
  a = fmix(a ^ n);
  b = fmix(b ^ Math.imul(n, 0x27d4eb2f));
  return a * 0x100000 + (b >>> 12);
}
