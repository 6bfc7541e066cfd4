/**
 * A mocha reporter for suites that run inside the VS Code extension host. The host's console
 * reaches the harness only through the browser (formatted loosely), so this reporter also appends
 * spec-style lines to the file named by QLORA_TEST_LOG and writes `{passed, failed, pending,
 * failures}` to QLORA_TEST_RESULTS, which scripts/vscode/runSuite.ts streams and counts.
 * Use it from a suite entry: `new Mocha({ reporter: HarnessReporter })`. Works unchanged under
 * @vscode/test-electron, where those variables are unset and only the console is used.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import * as mocha from 'mocha';

/** One failed test, as recorded in the results file. */
export interface HarnessFailure {
  title: string;
  message: string;
  stack?: string;
}

/** Spec-like reporter that mirrors its output into the harness's log and results files. */
export class HarnessReporter extends mocha.reporters.Base {
  private readonly logFile = process.env.QLORA_TEST_LOG;
  private readonly resultsFile = process.env.QLORA_TEST_RESULTS;
  private depth = 0;
  private counts = { passed: 0, failed: 0, pending: 0 };
  private readonly failedTests: HarnessFailure[] = [];
  private readonly started = Date.now();

  constructor(runner: mocha.Runner, options?: mocha.MochaOptions) {
    super(runner, options);
    runner.on('suite', (suite: mocha.Suite) => {
      if (suite.title) this.line(suite.title);
      this.depth += 1;
    });
    runner.on('suite end', () => {
      this.depth -= 1;
    });
    runner.on('pass', (test: mocha.Test) => {
      this.counts.passed += 1;
      this.line(`✔ ${test.title} (${test.duration ?? 0}ms)`);
    });
    runner.on('pending', (test: mocha.Test) => {
      this.counts.pending += 1;
      this.line(`- ${test.title}`);
    });
    runner.on('fail', (test: mocha.Test, err: unknown) => {
      this.counts.failed += 1;
      const e = err instanceof Error ? err : new Error(String(err));
      this.failedTests.push({ title: test.fullTitle(), message: e.message, ...(e.stack ? { stack: e.stack } : {}) });
      this.line(`✘ ${this.counts.failed}) ${test.title}: ${e.message}`);
    });
    runner.once('end', () => this.finish());
  }

  private line(text: string): void {
    this.out(`${'  '.repeat(Math.max(this.depth, 0) + 1)}${text}`);
  }

  private out(text: string): void {
    // The console is what test-electron shows; the file is what the code-server harness reads.
    // eslint-disable-next-line no-console
    console.log(text);
    if (this.logFile) appendFileSync(this.logFile, text + '\n');
  }

  private finish(): void {
    this.out('');
    this.out(`  ${this.counts.passed} passing (${Date.now() - this.started}ms)`);
    if (this.counts.pending) this.out(`  ${this.counts.pending} pending`);
    if (this.counts.failed) {
      this.out(`  ${this.counts.failed} failing`);
      this.failedTests.forEach((f, i) => this.out(`\n  ${i + 1}) ${f.title}\n     ${f.stack ?? f.message}`));
    }
    if (this.resultsFile) {
      writeFileSync(this.resultsFile, JSON.stringify({ ...this.counts, failures: this.failedTests }, null, 2));
    }
  }
}
