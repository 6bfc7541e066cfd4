/**
 * Runs the extension's mocha suite inside a real VS Code extension host: code-server plus headless
 * Chromium, with the suite handed to the web client through the `payload` URL parameter (what
 * @vscode/test-web does). Builds nothing: run `npm run build` first.
 *
 *   tsx scripts/vscode/runSuite.ts [--suite trusted|untrusted|all] [--tests FILE] [--extension DIR]
 *       [--workspace DIR] [--trust] [--timeout SECONDS] [--keep]
 *
 * Prints the suite's output as it comes, then `N passed, N failed`; exits 0 only when every
 * suite ran to the end without a failure.
 */
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { launchWorkbenchBrowser, screenshot } from './browser';
import { freshWorkDir, repoRoot, requireCodeServer, startCodeServer, testPayload, workbenchUrl } from './codeServer';
import { emptyTally, mergeTallies, SuiteOutput, type Tally } from './suiteOutput';

/** One suite to run: its compiled entry and whether Workspace Trust is on. */
export interface SuiteSpec {
  name: string;
  testsEntry: string;
  extensionDir: string;
  workspace?: string;
  workspaceTrust: boolean;
  timeoutMs: number;
  keep: boolean;
}

/** What one suite run produced. */
export interface SuiteResult {
  name: string;
  exitCode: number;
  tally: Tally;
  reason?: string;
  screenshot?: string;
}

const artifactsDir = path.join(repoRoot, 'test-artifacts', 'integration');

/** Copies examples/ into the work folder so runs and merges never write into the repository. */
export function copyExamples(dest: string): string {
  const src = path.join(repoRoot, 'examples');
  if (!existsSync(src)) throw new Error(`${src} is missing: the integration suite opens a copy of examples/`);
  rmSync(dest, { recursive: true, force: true });
  cpSync(src, dest, {
    recursive: true,
    filter: (p) => !/[\\/](runs|__pycache__)$/.test(p),
  });
  return dest;
}

/** Runs one suite in a fresh code-server and browser; never leaves a process behind. */
export async function runOneSuite(spec: SuiteSpec): Promise<SuiteResult> {
  requireCodeServer();
  if (!existsSync(spec.testsEntry)) {
    throw new Error(`suite entry ${spec.testsEntry} does not exist: run \`npm run build\` first`);
  }
  const workDir = freshWorkDir('integration', spec.name);
  rmSync(path.join(artifactsDir, `${spec.name}-logs`), { recursive: true, force: true });
  rmSync(path.join(artifactsDir, `${spec.name}-failure.png`), { force: true });
  const workspace = spec.workspace ?? copyExamples(path.join(workDir, 'workspace'));
  const output = new SuiteOutput({
    logFile: path.join(workDir, 'suite.log'),
    resultsFile: path.join(workDir, 'results.json'),
    print: (line) => process.stdout.write(`[${spec.name}] ${line}\n`),
  });

  const server = await startCodeServer({
    workDir,
    workspaceTrust: spec.workspaceTrust,
    env: {
      // The suite (test/integration/suite*/index.ts) may write its mocha output and a
      // {passed, failed} summary here; the console of the page is the fallback.
      QLORA_TEST_LOG: output.logFile,
      QLORA_TEST_RESULTS: output.resultsFile,
      QLORA_TEST_WORKSPACE: workspace,
      QLORA_STUDIO_PYTHON: process.env.QLORA_STUDIO_PYTHON ?? path.join(repoRoot, '.venv', 'bin', 'python'),
    },
  });
  const browser = await launchWorkbenchBrowser({
    workDir,
    smokeTestDriver: true,
    onConsole: (type, text) => output.consoleMessage(type, text),
  }).catch(async (err: unknown) => {
    await server.stop();
    throw err;
  });
  const onSignal = (): void => {
    void browser.close().then(() => server.stop()).then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let result: SuiteResult | undefined;
  try {
    const exited = new Promise<number>((resolve) => {
      void browser.page.exposeFunction('codeAutomationExit', (code: unknown) => {
        resolve(typeof code === 'number' ? code : 1);
      });
    });
    const url = workbenchUrl(server.url, workspace, testPayload(spec.extensionDir, spec.testsEntry));
    output.note(`code-server ${server.url} (pid ${server.pid}), workspace ${workspace}`);
    await browser.page.goto(url, { waitUntil: 'domcontentloaded' });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), spec.timeoutMs);
    });
    const tail = setInterval(() => output.pollLog(), 250);
    const outcome = await Promise.race([exited, timedOut]);
    clearTimeout(timer);
    clearInterval(tail);
    // The exit call can overtake the last forwarded console lines (the summary among them).
    await new Promise((r) => setTimeout(r, 500));
    await browser.consoleDrained();
    output.pollLog();
    const tally = output.tally();
    if (outcome === 'timeout') {
      result = { name: spec.name, exitCode: 1, tally, reason: `timed out after ${spec.timeoutMs / 1000} s` };
    } else {
      const reason =
        outcome !== 0 ? `suite exited with code ${outcome}`
        : tally.failed > 0 ? `${tally.failed} test(s) failed although the suite exited with 0`
        : tally.passed === 0 ? 'no test passed (suite empty or not run)'
        : undefined;
      result = { name: spec.name, exitCode: reason ? 1 : 0, tally, ...(reason ? { reason } : {}) };
    }
    if (result.exitCode !== 0) {
      const shot = await screenshot(browser.page, path.join(artifactsDir, `${spec.name}-failure.png`));
      if (shot) result.screenshot = shot;
      // The extension's own log channel and the host logs say why, after the work dir is reused.
      const logs = path.join(server.userDataDir, 'logs');
      if (existsSync(logs)) cpSync(logs, path.join(artifactsDir, `${spec.name}-logs`), { recursive: true });
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await browser.close();
    await server.stop();
    // A passing run's folder (workspace copy, runs, profiles) is only disk use; a failing one is
    // kept for a look, until the next run of the same suite removes it.
    if (!spec.keep && result?.exitCode === 0) rmSync(workDir, { recursive: true, force: true });
    else output.note(`work folder kept: ${path.relative(repoRoot, workDir)}`);
  }
  if (!result) throw new Error('the suite run ended without a result');
  return result;
}

