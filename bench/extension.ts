/**
 * Extension benchmarks, in the real runtimes (not a GPU benchmark; runs on any machine):
 *  - activation_ms: wall time of `activate()` in a real VS Code extension host (code-server): a
 *    probe suite opens a folder with no recipe (so nothing activates the extension first), loads
 *    the bundle (timed apart as activation_load_ms) and times `extension.activate()`; median over
 *    fresh extension hosts.
 *  - chart_append_ms: the loss view's cost of taking 1,000 new points into a 100,000-point chart:
 *    the built out/webview/loss.js in headless Chromium, fed by the same messages the host sends;
 *    the time is the message handling plus the redraw it schedules (its animation-frame callback
 *    and the microtasks uPlot commits in); median over repeats.
 * Writes bench/results/extension.json and .md. Targets: activation < 50 ms, append < 16 ms.
 *
 *   npm run build && tsx bench/extension.ts [--repeats N]
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { launchWorkbenchBrowser } from '../scripts/vscode/browser';
import { codeServerBin, freshWorkDir, repoRoot, startCodeServer, testPayload, workbenchUrl } from '../scripts/vscode/codeServer';
import { extensionIdentity } from '../scripts/vscode/serve';
import { activationProbeSource, chartPageHtml, median, metricsEvents } from './extensionBenchParts';



/** Activation samples (ms): the activate() call, and the bundle's load before it. */
interface ActivationSamples {
  activate: number[];
  load: number[];
}

/**
 * Times activation once per fresh extension host. One code-server serves every repeat; each
 * repeat is a new browser, hence a new extension host (the old one is killed with the server).
 */
