/**
 * The dataset preview panel: one example per row, tokens coloured trained / masked / special (id
 * on hover), the max_seq_len cut, filter and search, jump to the source line, a length histogram
 * and totals. The list is virtualized: only visible rows exist in the DOM, fetched from the host
 * by window.
 */
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import { FIRST_SCREEN_ROWS, hostToPreview, type HostToPreview, type PreviewRow, type PreviewStats, type PreviewToHost, type RowFilter } from '../../src/dataset/previewProtocol';
import { assertNever } from '../../src/util/assertNever';
import { createBridge, el } from '../shared/bridge';
import './preview.css';

const ROW_H = 132;
/** Rows asked for at once: about one screen, so the first screen needs no more work than it shows. */
const WINDOW = FIRST_SCREEN_ROWS;
const bridge = createBridge<HostToPreview, PreviewToHost>(hostToPreview, (error) => bridge.post({ type: 'error', message: `bad host message: ${error}` }));

let count = 0;
/** The selection the last `count` described. */
let shown: { filter: RowFilter; search: string } = { filter: 'all', search: '' };
let maxSeqLen = 0;
let packing = false;
const cache = new Map<number, PreviewRow>();
const asked = new Set<number>();

type Field = HTMLElement & { value: string };
const filterSelect = el('vscode-single-select', { id: 'filter' }) as Field;
for (const [v, label] of [['all', 'All rows'], ['bad', 'Bad rows'], ['truncated', 'Truncated']] as const) filterSelect.append(el('vscode-option', { value: v }, label));
const search = el('vscode-textfield', { id: 'search', placeholder: 'Search text' }) as Field;
const header = el('div', { class: 'header' });
const totals = el('div', { class: 'totals', id: 'totals' }, 'Scanning…');
const histogram = el('div', { class: 'histogram', id: 'histogram' });
const legend = el('div', { class: 'legend' }, el('span', { class: 't1' }, 'trained'), ' ', el('span', { class: 't0' }, 'masked'), ' ', el('span', { class: 't3' }, 'special (trained)'), ' ', el('span', { class: 't2' }, 'special (masked)'), ' ', el('span', { class: 'cut' }, '✂ max_seq_len'));
const viewport = el('div', { class: 'viewport', id: 'rows' });
const spacer = el('div', { class: 'spacer' });
viewport.append(spacer);
document.getElementById('app')!.append(header, el('div', { class: 'toolbar' }, filterSelect, search, legend), totals, histogram, viewport);

function visibleRange(): [number, number] {
  const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_H) - 2);
  const last = Math.min(count, Math.ceil((viewport.scrollTop + viewport.clientHeight) / ROW_H) + 2);
  return [first, last];
}

function tokenSpan([text, id, cls]: [string, number, 0 | 1 | 2 | 3]): HTMLElement {
  const shown = text.replace(/\n/g, '↵\n');
  return el('span', { class: `tok t${cls}`, title: `id ${id}${cls & 1 ? ' · trained' : ' · masked (-100)'}` }, shown);
}

function rowElement(k: number, r: PreviewRow): HTMLElement {
  const link = el('a', { href: '#', class: 'line' }, `line ${r.line}`);
  link.addEventListener('click', (e) => {
    e.preventDefault();
    bridge.post({ type: 'reveal', line: r.line });
  });
  const row = el('div', { class: r.ok ? 'row' : 'row bad', style: `top:${k * ROW_H}px;height:${ROW_H - 6}px` });
  if (!r.ok) {
    row.append(el('div', { class: 'meta' }, link, ` · ${r.kind ?? 'bad row'}`), el('div', { class: 'message' }, r.message ?? ''));
    return row;
  }
  const pct = r.tokens && r.tokens.length ? Math.round((100 * (r.trained ?? 0)) / r.tokens.length) : 0;
  const meta = el('div', { class: 'meta' }, link, ` · ${r.length} tok · ${pct}% trained`);
  if (r.truncated) meta.append(el('span', { class: 'cut' }, ` · truncated at ${maxSeqLen}`));
  const toks = el('div', { class: 'tokens' });
  for (const t of r.tokens ?? []) toks.append(tokenSpan(t));
  if (r.truncated) toks.append(el('span', { class: 'cut marker' }, '✂'));
  row.append(meta, toks);
  return row;
}

