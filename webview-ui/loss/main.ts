/**
 * The loss view: uPlot charts of every selected run (train + eval loss on top, one picked metric
 * below), EMA smoothing, hover values in the legend, CSV/PNG export. State (data and UI choices)
 * survives hide/show through setState; the host replays what the restored state lacks.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import { assertNever, hostToLoss, type HostToLoss, type LossToHost } from '../../src/protocol/webview';
import { distinctRunLabels } from '../../src/runs/runLabel';
import { createBridge, el } from '../shared/bridge';
import { ChartModel, align, downsample, ema, type Metric } from './chartModel';
import './loss.css';

const LOWER_METRICS: Array<{ key: Metric; label: string }> = [
  { key: 'lr', label: 'Learning rate' },
  { key: 'grad_norm', label: 'Grad norm' },
  { key: 'tokens_per_s', label: 'Tokens/s' },
  { key: 'mem_allocated_mb', label: 'GPU memory (MB)' },
  { key: 'mem_peak_mb', label: 'Peak GPU memory (MB)' },
  { key: 'rss_mb', label: 'Process RSS (MB)' },
];
const COLORS = ['#4e9de6', '#e6a23c', '#67c23a', '#f56c6c', '#b37feb', '#36cfc9', '#ff85c0', '#d4b106'];
const MAX_POINTS = 2000;

interface UiState {
  selected: string[];
  smoothing: number;
  metric: Metric;
  focus?: string;
}

const bridge = createBridge<HostToLoss, LossToHost>(hostToLoss, (error) => bridge.post({ type: 'error', message: `bad host message: ${error}` }));
const saved = (bridge.getState() ?? {}) as { chart?: unknown; ui?: Partial<UiState> };
const model = ChartModel.restore(saved.chart);
const ui: UiState = {
  selected: Array.isArray(saved.ui?.selected) ? saved.ui.selected.filter((s): s is string => typeof s === 'string') : [],
  smoothing: typeof saved.ui?.smoothing === 'number' ? saved.ui.smoothing : 0.6,
  metric: LOWER_METRICS.some((m) => m.key === saved.ui?.metric) ? (saved.ui!.metric as Metric) : 'lr',
  focus: saved.ui?.focus,
};
const runStates = new Map<string, string>();

// ---- DOM
const runList = el('div', { class: 'runs' });
const smoothing = el('input', { type: 'range', min: '0', max: '0.99', step: '0.01', id: 'smoothing', 'aria-label': 'Smoothing' });
smoothing.value = String(ui.smoothing);
const smoothingLabel = el('span', { class: 'smoothing-value' }, ui.smoothing.toFixed(2));
const metricSelect = el('vscode-single-select', { id: 'metric', 'aria-label': 'Lower chart metric' });
for (const m of LOWER_METRICS) {
  const opt = el('vscode-option', { value: m.key }, m.label);
  if (m.key === ui.metric) opt.setAttribute('selected', '');
  metricSelect.append(opt);
}
const csvButton = el('vscode-button', { secondary: '', id: 'export-csv' }, 'Export CSV');
const pngButton = el('vscode-button', { secondary: '', id: 'export-png' }, 'Export PNG');
const empty = el('p', { class: 'empty' }, 'No run yet. Run "QLoRA: Start QLoRA Run" and the loss appears here.');
const upper = el('div', { class: 'chart', id: 'chart-loss' });
const lower = el('div', { class: 'chart', id: 'chart-metric' });
const toolbar = el(
  'div',
  { class: 'toolbar' },
  el('label', { for: 'smoothing' }, 'Smoothing '),
  smoothing,
  smoothingLabel,
  metricSelect,
  csvButton,
  pngButton,
);
document.getElementById('app')!.append(toolbar, runList, empty, upper, lower);

// ---- charts
let plots: { upper?: uPlot; lower?: uPlot; key?: string } = {};

function width(): number {
  return Math.max(200, document.body.clientWidth - 16);
}

/** Charts share the height left under the toolbar: roomy in an editor, compact in the side bar. */
function chartHeight(): number {
  return Math.max(160, Math.floor((window.innerHeight - 120) / 2) - 40);
}

