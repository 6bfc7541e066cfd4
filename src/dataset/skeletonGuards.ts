/**
 * The pieces a skeleton is made of beyond literal text: content slots that write a pure transform
 * of a message's content (trim, strip, a piece of a split), and guards, the results of predicates
 * the template asked about a content while its skeleton was traced. A row reuses a skeleton only
 * when every guard answers the same on its contents: the template then takes the same path, so
 * its text is the skeleton with the row's (transformed) contents written in.
 */
import type { ChatMessage } from './template';

/** A pure string transform, named by a key that identifies it across traces. */
export interface Transform {
  key: string;
  f: (s: string) => string;
}

/** A content slot: message `i`'s content through `chain`; `key` names the pair. */
export interface Slot {
  i: number;
  chain: readonly Transform[];
  key: string;
}

/** A predicate's recorded answer: `test` on message `i`'s content through `chain` gave `result` (`i` -1: a read of the clock, content ignored). */
export interface Guard {
  i: number;
  chain: readonly Transform[];
  test: (s: string) => unknown;
  result: unknown;
}

/** `s` through every transform of `chain`, in order. */
export function applyChain(chain: readonly Transform[], s: string): string {
  let out = s;
  for (const t of chain) out = t.f(out);
  return out;
}

/** A slot for message `i` through `chain`. */
export function slotOf(i: number, chain: readonly Transform[]): Slot {
  return { i, chain, key: `${i}|${chain.map((t) => t.key).join('|')}` };
}

/**
 * True when every guard answers on `messages` (with message `swap`'s content replaced by `swapped`
 * when given) as it did when traced. A predicate that throws answers differently.
 */
export function guardsHold(guards: readonly Guard[], messages: readonly ChatMessage[], swap = -1, swapped = ''): boolean {
  for (const g of guards) {
    const content = g.i < 0 ? '' : g.i === swap ? swapped : messages[g.i]!.content;
    try {
      if (g.test(applyChain(g.chain, content)) !== g.result) return false;
    } catch {
      return false;
    }
  }
  return true;
}
