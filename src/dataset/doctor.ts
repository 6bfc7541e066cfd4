/**
 * The dataset doctor: one streamed pass over a JSONL file (never the whole file in memory)
 * listing every bad row by line, with the trainer's bad-row kinds plus what only a whole-file pass
 * or a second render sees: exact duplicates, EOS cut off by truncation while pad == eos, and a
 * training render that differs from the inference render (generation prompt).
 */
import { DigestSet } from './digestSet';
import { cleanContents, lazyRender, startsWith } from './lazyRender';
import { lineDigest } from './lineDigest';
import { readLines } from './lineReader';
import type { PreviewSession } from './session';
import type { ChatMessage } from './template';

/** Kinds the doctor reports beyond the trainer's bad rows. */
export type DoctorOnlyKind = 'duplicate' | 'eos_masked' | 'inference_mismatch';

/** One finding on one line (1-based). */
export interface DoctorIssue {
  line: number;
  kind: string;
  message: string;
  severity: 'error' | 'warning';
  /** For `duplicate`: the line it repeats. */
  firstLine?: number;
}

/** Totals of a pass (rows whose verdict needs no tokens are not tokenized, so no token totals). */
export interface DoctorSummary {
  lines: number;
  examples: number;
  truncated: number;
  badRows: number;
  bytes: number;
  cancelled: boolean;
}

/**
 * Checks one encoded conversation for what the trainer accepts but trains badly. `contentsChecked`:
 * the caller knows no content holds a reserved character (the masking rule accepted the row).
 */
export function conversationWarnings(session: PreviewSession, messages: ChatMessage[], truncated: boolean, labels: number[], ids: number[], contentsChecked = false): Array<Omit<DoctorIssue, 'line'>> {
  const out: Array<Omit<DoctorIssue, 'line'>> = [];
  const tok = session.tokenizer;
  const eosId = tok.idOf(tok.special.eos_token);
  if (truncated && eosId !== undefined && tok.special.pad_token === tok.special.eos_token) {
    const lastTrained = labels.reduce((acc, l, k) => (l !== -100 ? k : acc), -1);
    const trainedEos = labels.some((l, k) => l !== -100 && ids[k] === eosId);
    if (lastTrained >= 0 && !trainedEos) {
      out.push({ kind: 'eos_masked', severity: 'warning', message: `truncation at max_seq_len=${session.data.max_seq_len} cuts off the end-of-turn/EOS token and pad == eos: this example never teaches the model to stop; raise data.max_seq_len or shorten the conversation` });
    }
  }
  const lastAssistant = messages.map((m) => m.role).lastIndexOf('assistant');
  if (session.template && lastAssistant >= 0) {
    const t = session.template;
    const clean = contentsChecked || cleanContents(messages);
    const fullR = lazyRender(t, messages, false, tok.special, clean);
    const promptR = lazyRender(t, messages.slice(0, lastAssistant), true, tok.special, clean);
    if (!startsWith(fullR, promptR)) {
      const full = fullR.text();
      const prompt = promptR.text();
      let i = 0;
      while (i < prompt.length && prompt[i] === full[i]) i += 1;
      out.push({ kind: 'inference_mismatch', severity: 'warning', message: `the inference prompt (generation prompt) differs from the training render at character ${i}: training sees ${JSON.stringify(full.slice(i, i + 24))}, inference ${JSON.stringify(prompt.slice(i, i + 24))}; the model is trained on a format it will not be prompted with` });
    }
  }
  return out;
}

/** Runs the doctor over `file`; `onProgress(bytes)` is called every ~1000 lines; `signal` cancels. */
export async function runDoctor(file: string, session: PreviewSession, onIssue: (i: DoctorIssue) => void, opts: { signal?: AbortSignal; onProgress?: (bytes: number) => void } = {}): Promise<DoctorSummary> {
  // A 52-bit digest of each line's text, in a compact table (a million lines in about 24 MB).
  const seen = new DigestSet();
  const sum: DoctorSummary = { lines: 0, examples: 0, truncated: 0, badRows: 0, bytes: 0, cancelled: false };
  const onLine = (line: string, bytes: number): void => {
    sum.lines += 1;
    sum.bytes += bytes;
    if (sum.lines % 1000 === 0) opts.onProgress?.(sum.bytes);
    const trimmed = line.trim();
    if (trimmed === '') return;
    const n = sum.lines;
    const first = seen.firstOrAdd(lineDigest(trimmed), n);
    if (first !== undefined) {
      onIssue({ line: n, kind: 'duplicate', severity: 'warning', firstLine: first, message: `exact duplicate of line ${first}: it is trained twice; delete it unless that is intended` });
    }
    const p = session.checkLine(line);
    if (!p.ok) {
      sum.badRows += 1;
      onIssue({ line: n, kind: p.kind, severity: 'error', message: p.message });
      return;
    }
    sum.examples += 1;
    const truncated = p.encoded?.truncated ?? false;
    if (truncated) sum.truncated += 1;
    if (typeof p.messages !== 'string') {
      for (const w of conversationWarnings(session, p.messages, truncated, p.encoded?.labels ?? [], p.encoded?.inputIds ?? [], true)) onIssue({ line: n, ...w });
    }
  };
  sum.cancelled = !(await readLines(file, onLine, opts.signal));
  return sum;
}