const TERMINAL = new Set(['completed', 'failed', 'stopped', 'interrupted']);

/**
 * Every run the view knows, oldest first (the host lists runs newest first), so a new run takes the
 * next colour and the others keep theirs; runs known only from saved state come last.
 */
function allRuns(): string[] {
  return [...new Set([...[...runStates.keys()].reverse(), ...model.runIds().sort()])];
}

/** A run's colour: fixed by its place among all runs, not among the shown ones. */
function colorOf(id: string): string {
  const i = allRuns().indexOf(id);
  return COLORS[(i < 0 ? 0 : i) % COLORS.length] ?? '#888';
}

/** The runs drawn: the user's choice, else the focused run, else a live run, else the newest. */
function visibleRuns(): string[] {
  const ids = model.runIds();
  const chosen = ui.selected.filter((id) => ids.includes(id));
  if (chosen.length) return chosen;
  if (ui.focus && ids.includes(ui.focus)) return [ui.focus];
  const live = ids.filter((id) => !TERMINAL.has(runStates.get(id) ?? 'completed'));
  return live.length ? live.slice(-1) : ids.slice(-1);
}

/** What the empty chart says: a run waiting for its first step is not "no run". */
function emptyText(): string {
  const waiting = [...runStates.entries()].filter(([, st]) => !TERMINAL.has(st)).map(([id, st]) => `${id} (${st})`);
  if (waiting.length) return `Waiting for the first step of ${waiting.join(', ')}: the loss appears here as soon as it trains.`;
  return 'No run yet. Run "QLoRA: Start QLoRA Run" and the loss appears here.';
}

function seriesData(runId: string, metric: Metric, smooth: boolean): { x: Float64Array; y: Float64Array } {
  const s = model.series(runId, metric);
  if (!s) return { x: new Float64Array(0), y: new Float64Array(0) };
  const v = s.view();
  return downsample(v.x, smooth ? ema(v.y, ui.smoothing) : v.y, MAX_POINTS);
}

function buildData(runs: string[]): { upper: uPlot.AlignedData; lower: uPlot.AlignedData } {
  const up = runs.flatMap((r) => [seriesData(r, 'loss', true), seriesData(r, 'eval_loss', false)]);
  const lo = runs.map((r) => seriesData(r, ui.metric, false));
  return { upper: align(up) as unknown as uPlot.AlignedData, lower: align(lo) as unknown as uPlot.AlignedData };
}

function makePlot(target: HTMLElement, title: string, yLabel: string, series: uPlot.Series[], data: uPlot.AlignedData, log = false): uPlot {
  const fg = getComputedStyle(document.body).getPropertyValue('--vscode-foreground') || '#ccc';
  const grid = { stroke: 'rgba(128,128,128,0.2)', width: 1 };
  return new uPlot(
    {
      title,
      width: width(),
      height: chartHeight(),
      series: [{ label: 'step' }, ...series],
      scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
      axes: [
        { stroke: fg, grid, label: 'step', labelSize: 18 },
        { stroke: fg, grid, size: 60, label: yLabel, labelSize: 18 },
      ],
      legend: { live: true },
      cursor: { sync: { key: 'qlora-loss' } },
    },
    data,
    target,
  );
}

