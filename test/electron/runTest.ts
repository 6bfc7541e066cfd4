/**
 * `npm run test:electron`: the same mocha suites as `npm run test:integration`, run in desktop
 * VS Code downloaded by @vscode/test-electron 2.5 (the last line for Node 20). Needs Microsoft's
 * update server and, on Linux without a display, `xvfb-run -a npm run test:electron`. Where
 * VS Code cannot be downloaded, use the code-server harness (scripts/vscode/runSuite.ts).
 *
 * Env: QLORA_VSCODE_VERSION (default `stable`; `1.100.3` matches the code-server tier).
 */
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { runTests } from '@vscode/test-electron';

const repoRoot = path.resolve(__dirname, '..', '..');

/** One suite: its compiled entry, and whether Workspace Trust stays on (the untrusted suite). */
interface ElectronSuite {
  name: string;
  testsEntry: string;
  workspaceTrust: boolean;
}

const suites: ElectronSuite[] = [
  { name: 'trusted', testsEntry: path.join(repoRoot, 'out', 'test', 'suite', 'index.js'), workspaceTrust: false },
  { name: 'untrusted', testsEntry: path.join(repoRoot, 'out', 'test', 'suite-untrusted', 'index.js'), workspaceTrust: true },
];

/** A fresh copy of examples/, so runs and merges never write into the checkout. */
function workspaceCopy(dest: string): string {
  rmSync(dest, { recursive: true, force: true });
  cpSync(path.join(repoRoot, 'examples'), dest, { recursive: true, filter: (p) => !/[\\/](runs|__pycache__)$/.test(p) });
  return dest;
}

/** Runs one suite in a private VS Code profile; resolves with the process exit code. */
async function runSuite(suite: ElectronSuite): Promise<number> {
  if (!existsSync(suite.testsEntry)) throw new Error(`${suite.testsEntry} is missing: run \`npm run build\` first`);
  const work = path.join(repoRoot, '.test-work', 'electron', suite.name);
  mkdirSync(work, { recursive: true });
  const workspace = workspaceCopy(path.join(work, 'workspace'));
  const launchArgs = [
    workspace,
    // Other installed extensions would slow the run and could change what the suite sees.
    '--disable-extensions',
    '--skip-welcome',
    '--skip-release-notes',
    `--user-data-dir=${path.join(work, 'user-data')}`,
    `--extensions-dir=${path.join(work, 'extensions')}`,
  ];
  if (!suite.workspaceTrust) launchArgs.push('--disable-workspace-trust');
  try {
    return await runTests({
      version: process.env.QLORA_VSCODE_VERSION ?? 'stable',
      // The download lives with the other tools (git-ignored), not in a new folder at the root.
      cachePath: path.join(repoRoot, '.tools', 'vscode-test'),
      extensionDevelopmentPath: repoRoot,
      extensionTestsPath: suite.testsEntry,
      launchArgs,
      extensionTestsEnv: {
        QLORA_STUDIO_PYTHON: process.env.QLORA_STUDIO_PYTHON ?? path.join(repoRoot, '.venv', 'bin', 'python'),
        QLORA_TEST_WORKSPACE: workspace,
      },
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const offline = /ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|download/i.test(message);
    process.stderr.write(`[${suite.name}] ${message}${offline ? '\n  VS Code could not be downloaded from this machine; run the same suites in code-server with `npm run test:integration`.' : ''}\n`);
    return 1;
  }
}

async function main(): Promise<number> {
  let failed = 0;
  for (const suite of suites) {
    const code = await runSuite(suite);
    process.stdout.write(`[${suite.name}] ${code === 0 ? 'passed' : `failed (exit code ${code})`}\n`);
    if (code !== 0) failed += 1;
  }
  process.stdout.write(`${suites.length - failed} suites passed, ${failed} failed\n`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`test:electron: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
