/**
 * One byte-level word through the BPE model: its UTF-8 bytes become byte-alphabet symbols, merged,
 * and each token's byte range is widened to whole characters (a token holding part of a
 * character spans that character, as the Rust `tokenizers` report it) in UTF-16 units.
 */
import type { Symbols } from './bpeMerges';
import { BYTE_CHARS, type BpeModel } from './bpeModel';

/** Tokens of a word as `[id, start, end]` triples, offsets relative to the word. */
export type WordResult = Int32Array;

let bytes = new Uint8Array(256);
/** Per byte: UTF-16 start and end of the character holding it. */
let charStart = new Int32Array(256);
let charEnd = new Int32Array(256);

/** Encodes one pre-tokenized word of byte-level BPE. */
export function byteLevelWord(word: string, model: BpeModel, sym: Symbols): WordResult {
  if (bytes.length < word.length * 3) {
    bytes = new Uint8Array(word.length * 3);
    charStart = new Int32Array(word.length * 3);
    charEnd = new Int32Array(word.length * 3);
  }
  let n = 0;
  const put = (b: number, s: number, e: number) => {
    bytes[n] = b;
    charStart[n] = s;
    charEnd[n] = e;
    n += 1;
  };
  for (let i = 0; i < word.length; i += 1) {
    const c = word.charCodeAt(i);
    if (c < 0x80) put(c, i, i + 1);
    else if (c < 0x800) {
      put(0xc0 | (c >> 6), i, i + 1);
      put(0x80 | (c & 63), i, i + 1);
    } else if (c >= 0xd800 && c < 0xdc00 && i + 1 < word.length) {
      const cp = ((c - 0xd800) << 10) + (word.charCodeAt(i + 1) - 0xdc00) + 0x10000;
      put(0xf0 | (cp >> 18), i, i + 2);
      put(0x80 | ((cp >> 12) & 63), i, i + 2);
      put(0x80 | ((cp >> 6) & 63), i, i + 2);
      put(0x80 | (cp & 63), i, i + 2);
      i += 1;
    } else {
      put(0xe0 | (c >> 12), i, i + 1);
      put(0x80 | ((c >> 6) & 63), i, i + 1);
      put(0x80 | (c & 63), i, i + 1);
    }
  }
  if (model.ignoreMerges) {
    let mapped = '';
    for (let k = 0; k < n; k += 1) mapped += BYTE_CHARS[bytes[k]!]!;
    const id = model.vocab.get(mapped);
    if (id !== undefined) return Int32Array.of(id, 0, word.length);
  }
  const count = model.encodeBytes(bytes, 0, n, sym);
  const out = new Int32Array(count * 3);
  for (let k = 0; k < count; k += 1) {
    out[3 * k] = sym.ids[k]!;
    out[3 * k + 1] = charStart[sym.starts[k]!]!;
    out[3 * k + 2] = charEnd[sym.ends[k]! - 1]!;
  }
  return out;
}