function redraw(): void {
  const runs = visibleRuns();
  empty.style.display = runs.length ? 'none' : '';
  empty.textContent = emptyText();
  const key = runs.join('|') + '#' + ui.metric;
  const data = buildData(runs);
  // Published for UI tests and screen readers: how many steps the loss chart shows.
  upper.dataset['pointCount'] = String(runs.length ? data.upper[0].length : 0);
  if (plots.key !== key || !plots.upper || !plots.lower) {
    plots.upper?.destroy();
    plots.lower?.destroy();
    plots = {};
    if (!runs.length) return;
    // Runs drawn first are drawn wider, so a later run with the very same curve leaves them visible as a halo.
    const widthOf = (i: number) => 1.5 + 2.5 * (runs.length - 1 - i);
    const names = distinctRunLabels(allRuns());
    const nameOf = (id: string): string => names.get(id) ?? id;
    const upperSeries = runs.flatMap((r, i): uPlot.Series[] => [
      { label: `${nameOf(r)} loss`, stroke: colorOf(r), width: widthOf(i), spanGaps: true, points: { show: false } },
      { label: `${nameOf(r)} eval`, stroke: colorOf(r), dash: [4, 4], width: widthOf(i), spanGaps: true, points: { show: true, size: 5 } },
    ]);
    const label = LOWER_METRICS.find((m) => m.key === ui.metric)?.label ?? ui.metric;
    const lowerSeries = runs.map((r, i): uPlot.Series => ({ label: `${nameOf(r)} ${label}`, stroke: colorOf(r), width: widthOf(i), spanGaps: true, points: { show: false } }));
    plots = {
      upper: makePlot(upper, 'Loss (train smoothed, eval dashed)', 'loss', upperSeries, data.upper),
      lower: makePlot(lower, label, label, lowerSeries, data.lower),
      key,
    };
    return;
  }
  plots.upper.setData(data.upper);
  plots.lower.setData(data.lower);
}

let frame = 0;
function scheduleRedraw(): void {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    redraw();
  });
}

// setState copies the whole snapshot: at most once a second, and on hide.
let saveTimer: ReturnType<typeof setTimeout> | undefined;
function persist(now = false): void {
  const write = () => {
    saveTimer = undefined;
    bridge.setState({ chart: model.snapshot(), ui });
  };
  if (now) {
    if (saveTimer) clearTimeout(saveTimer);
    write();
  } else if (!saveTimer) saveTimer = setTimeout(write, 1000);
}

function renderRunList(): void {
  runList.replaceChildren();
  const ids = allRuns();
  const shown = visibleRuns();
  const names = distinctRunLabels(ids);
  ids.forEach((id) => {
    const box = el('vscode-checkbox', { 'data-run': id, label: `${names.get(id) ?? id}${runStates.has(id) ? ` (${runStates.get(id)})` : ''}`, title: id }) as HTMLElement & { checked: boolean };
    box.checked = shown.includes(id);
    const swatch = el('span', { class: 'swatch', 'data-color': colorOf(id) });
    swatch.style.background = colorOf(id);
    box.addEventListener('change', () => {
      const set = new Set(visibleRuns());
      if (box.checked) set.add(id);
      else set.delete(id);
      ui.selected = [...set];
      persist();
      scheduleRedraw();
    });
    runList.append(el('span', { class: 'run' }, swatch, box));
  });
}

// ---- events
smoothing.addEventListener('input', () => {
  ui.smoothing = Number(smoothing.value);
  smoothingLabel.textContent = ui.smoothing.toFixed(2);
  persist();
  scheduleRedraw();
});
metricSelect.addEventListener('change', () => {
  const v = (metricSelect as unknown as { value: string }).value;
  const found = LOWER_METRICS.find((m) => m.key === v);
  if (found) ui.metric = found.key;
  persist();
  scheduleRedraw();
});
csvButton.addEventListener('click', () => bridge.post({ type: 'exportCsv', csv: model.toCsv(visibleRuns()) }));
pngButton.addEventListener('click', () => {
  const charts = [plots.upper, plots.lower].flatMap((p) => (p ? [p] : []));
  if (!charts.length) return;
  bridge.post({ type: 'exportPng', dataUrl: exportImage(charts).toDataURL('image/png') });
});

