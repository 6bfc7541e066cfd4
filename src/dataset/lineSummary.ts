/**
 * Text of the inline preview: the CodeLens title of one line ("412 tok · 38% trained · truncated
 * at 2048") and the hover's rendering of the example (masked parts dimmed, trained parts
 * highlighted, special tokens boxed), as the restricted HTML VS Code hovers accept.
 */
import type { Encoded } from './masking';
import type { LinePreview } from './session';

/** The CodeLens title of one previewed line. */
export function lensTitle(p: LinePreview, maxSeqLen: number): string {
  if (!p.ok) return `$(warning) ${p.kind}: ${p.message.length > 90 ? `${p.message.slice(0, 89)}…` : p.message}`;
  const n = p.encoded.inputIds.length;
  const pct = n === 0 ? 0 : Math.round((100 * p.trained) / n);
  const parts = [`${p.encoded.fullLength} tok`, `${pct}% trained`];
  if (p.encoded.truncated) parts.push(`truncated at ${maxSeqLen}`);
  return parts.join(' · ');
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** One run of equally styled text. */
export interface Piece {
  text: string;
  style: 'trained' | 'masked' | 'special-trained' | 'special-masked' | 'cut';
}

/** Splits the rendered text into styled pieces by token (merging neighbours of one style). */
export function pieces(e: Encoded, isSpecial: (id: number) => boolean): Piece[] {
  const cps = Array.from(e.text);
  const out: Piece[] = [];
  let last = 0;
  const push = (text: string, style: Piece['style']) => {
    if (!text) return;
    const prev = out[out.length - 1];
    if (prev && prev.style === style) prev.text += text;
    else out.push({ text, style });
  };
  e.inputIds.forEach((id, k) => {
    const [a, b] = e.offsets[k]!;
    if (a > last) push(cps.slice(last, a).join(''), 'masked');
    const start = Math.max(a, last);
    const trained = e.labels[k] !== -100;
    const special = isSpecial(id);
    push(cps.slice(start, b).join(''), special ? (trained ? 'special-trained' : 'special-masked') : trained ? 'trained' : 'masked');
    last = Math.max(last, b);
  });
  if (last < cps.length) push(cps.slice(last).join(''), 'cut');
  return out;
}

const STYLE: Record<Piece['style'], string> = {
  trained: 'color:#1e7f3c;background-color:#d7f5df;',
  masked: 'color:#8a8a8a;',
  'special-trained': 'color:#ffffff;background-color:#1e7f3c;',
  'special-masked': 'color:#ffffff;background-color:#8a8a8a;',
  cut: 'color:#c0392b;',
};

/** The hover body: a legend line, then the example as styled HTML (newlines shown as ↵). */
export function hoverHtml(p: LinePreview, isSpecial: (id: number) => boolean, maxSeqLen: number): string {
  if (!p.ok) return `**${p.kind}**: ${escapeHtml(p.message)}`;
  const e = p.encoded;
  const legend = `**${lensTitle(p, maxSeqLen)}** — <span style="${STYLE.trained}">trained</span> <span style="${STYLE.masked}">masked (label -100)</span> <span style="${STYLE['special-masked']}">special token</span>${e.truncated ? ` <span style="${STYLE.cut}">cut by max_seq_len</span>` : ''}`;
  const body = pieces(e, isSpecial)
    .map((piece) => `<span style="${STYLE[piece.style]}">${escapeHtml(piece.text).replace(/\n/g, '↵<br>').replace(/ {2}/g, ' &nbsp;')}</span>`)
    .join('');
  return `${legend}\n\n<code>${body}</code>`;
}