async function measureActivation(repeats: number): Promise<ActivationSamples> {
  const workDir = freshWorkDir('bench', 'activation');
  const emptyWorkspace = path.join(workDir, 'empty-workspace');
  mkdirSync(emptyWorkspace, { recursive: true });
  const probe = path.join(workDir, 'probe.js');
  const resultFile = path.join(workDir, 'probe-result.json');
  writeFileSync(probe, activationProbeSource(extensionIdentity(repoRoot).id));
  const samples: ActivationSamples = { activate: [], load: [] };
  const server = await startCodeServer({ workDir: path.join(workDir, 'server'), env: { QLORA_BENCH_OUT: resultFile } });
  try {
    for (let i = 0; i < repeats; i++) {
      rmSync(resultFile, { force: true });
      const t0 = Date.now();
      const browser = await launchWorkbenchBrowser({ workDir, smokeTestDriver: true });
      try {
        const exited = new Promise<number>((resolve) => {
          void browser.page.exposeFunction('codeAutomationExit', (code: unknown) => resolve(typeof code === 'number' ? code : 1));
        });
        await browser.page.goto(workbenchUrl(server.url, emptyWorkspace, testPayload(repoRoot, probe)));
        const code = await Promise.race([exited, new Promise<number>((r) => setTimeout(() => r(-1), 120_000))]);
        if (code !== 0 || !existsSync(resultFile)) throw new Error(`activation probe failed (exit ${code}); see ${server.logFile}`);
        const r = JSON.parse(readFileSync(resultFile, 'utf8')) as { activationMs: number; loadMs: number; alreadyActive: boolean };
        if (r.alreadyActive) throw new Error('the extension was already active before the probe ran; the probe needs a workspace without activation triggers');
        samples.activate.push(r.activationMs);
        samples.load.push(r.loadMs);
        process.stdout.write(`[bench] activation #${i + 1}: activate() ${r.activationMs.toFixed(1)} ms after loading the bundle in ${r.loadMs.toFixed(1)} ms (cycle ${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
      } finally {
        await browser.close();
      }
    }
  } finally {
    await server.stop();
  }
  rmSync(workDir, { recursive: true, force: true });
  return samples;
}

/** Feeds the loss view 100k points, then times appending 1k points `repeats` times. */
async function measureChartAppend(repeats: number): Promise<{ samples: number[]; pointsHeld: number }> {
  const bundle = path.join(repoRoot, 'out', 'webview', 'loss.js');
  if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run \`npm run build\` first`);
  const workDir = freshWorkDir('bench', 'chart');
  const page = path.join(workDir, 'loss-bench.html');
  writeFileSync(page, chartPageHtml(pathToFileURL(path.join(repoRoot, 'out', 'webview')).href));
  const browser = await launchWorkbenchBrowser({ workDir, viewport: { width: 900, height: 700 } });
  try {
    await browser.page.goto(pathToFileURL(page).href);
    await browser.page.waitForFunction(() => (window as unknown as { __bench: { posted: unknown[] } }).__bench.posted.length > 0, undefined, { timeout: 30_000 });
    const runId = 'bench-run';
    await browser.page.evaluate((id) => window.postMessage({ type: 'focus', runId: id }, '*'), runId);
    // 100k points, sent as the host does after a reload: in batches of events.
    const tLoad = Date.now();
    for (let start = 1; start <= 100_000; start += 10_000) {
      if (process.env.QLORA_BENCH_DEBUG) process.stdout.write(`[bench] loading points ${start}.. (${Date.now() - tLoad} ms)\n`);
      await browser.page.evaluate(({ id, events }) => (window as unknown as { __bench: { send(m: unknown): void } }).__bench.send({ type: 'events', runId: id, events }), { id: runId, events: metricsEvents(start, 10_000) });
    }
    await browser.page.evaluate(() => (window as unknown as { __bench: { settle(): Promise<void> } }).__bench.settle());
    const samples: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const events = metricsEvents(100_001 + i * 1000, 1000);
      const ms = await browser.page.evaluate(({ id, ev }) => (window as unknown as { __bench: { timeAppend(m: unknown): Promise<number> } }).__bench.timeAppend({ type: 'events', runId: id, events: ev }), { id: runId, ev: events });
      samples.push(ms);
    }
    const pointsHeld = await browser.page.evaluate((id) => (window as unknown as { __bench: { lossPoints(id: string): Promise<number> } }).__bench.lossPoints(id), runId);
    const expected = 100_000 + repeats * 1000;
    if (pointsHeld !== expected) throw new Error(`the chart holds ${pointsHeld} loss points, expected ${expected}: the bench did not feed it what it measured`);
    const errors = await browser.page.evaluate(() => (window as unknown as { __bench: { errors: string[] } }).__bench.errors);
    if (errors.length) throw new Error(`the loss view reported errors: ${errors.join('; ')}`);
    await browser.close();
    rmSync(workDir, { recursive: true, force: true });
    return { samples, pointsHeld };
  } finally {
    await browser.close();
  }
}

function versions(): Record<string, string> {
  const read = (p: string): string => {
    try {
      return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  };
  return {
    node: process.version,
    'code-server': read(path.join(path.dirname(path.dirname(codeServerBin)), 'code-server', 'package.json')),
    'playwright-core': read(path.join(repoRoot, 'node_modules', 'playwright-core', 'package.json')),
    uplot: read(path.join(repoRoot, 'node_modules', 'uplot', 'package.json')),
    extension: read(path.join(repoRoot, 'package.json')),
  };
}

async function main(): Promise<void> {
  const loadAtStart = os.loadavg();
  const { values } = parseArgs({ args: process.argv.slice(2), options: { repeats: { type: 'string' } } });
  const repeats = Number(values.repeats ?? '15');
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`--repeats must be a positive integer, got ${values.repeats}`);
  const chart = await measureChartAppend(repeats);
  const chartMs = median(chart.samples);
  process.stdout.write(`[bench] chart append: median ${chartMs.toFixed(2)} ms over ${repeats} (chart holds ${chart.pointsHeld} points)\n`);
  if (process.env.QLORA_BENCH_CHART_ONLY) return;
  const activation = await measureActivation(Math.min(repeats, 5));
  const activationMs = median(activation.activate);
  const loadMs = median(activation.load);
  process.stdout.write(`[bench] activation: median ${activationMs.toFixed(1)} ms (bundle load before it: median ${loadMs.toFixed(1)} ms)\n`);
  const result = {
    activation_ms: Number(activationMs.toFixed(2)),
    activation_load_ms: Number(loadMs.toFixed(2)),
    chart_append_ms: Number(chartMs.toFixed(3)),
    // The fastest sample: what the code costs when the shared machine leaves it a free core.
    fastest: { activation_ms: Number(Math.min(...activation.activate).toFixed(2)), chart_append_ms: Number(Math.min(...chart.samples).toFixed(3)) },
    targets: { activation_ms: 50, chart_append_ms: 16 },
    samples: { activation_ms: activation.activate.map((v) => Number(v.toFixed(2))), activation_load_ms: activation.load.map((v) => Number(v.toFixed(2))), chart_append_ms: chart.samples.map((v) => Number(v.toFixed(3))) },
    method: {
      activation_ms: 'extension.activate() timed by a probe suite in the code-server extension host (workspace without recipes, so nothing activated it first), after the probe loaded out/extension.js; median of fresh extension hosts',
      activation_load_ms: 'require() of out/extension.js by the same probe, just before activate(): code loading, reported apart',
      chart_append_ms: `out/webview/loss.js in headless Chromium; 100,000 metrics points loaded, then ${repeats} appends of 1,000 points (one events message each); message handling + the redraw frame callback + its microtasks; median`,
    },
    command: 'npm run build && tsx bench/extension.ts' + (values.repeats ? ` --repeats ${repeats}` : ''),
    date: new Date().toISOString(),
    machine: `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.release()}`,
    // A busy machine inflates both figures; the load says how busy it was.
    load_average: { at_start: loadAtStart.map((v) => Number(v.toFixed(2))), at_end: os.loadavg().map((v) => Number(v.toFixed(2))) },
    versions: versions(),
  };
  mkdirSync(path.join(repoRoot, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(repoRoot, 'bench', 'results', 'extension.json'), JSON.stringify(result, null, 2) + '\n');
  const ok = (v: number, t: number): string => (v < t ? 'meets' : 'MISSES');
  const md = `# Extension benchmark\n\nRecorded ${result.date} on ${result.machine} (load average 1/5/15 min at start ${result.load_average.at_start.join('/')}, at end ${result.load_average.at_end.join('/')}).\nCommand: \`${result.command}\`\n\n| measure | median | target | |\n|---|---|---|---|\n| activation_ms | ${result.activation_ms} | < 50 | ${ok(activationMs, 50)} |\n| activation_load_ms (bundle load, apart) | ${result.activation_load_ms} | | |\n| chart_append_ms | ${result.chart_append_ms} | < 16 | ${ok(chartMs, 16)} |\n\nFastest samples: activation ${result.fastest.activation_ms} ms, chart append ${result.fastest.chart_append_ms} ms.\n\n- activation: ${result.method.activation_ms}. Samples: ${result.samples.activation_ms.join(', ')}.\n- bundle load: ${result.method.activation_load_ms}. Samples: ${result.samples.activation_load_ms.join(', ')}.\n- chart append: ${result.method.chart_append_ms}. Samples: ${result.samples.chart_append_ms.join(', ')}.\n\nVersions: ${Object.entries(result.versions).map(([k, v]) => `${k} ${v}`).join(', ')}.\n`;
  writeFileSync(path.join(repoRoot, 'bench', 'results', 'extension.md'), md);
  process.stdout.write(`[bench] wrote bench/results/extension.json and .md\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/extension: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
