/**
 * The TypeScript client and the real server with the REAL engine training the tiny model (NF4 on
 * the CPU): the connection is cut 20 times while the run trains, and the client's event sequence
 * still equals events.jsonl exactly.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalBackendLauncher, type BackendEndpoint } from '../../src/backend/localLauncher';
import { connectWebSocket } from '../../src/backend/wsConnection';
import type { ConnectionState } from '../../src/backend/connection';
import type { RunEvent } from '../../src/protocol';
import { CuttableProxy, killRuns, memoryLogger, python, readLog, repo, sleep, until, workDir } from './harness';

const work = workDir();
const launcher = new LocalBackendLauncher({
  python,
  runsDir: work.runsDir,
  env: { ...process.env, OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1', TRANSFORMERS_VERBOSITY: 'error' },
  logger: memoryLogger(),
});
let ep: BackendEndpoint;
let recipe: string;

before(async () => {
  // Builds examples/tiny/{model,data} when missing (deterministic, offline); a no-op when fresh.
  execFileSync(python, [join(repo, 'examples/tiny/make_tiny.py')], { stdio: 'ignore', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  const tiny = join(repo, 'examples/tiny');
  recipe = join(work.dir, 'tiny-cuts.qlora.yaml');
  const text = readFileSync(join(tiny, 'tiny.qlora.yaml'), 'utf8')
    .replace(/^base_model: .*$/m, `base_model: ${join(tiny, 'model')}`)
    .replace(/train: \.\/data\//, `train: ${join(tiny, 'data')}/`)
    .replace(/eval: \.\/data\//, `eval: ${join(tiny, 'data')}/`)
    .replace(/max_steps: \d+/, 'max_steps: 24')
    .replace(/save_every: \d+/, 'save_every: 8')
    .replace(/eval_every: \d+/, 'eval_every: 12');
  writeFileSync(recipe, text);
  ep = await launcher.start();
});

after(async () => {
  await launcher.stop();
  killRuns(work.runsDir);
});

test('connection cut 20 times during a real tiny-model run: 0 lost, 0 duplicated', async () => {
  const proxy = new CuttableProxy(Number(new URL(ep.url).port));
  await proxy.listen();
  const conn = await connectWebSocket({ url: `ws://127.0.0.1:${proxy.port}`, token: ep.token, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
  const got: RunEvent[] = [];
  const states: ConnectionState[] = [];
  conn.onRunEvent((ev) => got.push(ev));
  conn.onStateChange((s) => states.push(s));
  try {
    await conn.request('run.start', { recipe_path: recipe, run_id: 'tiny-cuts' });
    await conn.attach('tiny-cuts', 0);
    await until(() => got.some((e) => e.type === 'metrics'), 120_000, 'training to start');
    let cuts = 0;
    while (cuts < 20) {
      await until(() => conn.state === 'connected', 10_000, 'reconnect');
      await sleep(60 + 40 * (cuts % 4));
      const drops = states.filter((s) => s === 'disconnected').length;
      if (proxy.cut() > 0) cuts++;
      await until(() => states.filter((s) => s === 'disconnected').length > drops, 10_000, 'the client to notice the cut');
    }
    const duringRun = !got.some((e) => e.type === 'status' && e.data.state === 'completed');
    await until(() => got.some((e) => e.type === 'status' && ['completed', 'failed'].includes(String(e.data.state))), 180_000, 'the run to end');
    const file = readLog(work.runsDir, 'tiny-cuts');
    assert.equal(file.at(-1)?.data.state, 'completed', JSON.stringify(file.at(-1)));
    assert.ok(duringRun, 'all 20 cuts happened while the run was training');
    assert.deepEqual(got.map((e) => e.seq), file.map((_, i) => i + 1));
    assert.deepEqual(got, file);
    assert.ok(file.filter((e) => e.type === 'metrics').length === 24);
  } finally {
    conn.dispose();
    proxy.close();
  }
});
