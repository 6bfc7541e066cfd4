/**
 * Collects a mocha suite's output from inside the extension host and counts its results. Two
 * channels exist: a log file the suite may write (QLORA_TEST_LOG) plus a JSON summary
 * (QLORA_TEST_RESULTS), and the browser console, where VS Code forwards the extension host's
 * console. The file wins when present; the console is the fallback. No vscode import: unit-tested.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { format } from 'node:util';

/** Test counts of one or several suites. */
export interface Tally {
  passed: number;
  failed: number;
  pending: number;
}

/** A tally of nothing. */
export function emptyTally(): Tally {
  return { passed: 0, failed: 0, pending: 0 };
}

/** Sums tallies of several suites. */
export function mergeTallies(tallies: Tally[]): Tally {
  return tallies.reduce((a, t) => ({ passed: a.passed + t.passed, failed: a.failed + t.failed, pending: a.pending + t.pending }), emptyTally());
}

const summaryLine = /^\s*(\d+) (passing|failing|pending)\b/;

/**
 * Counts mocha results from spec/dot/list reporter text: the summary lines `N passing (…)`,
 * `N failing`, `N pending`, summed over every summary in the text. Returns undefined when the
 * text holds no summary at all (the suite never finished).
 */
export function parseMochaSummary(text: string): Tally | undefined {
  const tally = emptyTally();
  let found = false;
  for (const raw of text.split(/\r?\n/)) {
    const m = summaryLine.exec(stripAnsi(raw));
    if (!m) continue;
    found = true;
    const n = Number(m[1]);
    if (m[2] === 'passing') tally.passed += n;
    else if (m[2] === 'failing') tally.failed += n;
    else tally.pending += n;
  }
  return found ? tally : undefined;
}

/**
 * Counts the per-test lines of HarnessReporter / spec output (`✔ title`, `✘ N) title`, `N) title`)
 * for a suite that never reached its summary (a timeout or a crashed host).
 */
export function countTestLines(text: string): Tally | undefined {
  const tally = emptyTally();
  for (const raw of text.split(/\r?\n/)) {
    const line = stripAnsi(raw);
    if (/^\s+[✔✓] /.test(line)) tally.passed += 1;
    else if (/^\s+(?:✘ )?\d+\) \S/.test(line) && !/^\s{2}\d+\) /.test(line)) tally.failed += 1;
    else if (/^\s+- \S/.test(line)) tally.pending += 1;
  }
  return tally.passed + tally.failed + tally.pending > 0 ? tally : undefined;
}

/** Reads the JSON summary a suite may write: `{passed, failed, pending?}`; undefined if absent or malformed. */
export function readResultsFile(file: string): Tally | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const data = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined);
    const passed = num(data.passed);
    const failed = num(data.failed);
    if (passed === undefined || failed === undefined) return undefined;
    return { passed, failed, pending: num(data.pending) ?? 0 };
  } catch {
    return undefined;
  }
}

/** Removes ANSI colour codes, which mocha emits when it thinks it writes to a terminal. */
export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u001b\[[0-9;]*m/g, '');
}

/**
 * Turns the arguments of one browser console call back into the text the extension host logged.
 * VS Code forwards extension-host console calls as `console.log('%c LEVEL', style, fmt, ...args)`;
 * the level prefix and its style are dropped and `fmt` is applied like Node would.
 */
export function formatConsoleArgs(args: unknown[]): { level?: string; text: string } {
  const first = args[0];
  if (typeof first === 'string' && first.startsWith('%c') && args.length >= 2) {
    const level = first.slice(2).trim() || undefined;
    const rest = args.slice(2);
    return { ...(level ? { level } : {}), text: stripAnsi(format(...rest)) };
  }
  return { text: stripAnsi(format(...args)) };
}

