/**
 * What the e2e test checks, on disk and in the loss webview, kept apart from the UI driving so the
 * file-system parts are unit-testable.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { FrameLocator } from 'playwright-core';

/**
 * Attributes the loss chart may publish its point count in (the webview sets one of them on its
 * chart element after each redraw, so a test sees drawn points, not just received messages).
 */
export const pointCountAttributes = ['data-point-count', 'data-points'] as const;

/** The number of points the loss chart says it drew; 0 while it has none or is not there yet. */
export async function chartPointCount(view: FrameLocator): Promise<number> {
  for (const attr of pointCountAttributes) {
    const els = view.locator(`[${attr}]`);
    const n = await els.count().catch(() => 0);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const v = Number(await els.nth(i).getAttribute(attr, { timeout: 2000 }).catch(() => null));
      if (Number.isFinite(v) && v > 0) total += v;
    }
    if (total > 0) return total;
  }
  return 0;
}

/**
 * Pixels on the loss chart's canvases drawn in a series colour (`rgb`, within `tolerance` per
 * channel): evidence that lines were drawn, for when the view publishes no point count.
 */
export async function chartInkPixels(view: FrameLocator, rgb: [number, number, number] = [0x4e, 0x9d, 0xe6], tolerance = 24): Promise<number> {
  const canvases = view.locator('.chart canvas');
  const n = await canvases.count().catch(() => 0);
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += await canvases.nth(i).evaluate((c, [color, tol]) => {
      const canvas = c as HTMLCanvasElement;
      const g = canvas.getContext('2d');
      if (!g || !canvas.width || !canvas.height) return 0;
      const px = g.getImageData(0, 0, canvas.width, canvas.height).data;
      let hits = 0;
      for (let p = 0; p < px.length; p += 4) {
        if (px[p + 3]! > 200 && Math.abs(px[p]! - color[0]) <= tol && Math.abs(px[p + 1]! - color[1]) <= tol && Math.abs(px[p + 2]! - color[2]) <= tol) hits++;
      }
      return hits;
    }, [rgb, tolerance] as const).catch(() => 0);
  }
  return total;
}

/** Polls `probe` once a second until it returns a value; on timeout the error says what was awaited. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, context?: () => Promise<string[]>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      const extra = context ? (await context().catch(() => [])).join(' | ') : '';
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${extra ? `; notifications: ${extra}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => path.join(dir, d.name));
  } catch {
    return [];
  }
}

/**
 * The first run under `<workspace>/runs/` whose event log ends in a failed status, as
 * `run_id: reason`, so the test stops at once with the backend's reason instead of timing out.
 */
export function findFailedRun(workspace: string): string | undefined {
  for (const run of subdirs(path.join(workspace, 'runs'))) {
    const log = path.join(run, 'events.jsonl');
    if (!existsSync(log)) continue;
    let last: { state?: unknown; message?: unknown; reason?: unknown } | undefined;
    for (const line of readFileSync(log, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        const ev = JSON.parse(line) as { type?: unknown; data?: { state?: unknown; message?: unknown; reason?: unknown } };
        if (ev.type === 'status' && ev.data) last = ev.data;
      } catch {
        // a line being written right now; the next poll reads it whole
      }
    }
    if (last?.state === 'failed') return `${path.basename(run)}: ${String(last.message ?? last.reason ?? 'no reason given')}`;
  }
  return undefined;
}

/** The `adapter/` folder of a finished run under `<workspace>/runs/` (or a nested runs folder), if any. */
export function findFinishedAdapter(workspace: string): string | undefined {
  const runRoots = [path.join(workspace, 'runs'), ...subdirs(workspace).map((d) => path.join(d, 'runs'))];
  for (const root of runRoots) {
    for (const run of subdirs(root)) {
      const adapter = path.join(run, 'adapter');
      if (existsSync(path.join(adapter, 'adapter_config.json')) && hasSafetensors(adapter)) return adapter;
    }
  }
  return undefined;
}

function hasSafetensors(dir: string): boolean {
  try {
    return readdirSync(dir).some((f) => f.endsWith('.safetensors') && statSync(path.join(dir, f)).size > 0);
  } catch {
    return false;
  }
}

/**
 * A merged model folder (config.json + weights, no adapter_config.json) created under the
 * workspace, other than the base models already there before the test; searched a few levels
 * deep from the adapter's run folder and the workspace root.
 */
export function findMergedFolder(workspace: string, adapterDir: string, preexisting: string[] = [path.join(workspace, 'tiny', 'model')]): string | undefined {
  const skip = new Set(preexisting.map((p) => path.resolve(p)));
  const roots = [path.dirname(adapterDir), workspace];
  const seen = new Set<string>();
  const visit = (dir: string, depth: number): string | undefined => {
    const abs = path.resolve(dir);
    if (seen.has(abs) || skip.has(abs) || depth < 0) return undefined;
    seen.add(abs);
    const base = path.basename(abs);
    if (base === 'node_modules' || base.startsWith('.') || base === 'checkpoints') return undefined;
    if (existsSync(path.join(abs, 'config.json')) && !existsSync(path.join(abs, 'adapter_config.json')) && hasSafetensors(abs)) return abs;
    for (const d of subdirs(abs)) {
      const found = visit(d, depth - 1);
      if (found) return found;
    }
    return undefined;
  };
  for (const root of roots) {
    const found = visit(root, 3);
    if (found) return found;
  }
  return undefined;
}
