/**
 * The bytes a vocabulary token stands for in the original text, per tokenizer family: byte-level
 * BPE (GPT-2 style byte-to-unicode table), SentencePiece/Metaspace (`▁` is a space, `<0xNN>` a
 * byte) and WordPiece (`##` continues a word).
 */

/** How a tokenizer's vocabulary spells text. */
export type SurfaceKind = 'byteLevel' | 'metaspace' | 'wordPiece';

/** GPT-2's reversible byte <-> printable-unicode table, inverted: char code -> byte. */
const byteOfChar: Map<number, number> = (() => {
  const printable: number[] = [];
  for (let i = 33; i <= 126; i += 1) printable.push(i);
  for (let i = 161; i <= 172; i += 1) printable.push(i);
  for (let i = 174; i <= 255; i += 1) printable.push(i);
  const map = new Map<number, number>();
  for (const byte of printable) map.set(byte, byte);
  let extra = 0;
  for (let byte = 0; byte < 256; byte += 1) {
    if (!map.has(byte)) {
      map.set(256 + extra, byte);
      extra += 1;
    }
  }
  return map;
})();

const encoder = new TextEncoder();

/** The surface bytes of one vocabulary token. */
export function tokenSurface(token: string, kind: SurfaceKind): Uint8Array {
  switch (kind) {
    case 'byteLevel': {
      const out: number[] = [];
      for (const ch of token) {
        const byte = byteOfChar.get(ch.codePointAt(0)!);
        if (byte === undefined) out.push(...encoder.encode(ch));
        else out.push(byte);
      }
      return Uint8Array.from(out);
    }
    case 'metaspace': {
      const hex = /^<0x([0-9A-Fa-f]{2})>$/.exec(token);
      if (hex) return Uint8Array.of(parseInt(hex[1]!, 16));
      return encoder.encode(token.replace(/\u2581/g, ' '));
    }
    case 'wordPiece':
      return encoder.encode(token.startsWith('##') ? token.slice(2) : token);
    default: {
      const never: never = kind;
      throw new Error(`unknown tokenizer kind ${String(never)}`);
    }
  }
}
