/**
 * Pieces of bench/extension.ts that need no browser: the activation probe's source, the chart
 * bench page, synthetic metrics events and the median.
 */

/** Median of a non-empty sample. */
export function median(xs: number[]): number {
  if (!xs.length) throw new Error('median of an empty sample');
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** One metrics event as the host forwards it to the loss view (see src/protocol/webview.ts). */
export interface BenchEvent {
  seq: number;
  type: 'metrics';
  data: Record<string, number>;
}

/**
 * `count` metrics events from step `start` on, shaped like a real run's (a decaying noisy loss,
 * cosine learning rate, grad norm, throughput), deterministic so runs are comparable.
 */
export function metricsEvents(start: number, count: number): BenchEvent[] {
  const total = 200_000;
  const out: BenchEvent[] = [];
  for (let step = start; step < start + count; step++) {
    const noise = Math.sin(step * 12.9898) * 0.05;
    out.push({
      seq: step,
      type: 'metrics',
      data: {
        step,
        total_steps: total,
        epoch: step / 10_000,
        loss: 2.5 * Math.exp(-step / 40_000) + 0.4 + noise,
        lr: 2e-4 * 0.5 * (1 + Math.cos((Math.PI * step) / total)),
        grad_norm: 0.8 + Math.abs(noise) * 4,
        tokens_per_s: 5200 + noise * 1000,
        tokens_seen: step * 2048,
      },
    });
  }
  return out;
}

/**
 * Source of the probe that VS Code runs as an extension-test entry: it times the extension's
 * activation (module load + activate) and writes the result where QLORA_BENCH_OUT says.
 */
export function activationProbeSource(extensionId: string): string {
  return `'use strict';
const vscode = require('vscode');
const fs = require('fs');
exports.run = async function run() {
  const ext = vscode.extensions.getExtension(${JSON.stringify(extensionId)});
  if (!ext) throw new Error('extension ${extensionId} is not installed in this host');
  const alreadyActive = ext.isActive;
  // Loading the bundle first (Node's module cache is what the host's own loader uses) splits
  // code loading from the activate() call itself.
  const main = require('path').join(ext.extensionPath, ext.packageJSON.main);
  const t0 = performance.now();
  require(main);
  const loadMs = performance.now() - t0;
  const t1 = performance.now();
  await ext.activate();
  const activateMs = performance.now() - t1;
  fs.writeFileSync(process.env.QLORA_BENCH_OUT, JSON.stringify({ activationMs: activateMs, loadMs, alreadyActive }));
};
`;
}

/**
 * A page hosting the built loss view outside VS Code: a stand-in for acquireVsCodeApi that
 * records what the view posts, and timing hooks. requestAnimationFrame is wrapped so the redraw a
 * message schedules can be timed (callback plus the microtasks it queues, where uPlot commits).
 */
export function chartPageHtml(webviewBaseUrl: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8"><title>loss view bench</title>
<link rel="stylesheet" href="${webviewBaseUrl}/loss.css">
<script>
(() => {
  const b = { posted: [], errors: [], state: undefined, pendingFrames: 0, frameWork: 0, onPoints: undefined };
  window.__bench = b;
  window.acquireVsCodeApi = () => ({
    postMessage(m) {
      b.posted.push(m.type);
      if (m.type === 'error') b.errors.push(m.message);
      if (m.type === 'points' && b.onPoints) b.onPoints(m);
    },
    getState() { return b.state; },
    setState(s) { b.state = s; },
  });
  const raf = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = (cb) => {
    b.pendingFrames += 1;
    return raf((ts) => {
      const t0 = performance.now();
      try { cb(ts); } finally {
        queueMicrotask(() => { b.frameWork += performance.now() - t0; b.pendingFrames -= 1; });
      }
    });
  };
  b.send = (m) => window.dispatchEvent(new MessageEvent('message', { data: m }));
  b.settle = async () => { while (b.pendingFrames > 0) await new Promise((r) => setTimeout(r, 2)); };
  b.timeAppend = async (m) => {
    await b.settle();
    b.frameWork = 0;
    const t0 = performance.now();
    b.send(m);
    const sync = performance.now() - t0;
    await b.settle();
    return sync + b.frameWork;
  };
  b.lossPoints = (id) => new Promise((resolve) => {
    b.onPoints = (p) => resolve((p.points.loss || []).length);
    b.send({ type: 'getPoints', requestId: 1, runId: id });
  });
})();
</script></head>
<body><div id="app"></div><script src="${webviewBaseUrl}/loss.js"></script></body></html>
`;
}