/** One image of the charts as a reader needs them alone: a background, each chart's title, its axes and a legend. */
function exportImage(charts: uPlot[]): HTMLCanvasElement {
  const css = getComputedStyle(document.body);
  const bg = css.getPropertyValue('--vscode-editor-background').trim() || '#1e1e1e';
  const fg = css.getPropertyValue('--vscode-foreground').trim() || '#cccccc';
  const dpr = window.devicePixelRatio || 1;
  const line = Math.round(18 * dpr);
  // uPlot keeps a series' stroke as a function once built: ask it for the colour it draws with.
  const strokeOf = (p: uPlot, i: number): string => {
    const st = p.series[i]?.stroke;
    const c = typeof st === 'function' ? st(p, i) : st;
    return typeof c === 'string' ? c : fg;
  };
  const blocks = charts.map((p) => ({ p, legend: p.series.map((x, i) => ({ series: x, color: strokeOf(p, i) })).slice(1).filter((x) => x.series.show !== false) }));
  const out = document.createElement('canvas');
  out.width = Math.max(...charts.map((p) => p.ctx.canvas.width));
  out.height = blocks.reduce((h, b) => h + line * 1.5 + b.p.ctx.canvas.height + line * (b.legend.length + 0.5), 0);
  const g = out.getContext('2d')!;
  g.fillStyle = bg;
  g.fillRect(0, 0, out.width, out.height);
  g.textBaseline = 'middle';
  let y = 0;
  for (const { p, legend } of blocks) {
    g.fillStyle = fg;
    g.font = `bold ${Math.round(13 * dpr)}px sans-serif`;
    g.fillText(p.root.querySelector('.u-title')?.textContent ?? '', 8 * dpr, y + line * 0.75);
    y += line * 1.5;
    g.drawImage(p.ctx.canvas, 0, y);
    y += p.ctx.canvas.height;
    g.font = `${Math.round(11 * dpr)}px sans-serif`;
    for (const { series, color } of legend) {
      g.strokeStyle = color;
      g.lineWidth = 2 * dpr;
      g.setLineDash(series.dash ? series.dash.map((d) => d * dpr) : []);
      g.beginPath();
      g.moveTo(12 * dpr, y + line / 2);
      g.lineTo(36 * dpr, y + line / 2);
      g.stroke();
      g.fillStyle = fg;
      g.fillText(String(series.label ?? ''), 42 * dpr, y + line / 2);
      y += line;
    }
    g.setLineDash([]);
    y += line * 0.5;
  }
  return out;
}
new ResizeObserver(() => {
  plots.upper?.setSize({ width: width(), height: chartHeight() });
  plots.lower?.setSize({ width: width(), height: chartHeight() });
}).observe(document.body);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') persist(true);
  else sendReady();
});

bridge.onMessage((msg) => {
  switch (msg.type) {
    case 'events':
      if (model.apply(msg.runId, msg.events) > 0 || !runStates.has(msg.runId)) {
        if (!runStates.has(msg.runId)) {
          runStates.set(msg.runId, 'running');
          renderRunList();
        }
        persist();
        scheduleRedraw();
      }
      return;
    case 'runs':
      runStates.clear();
      for (const r of msg.runs) runStates.set(r.runId, r.state);
      renderRunList();
      return;
    case 'overlay':
      ui.selected = msg.runIds;
      ui.focus = undefined;
      persist();
      renderRunList();
      scheduleRedraw();
      return;
    case 'focus':
      ui.focus = msg.runId;
      if (!ui.selected.includes(msg.runId)) ui.selected = [];
      persist();
      renderRunList();
      scheduleRedraw();
      return;
    case 'getPoints':
      // Draw pending frames first so the answer reflects what the user sees.
      if (frame) {
        cancelAnimationFrame(frame);
        frame = 0;
        redraw();
      }
      bridge.post({
        type: 'points',
        requestId: msg.requestId,
        runId: msg.runId,
        points: model.points(msg.runId),
        drawnSteps: plots.upper?.data[0]?.length ?? 0,
        shown: visibleRuns().map((runId) => ({ runId, color: colorOf(runId) })),
        chart: { width: plots.upper?.width ?? 0, height: plots.upper?.height ?? 0 },
      });
      return;
    default:
      assertNever(msg);
  }
});

/** Tells the host what this view holds, so it sends only what is missing. */
function sendReady(): void {
  const lastSeq: Record<string, number> = {};
  for (const id of model.runIds()) lastSeq[id] = model.lastSeq(id);
  bridge.post({ type: 'ready', lastSeq });
}

renderRunList();
redraw();
sendReady();
