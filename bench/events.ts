/**
 * Event throughput and latency over loopback: events appended to `runs/<id>/events.jsonl` (by the
 * fake engine, through the real EventWriter) -> tailed by the real Python server -> received and
 * zod-parsed by the TypeScript client. Writes bench/results/events.{json,md}.
 *
 *   npx tsx bench/events.ts [--events 100000] [--paced-rate 2000] [--paced-seconds 5]
 *
 * Throughput: one run writes --events events as fast as it can; events/s = events / (arrival of
 * the last - write time of the first). Latency: a second run writes at --paced-rate events/s;
 * latency = arrival time - the event's `time` (same host clock).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { LocalBackendLauncher } from '../src/backend/localLauncher';
import { connectWebSocket } from '../src/backend/wsConnection';
import type { BackendConnection } from '../src/backend/connection';
import type { RunEvent } from '../src/protocol';
import { fakeEngineEnv, python, repo, until, workDir } from '../test/backend/harness';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

async function measure(conn: BackendConnection, recipe: string, runId: string, steps: number, rate: number) {
  const got: Array<{ ev: RunEvent; at: number }> = [];
  const sub = conn.onRunEvent((ev) => {
    if (ev.run_id === runId) got.push({ ev, at: performance.timeOrigin + performance.now() });
  });
  await conn.request('run.start', { recipe_path: recipe, run_id: runId, max_steps: steps });
  await conn.attach(runId, 0);
  await until(() => got.some((g) => g.ev.type === 'status' && g.ev.data.state === 'completed'), 600_000, `${runId} to complete`);
  sub.dispose();
  // Skip the start-up events (process launch) so the figures describe the steady stream.
  const body = got.filter((g) => g.ev.type === 'metrics' || g.ev.type === 'log');
  const lat = body.map((g) => g.at - g.ev.time * 1000);
  const first = body[0]!;
  const last = body[body.length - 1]!;
  return {
    events: body.length,
    total_events: got.length,
    seqs_contiguous: got.every((g, i) => g.ev.seq === i + 1),
    events_per_s: body.length / ((last.at - first.ev.time * 1000) / 1000),
    p50_ms: quantile(lat, 0.5),
    p95_ms: quantile(lat, 0.95),
    p99_ms: quantile(lat, 0.99),
  };
}

async function main(): Promise<void> {
  const total = arg('events', 100_000);
  const pacedRate = arg('paced-rate', 2000);
  const pacedSeconds = arg('paced-seconds', 5);
  const loadAtStart = loadavg()[0]!;
  const work = workDir();
  // Each fake step writes 1 metrics + 4 log events; no checkpoints inside the measured window.
  const env = fakeEngineEnv({ FAKE_ENGINE_LOGS_PER_STEP: '4', FAKE_ENGINE_CKPT_EVERY: '100000000' });
  const burst = new LocalBackendLauncher({ python, runsDir: work.runsDir, env: { ...env, FAKE_ENGINE_RATE: '0' } });
  const ep = await burst.start();
  const conn = await connectWebSocket({ url: ep.url, token: ep.token, requestTimeoutMs: 120_000 });
  const throughput = await measure(conn, work.recipe, 'burst', Math.ceil(total / 5), 0);
  conn.dispose();
  await burst.stop();
  const paced = new LocalBackendLauncher({ python, runsDir: work.runsDir, env: { ...env, FAKE_ENGINE_RATE: String(pacedRate / 5) } });
  const ep2 = await paced.start();
  const conn2 = await connectWebSocket({ url: ep2.url, token: ep2.token, requestTimeoutMs: 120_000 });
  const latency = await measure(conn2, work.recipe, 'paced', Math.ceil((pacedRate * pacedSeconds) / 5), pacedRate);
  conn2.dispose();
  await paced.stop();

  const versions = {
    node: process.version,
    python: execFileSync(python, ['-c', 'import platform,websockets;print(platform.python_version(), websockets.__version__)']).toString().trim(),
  };
  const result = {
    events_per_s: Math.round(throughput.events_per_s),
    p95_ms: Number(latency.p95_ms.toFixed(2)),
    targets: { events_per_s: 20000, p95_ms: 20 },
    throughput_run: { ...throughput, events_per_s: Math.round(throughput.events_per_s) },
    latency_run: { rate_events_per_s: pacedRate, seconds: pacedSeconds, ...latency, events_per_s: Math.round(latency.events_per_s) },
    command: `npx tsx bench/events.ts --events ${total} --paced-rate ${pacedRate} --paced-seconds ${pacedSeconds}`,
    date: new Date().toISOString(),
    machine: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${process.platform}`,
    load_avg_1m: { start: Number(loadAtStart.toFixed(2)), end: Number(loadavg()[0]!.toFixed(2)) },
    versions: { node: versions.node, 'python websockets': versions.python },
  };
  const out = join(repo, 'bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'events.json'), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(out, 'events.md'), renderMarkdown(result));
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

function renderMarkdown(r: Record<string, any>): string {
  const t = r.throughput_run;
  const l = r.latency_run;
  return `# Event throughput and latency (events.jsonl -> server -> TypeScript client)

| figure | value | target |
| --- | --- | --- |
| events_per_s (burst of ${t.events} events) | ${r.events_per_s} | >= ${r.targets.events_per_s} |
| p95_ms (paced at ${l.rate_events_per_s} events/s for ${l.seconds} s) | ${r.p95_ms} | < ${r.targets.p95_ms} |
| p50 / p99 ms, paced | ${l.p50_ms.toFixed(2)} / ${l.p99_ms.toFixed(2)} | |
| p50 / p95 / p99 ms during the burst (queueing included) | ${t.p50_ms.toFixed(1)} / ${t.p95_ms.toFixed(1)} / ${t.p99_ms.toFixed(1)} | |
| seq contiguous, 0 lost / 0 duplicated | burst ${t.seqs_contiguous}, paced ${l.seqs_contiguous} | true |

- Command: \`${r.command}\`
- Date: ${r.date}
- Machine: ${r.machine}; 1-minute load average ${r.load_avg_1m.start} at the start, ${r.load_avg_1m.end} at the end (other jobs share it)
- Versions: node ${r.versions.node}; python, websockets ${r.versions['python websockets']}

Events are written by \`test/fixtures/protocol/fake_engine_for_tests.py\` through the real
\`EventWriter\` (append + flush per event), tailed by the real server (5 ms poll, complete lines
only, batched frames of up to 1000 events), received over loopback by \`connectWebSocket\`, and
every frame is parsed with zod before it is counted. Latency is arrival time minus the event's
\`time\` field (one host clock).
`;
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
