/**
 * Two launchers on one runs folder (two VS Code windows on one workspace) share one REAL server:
 * the second server refuses the folder with the "busy" exit code and its launcher connects to
 * the server that holds it instead of failing.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalBackendLauncher } from '../../src/backend/localLauncher';
import { fakeEngineEnv, killRuns, memoryLogger, python, workDir } from './harness';

const work = workDir();
const first = new LocalBackendLauncher({ python, runsDir: work.runsDir, env: fakeEngineEnv() });
const secondLog = memoryLogger();
const second = new LocalBackendLauncher({ python, runsDir: work.runsDir, env: fakeEngineEnv(), logger: secondLog });

after(async () => {
  await second.stop();
  await first.stop();
  killRuns(work.runsDir);
});

test('a second launcher on the same runs folder connects to the server already serving it', async () => {
  const a = await first.start();
  const b = await second.start();
  assert.equal(b.pid, a.pid, 'one server for the folder');
  assert.equal(b.url, a.url);
  assert.equal(b.token, a.token);
  assert.ok(secondLog.lines.some((l) => l.includes('a backend already serves this runs directory')), secondLog.lines.join('\n'));
});
