/**
 * When a tokenizer's token count is bounded by its text's UTF-8 bytes (plus one word-start token
 * per encoded piece), decided once from tokenizer.json. It holds when every token covers at least
 * one character of the text the model sees and every such character stands for at least one byte
 * of the original (or is the one word-start marker a piece may gain): no normalizer, or only the
 * SentencePiece pair "prepend ▁, spaces to ▁"; a pre-tokenizer that only splits, maps bytes to
 * characters one to one (ByteLevel) or turns spaces into a marker (Metaspace, prepending at most
 * once); and, with byte fallback, the marker itself in the vocabulary (a character outside it falls
 * back to one token per byte of that character). Anything else (a normalizer that can expand text,
 * such as NFKC or lowercasing) answers false, and every row is tokenized.
 */

type Json = Record<string, unknown> | null | undefined;

const SPLITTERS = new Set(['Whitespace', 'WhitespaceSplit', 'Punctuation', 'Digits', 'Split', 'CharDelimiterSplit', 'UnicodeScripts', 'BertPreTokenizer']);

function markerInVocab(model: Json, marker: string): boolean {
  const vocab = model?.['vocab'];
  if (Array.isArray(vocab)) return vocab.some((e) => Array.isArray(e) && e[0] === marker);
  return !!vocab && typeof vocab === 'object' && marker in (vocab as Record<string, unknown>);
}

function normalizerOk(n: Json, model: Json): boolean {
  if (!n) return true;
  if (n['type'] !== 'Sequence') return false;
  const steps = (n['normalizers'] ?? []) as Array<Record<string, unknown>>;
  return steps.every((s) => {
    if (s['type'] === 'Prepend') return typeof s['prepend'] === 'string' && [...(s['prepend'] as string)].length === 1 && (model?.['byte_fallback'] !== true || markerInVocab(model, s['prepend'] as string));
    if (s['type'] === 'Replace') {
      const pattern = s['pattern'] as { String?: unknown } | undefined;
      const content = s['content'];
      return pattern?.String === ' ' && typeof content === 'string' && [...content].length === 1 && (model?.['byte_fallback'] !== true || markerInVocab(model, content));
    }
    return false;
  });
}

function preTokenizerOk(p: Json, model: Json): boolean {
  if (!p) return true;
  const type = p['type'];
  if (type === 'Sequence') return ((p['pretokenizers'] ?? []) as Json[]).every((q) => preTokenizerOk(q, model));
  if (type === 'ByteLevel' || SPLITTERS.has(type as string)) return true;
  if (type === 'Metaspace') {
    const replacement = p['replacement'];
    const scheme = p['prepend_scheme'] ?? (p['add_prefix_space'] === false ? 'never' : 'first');
    return typeof replacement === 'string' && [...replacement].length === 1 && (scheme === 'first' || scheme === 'never') && (model?.['byte_fallback'] !== true || markerInVocab(model, replacement));
  }
  return false;
}

/** True when `surelyTrainedUntruncated`'s byte bound holds for this tokenizer (see the file comment). */
export function bytesBoundTokens(tokenizerJson: Record<string, unknown>): boolean {
  const model = tokenizerJson['model'] as Json;
  const type = model?.['type'];
  if (type !== 'BPE' && type !== 'WordPiece' && type !== 'WordLevel' && type !== 'Unigram') return false;
  return normalizerOk(tokenizerJson['normalizer'] as Json, model) && preTokenizerOk(tokenizerJson['pre_tokenizer'] as Json, model);
}
