/**
 * Parts of the dataset-preview benchmark: a deterministic generator of chat rows (so the 1 GB
 * file is the same on every machine) and small measuring helpers.
 */
import { createWriteStream, existsSync, statSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { runDoctor } from '../src/dataset/doctor';
import type { PreviewSession } from '../src/dataset/session';
import { rng } from '../test/seededRandom';

export { rng };

const WORDS = ('the model answer question capital country river mountain learn train token mask template ' +
  'assistant user system prime number seven two even odd because therefore however example dataset ' +
  'Paris Berlin Lisbon Tokyo 東京 Zürich naïve café résumé 😄 👍 42 3.14 2026 (see below) "quoted" ' +
  'code: def f(x): return x * 2 — long-dash, semi; colon: question? exclamation!').split(' ');


function sentence(r: () => number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i += 1) out.push(WORDS[Math.floor(r() * WORDS.length)]!);
  return `${out.join(' ')}.`;
}

/** One chat row of about `bytes` bytes (1–3 turns, sometimes a system message). */
export function chatRow(r: () => number, bytes: number): string {
  const turns = 1 + Math.floor(r() * 3);
  const messages: Array<{ role: string; content: string }> = [];
  if (r() < 0.3) messages.push({ role: 'system', content: sentence(r, 6) });
  const per = Math.max(8, Math.floor(bytes / (turns * 2 * 7)));
  for (let t = 0; t < turns; t += 1) {
    messages.push({ role: 'user', content: sentence(r, Math.floor(per * 0.4)) });
    messages.push({ role: 'assistant', content: sentence(r, Math.floor(per * 1.6)) });
  }
  return JSON.stringify({ messages });
}

/** Writes `lines` rows of ~`bytes` each to `file` unless it already has them. */
export async function generateJsonl(file: string, lines: number, bytes: number): Promise<void> {
  if (existsSync(file) && statSync(file).size > lines * bytes * 0.8) return;
  const r = rng(7);
  const out = createWriteStream(file);
  for (let i = 0; i < lines; i += 1) {
    if (!out.write(`${chatRow(r, bytes)}\n`)) await new Promise<void>((res) => out.once('drain', () => res()));
  }
  await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
}

/** Peak resident set of this process so far (MB), from /proc (VmHWM), else the current RSS. */
export function peakRssMb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux
  }
  return process.memoryUsage().rss / 1024 / 1024;
}

/** A doctor pass over `file`, stopped after `limitS` seconds: what it checked, in wall and CPU seconds. */
export async function timedDoctor(file: string, session: PreviewSession, limitS: number) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), limitS * 1000);
  let findings = 0;
  const d0 = performance.now();
  const c0 = process.cpuUsage();
  const summary = await runDoctor(file, session, () => { findings += 1; }, { signal: ac.signal });
  const seconds = (performance.now() - d0) / 1000;
  const cpu = process.cpuUsage(c0);
  clearTimeout(timer);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  return { summary, findings, seconds, cpuS, mbPerS: +(summary.bytes / 1e6 / seconds).toFixed(2), mbPerCpuS: +(summary.bytes / 1e6 / cpuS).toFixed(2) };
}