function draw(): void {
  spacer.style.height = `${count * ROW_H}px`;
  const [first, last] = visibleRange();
  for (const node of Array.from(viewport.querySelectorAll('.row'))) node.remove();
  let trained = 0;
  let masked = 0;
  let special = 0;
  let drawn = 0;
  const missing: number[] = [];
  for (let k = first; k < last; k += 1) {
    const r = cache.get(k);
    if (!r) {
      missing.push(k);
      continue;
    }
    viewport.append(rowElement(k, r));
    drawn += 1;
    for (const [, , cls] of r.tokens ?? []) {
      if (cls & 2) special += 1;
      if (cls & 1) trained += 1;
      else masked += 1;
    }
  }
  const need = missing.filter((k) => !asked.has(k));
  if (need.length) {
    const start = need[0]!;
    for (let k = start; k < start + WINDOW; k += 1) asked.add(k);
    bridge.post({ type: 'rows', start, count: WINDOW });
  }
  if (drawn) bridge.post({ type: 'drawn', rows: drawn, trainedTokens: trained, maskedTokens: masked, specialTokens: special });
}

function showStats(s: PreviewStats): void {
  const pct = s.tokens ? ((100 * s.trained) / s.tokens).toFixed(1) : '0';
  totals.textContent = `${s.examples} examples · ${s.tokens} tokens · ${pct}% trained · ${s.truncated} truncated · ${s.badRows} bad rows` +
    (packing ? ` · packs into ${s.packedSequences} sequences of ${maxSeqLen}` : '') + (s.done ? '' : ` · scanned ${s.scannedLines} of ${s.totalLines} lines…`);
  histogram.replaceChildren();
  const top = Math.max(1, ...s.histogram);
  s.histogram.forEach((n, b) => {
    histogram.append(el('div', { class: 'bar', style: `height:${Math.round((100 * n) / top)}%`, title: `${b * s.binWidth}–${(b + 1) * s.binWidth - 1} tokens: ${n}` }));
  });
}

bridge.onMessage((msg) => {
  switch (msg.type) {
    case 'init':
      maxSeqLen = msg.maxSeqLen;
      packing = msg.packing;
      header.textContent = `${msg.file} — following ${msg.recipe} (max_seq_len ${msg.maxSeqLen})`;
      return;
    case 'count': {
      // Every row stays where it is while the unfiltered list only grows (the host indexing the
      // file after sending the first screen); any other change renumbers the rows.
      const grows = msg.filter === 'all' && !msg.search && shown.filter === 'all' && !shown.search && msg.count >= count;
      if (!grows) {
        cache.clear();
        asked.clear();
      }
      shown = { filter: msg.filter, search: msg.search };
      count = msg.count;
      draw();
      return;
    }
    case 'rows':
      msg.rows.forEach((r, i) => cache.set(msg.start + i, r));
      draw();
      return;
    case 'stats':
      showStats(msg.stats);
      return;
    default:
      assertNever(msg);
  }
});

let scrollPending = false;
viewport.addEventListener('scroll', () => {
  if (scrollPending) return;
  scrollPending = true;
  requestAnimationFrame(() => {
    scrollPending = false;
    draw();
  });
});
const select = () => {
  cache.clear();
  asked.clear();
  viewport.scrollTop = 0;
  bridge.post({ type: 'select', filter: (filterSelect.value || 'all') as RowFilter, search: search.value ?? '' });
};
filterSelect.addEventListener('change', select);
let searchTimer: ReturnType<typeof setTimeout> | undefined;
search.addEventListener('input', () => {
  if (searchTimer) clearTimeout(searchTimer);
  searchTimer = setTimeout(select, 250);
});
bridge.post({ type: 'ready' });