function suiteSpecs(values: ReturnType<typeof parseCli>): SuiteSpec[] {
  const extensionDir = path.resolve(values.extension ?? repoRoot);
  const timeoutMs = Number(values.timeout ?? '600') * 1000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new Error(`--timeout must be a positive number of seconds, got ${values.timeout}`);
  const keep = values.keep ?? false;
  const workspace = values.workspace ? path.resolve(values.workspace) : undefined;
  if (values.tests) {
    return [{ name: values.name ?? 'custom', testsEntry: path.resolve(values.tests), extensionDir, workspace, workspaceTrust: values.trust ?? false, timeoutMs, keep }];
  }
  const trusted: SuiteSpec = { name: 'trusted', testsEntry: path.join(extensionDir, 'out', 'test', 'suite', 'index.js'), extensionDir, workspace, workspaceTrust: false, timeoutMs, keep };
  const untrusted: SuiteSpec = { name: 'untrusted', testsEntry: path.join(extensionDir, 'out', 'test', 'suite-untrusted', 'index.js'), extensionDir, workspace, workspaceTrust: true, timeoutMs, keep };
  switch (values.suite ?? 'all') {
    case 'trusted': return [trusted];
    case 'untrusted': return [untrusted];
    case 'all': return [trusted, untrusted];
    default: throw new Error(`--suite must be trusted, untrusted or all, got ${values.suite}`);
  }
}

function parseCli(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      suite: { type: 'string' },
      tests: { type: 'string' },
      name: { type: 'string' },
      extension: { type: 'string' },
      workspace: { type: 'string' },
      trust: { type: 'boolean' },
      timeout: { type: 'string' },
      keep: { type: 'boolean' },
    },
  }).values;
}

async function main(): Promise<number> {
  const specs = suiteSpecs(parseCli(process.argv.slice(2)));
  const results: SuiteResult[] = [];
  for (const spec of specs) {
    const started = Date.now();
    try {
      results.push(await runOneSuite(spec));
    } catch (err) {
      results.push({ name: spec.name, exitCode: 1, tally: emptyTally(), reason: err instanceof Error ? err.message : String(err) });
    }
    const r = results[results.length - 1]!;
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    process.stdout.write(`[${r.name}] ${r.tally.passed} passed, ${r.tally.failed} failed in ${secs} s${r.reason ? ` — ${r.reason}` : ''}${r.screenshot ? ` (screenshot: ${path.relative(repoRoot, r.screenshot)})` : ''}\n`);
  }
  const total = mergeTallies(results.map((r) => r.tally));
  process.stdout.write(`${total.passed} passed, ${total.failed} failed\n`);
  return results.every((r) => r.exitCode === 0) ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`runSuite: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