/** Workbench chatter that says nothing about the suite (printed only with QLORA_SUITE_DEBUG). */
const workbenchNoise = [
  /^(Resolving|Resolved) connection token/,
  /^Creating a socket/,
  /^Updating additional builtin extensions cache/,
  /^\[Service Worker\]/,
  /^ChatSessionStore/,
  /open-vsx\.org/,
  /^Failed to load resource/,
  /^The web worker extension host/,
  /^An iframe which has both/,
  /^Overwriting extension/,
];

/** Options of {@link SuiteOutput}. */
export interface SuiteOutputOptions {
  logFile: string;
  resultsFile: string;
  print: (line: string) => void;
}

/** Streams a suite's output to `print` and counts its results at the end. */
export class SuiteOutput {
  readonly logFile: string;
  readonly resultsFile: string;
  private readonly print: (line: string) => void;
  private logOffset = 0;
  private logText = '';
  private logPartial = '';
  private consoleText = '';
  private readonly logLines = new Set<string>();
  private readonly heldConsole: Array<{ at: number; lines: string[] }> = [];

  constructor(opts: SuiteOutputOptions) {
    this.logFile = opts.logFile;
    this.resultsFile = opts.resultsFile;
    this.print = opts.print;
  }

  /** A line of the harness itself. */
  note(line: string): void {
    this.print(line);
  }

  /**
   * A browser console call, as its argument values. Kept for counting. While the suite writes no
   * log file it is printed at once; once it does, lines the log lacks (a test's own console.log,
   * extension errors) are printed a moment later, so nothing shows twice.
   */
  consoleMessage(type: string, args: unknown[]): void {
    const { text } = formatConsoleArgs(args);
    const debug = Boolean(process.env.QLORA_SUITE_DEBUG);
    if (debug) this.print(`[console.${type}] ${text}`);
    this.consoleText += text + '\n';
    if (debug || !text.trim()) return;
    if (type !== 'pageerror' && workbenchNoise.some((re) => re.test(text.trim()))) return;
    if (this.logOffset === 0 && !existsSync(this.logFile)) {
      for (const line of text.split('\n')) this.print(line);
      return;
    }
    this.heldConsole.push({ at: Date.now(), lines: text.split('\n') });
  }

  /** Prints held console lines older than `ageMs` that the suite's log does not hold. */
  private flushConsole(ageMs: number): void {
    const now = Date.now();
    while (this.heldConsole.length && now - this.heldConsole[0]!.at >= ageMs) {
      const held = this.heldConsole.shift()!;
      for (const line of held.lines) {
        if (line.trim() && !this.logLines.has(line.trim())) this.print(`[console] ${line}`);
      }
    }
  }

  /** Reads whatever the suite appended to its log file since the last call and prints it. */
  pollLog(): void {
    this.readLog();
    this.flushConsole(1500);
  }

  private readLog(): void {
    if (!existsSync(this.logFile)) return;
    const size = statSync(this.logFile).size;
    if (size <= this.logOffset) return;
    const fd = openSync(this.logFile, 'r');
    try {
      const buf = Buffer.alloc(size - this.logOffset);
      readSync(fd, buf, 0, buf.length, this.logOffset);
      this.logOffset = size;
      const chunk = buf.toString('utf8');
      this.logText += chunk;
      const lines = (this.logPartial + chunk).split('\n');
      this.logPartial = lines.pop() ?? '';
      for (const line of lines) {
        this.logLines.add(stripAnsi(line).trim());
        this.print(stripAnsi(line));
      }
    } finally {
      closeSync(fd);
    }
  }

  /** The counts: the JSON summary, else a mocha summary (log file, then console), else the per-test lines. */
  tally(): Tally {
    this.readLog();
    this.flushConsole(0);
    if (this.logPartial) {
      this.print(stripAnsi(this.logPartial));
      this.logPartial = '';
    }
    return (
      readResultsFile(this.resultsFile) ??
      parseMochaSummary(this.logText) ??
      parseMochaSummary(this.consoleText) ??
      countTestLines(this.logText || this.consoleText) ??
      emptyTally()
    );
  }
}
