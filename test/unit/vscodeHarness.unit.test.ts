/**
 * The real-VS-Code harness's logic that needs no browser: counting mocha results from what the
 * extension host sends, URLs for code-server, installing by link, and the e2e disk checks.
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { freshWorkDir, repoRoot, testPayload, workbenchUrl } from '../../scripts/vscode/codeServer';
import { linkExtension, extensionIdentity } from '../../scripts/vscode/serve';
import { countTestLines, formatConsoleArgs, mergeTallies, parseMochaSummary, readResultsFile, SuiteOutput } from '../../scripts/vscode/suiteOutput';
import { findFailedRun, findFinishedAdapter, findMergedFolder } from '../e2e/e2eChecks';

const tmp = (): string => mkdtempSync(path.join(tmpdir(), 'qlora-harness-'));

describe('mocha result counting', () => {
  it('sums the summary lines of spec output, colours and all', () => {
    const text = ['  suite', '    ✔ a', '', '\u001b[32m  3 passing\u001b[0m (12ms)', '  1 pending', '  2 failing', '', '  5 passing (1s)'].join('\n');
    assert.deepEqual(parseMochaSummary(text), { passed: 8, failed: 2, pending: 1 });
  });

  it('says "no summary" rather than zero when the suite never finished', () => {
    assert.equal(parseMochaSummary('  suite\n    ✔ a\n'), undefined);
  });

  it('reads a results file and rejects a malformed one', () => {
    const dir = tmp();
    const good = path.join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ passed: 4, failed: 1 }));
    assert.deepEqual(readResultsFile(good), { passed: 4, failed: 1, pending: 0 });
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ passed: '4', failed: 1 }));
    assert.equal(readResultsFile(bad), undefined);
    writeFileSync(bad, '{not json');
    assert.equal(readResultsFile(bad), undefined);
    assert.equal(readResultsFile(path.join(dir, 'missing.json')), undefined);
  });

  it('undoes the workbench\'s forwarding format of extension-host console calls', () => {
    assert.deepEqual(formatConsoleArgs(['%c INFO', 'color: #33f', '  %d passing (%s)', 2, '156ms']), { level: 'INFO', text: '  2 passing (156ms)' });
    assert.deepEqual(formatConsoleArgs(['plain', 3]), { text: 'plain 3' });
  });

  it('prefers the log file and prints each line once', () => {
    const dir = tmp();
    const printed: string[] = [];
    const out = new SuiteOutput({ logFile: path.join(dir, 'suite.log'), resultsFile: path.join(dir, 'r.json'), print: (l) => printed.push(l) });
    out.consoleMessage('log', ['%c INFO', 'color: #33f', '%s', 'before the log exists']);
    writeFileSync(out.logFile, '  s\n    ✔ t (1ms)\n');
    out.consoleMessage('log', ['%c INFO', 'color: #33f', '%s', '    ✔ t (1ms)']);
    out.pollLog();
    appendFileSync(out.logFile, '\n  1 passing (3ms)\n  1 failing');
    out.pollLog();
    assert.deepEqual(out.tally(), { passed: 1, failed: 1, pending: 0 });
    assert.deepEqual(printed, ['before the log exists', '  s', '    ✔ t (1ms)', '', '  1 passing (3ms)', '  1 failing']);
  });

  it('falls back to the console when the suite writes no file', () => {
    const dir = tmp();
    const out = new SuiteOutput({ logFile: path.join(dir, 'none.log'), resultsFile: path.join(dir, 'none.json'), print: () => undefined });
    out.consoleMessage('log', ['%c INFO', 'color: #33f', '  %d passing (%s)', 7, '1s']);
    assert.deepEqual(out.tally(), { passed: 7, failed: 0, pending: 0 });
    assert.deepEqual(mergeTallies([out.tally(), { passed: 1, failed: 2, pending: 0 }]), { passed: 8, failed: 2, pending: 0 });
  });
});

describe('code-server URLs and installation', () => {
  it('encodes the folder and the extension-test payload with the remote authority', () => {
    const url = new URL(workbenchUrl('http://127.0.0.1:9/', '/w s', testPayload('/ext', '/ext/out/test/suite/index.js')));
    assert.equal(url.searchParams.get('folder'), '/w s');
    assert.deepEqual(JSON.parse(url.searchParams.get('payload') ?? ''), [
      ['extensionDevelopmentPath', 'vscode-remote://remote/ext'],
      ['extensionTestsPath', 'vscode-remote://remote/ext/out/test/suite/index.js'],
    ]);
  });

  it('links an extension as publisher.name-version and replaces a stale link', () => {
    const dir = tmp();
    const ext = path.join(dir, 'ext');
    mkdirSync(ext);
    writeFileSync(path.join(ext, 'package.json'), JSON.stringify({ publisher: 'p', name: 'n', version: '1.2.3' }));
    assert.equal(extensionIdentity(ext).id, 'p.n');
    const link = linkExtension(ext, path.join(dir, 'extensions'));
    assert.equal(path.basename(link), 'p.n-1.2.3');
    linkExtension(ext, path.join(dir, 'extensions'));
    assert.equal(realpathSync(readlinkSync(link)), realpathSync(ext));
  });

  it('refuses a manifest without a version', () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ publisher: 'p', name: 'n' }));
    assert.throws(() => extensionIdentity(dir), /publisher, name and version/);
  });
});

describe('e2e disk checks', () => {
  const touch = (p: string, content = 'x'): void => {
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, content);
  };

  it('finds a finished adapter only once its config and weights exist', () => {
    const ws = tmp();
    touch(path.join(ws, 'runs', 'r1', 'adapter', 'adapter_config.json'), '{}');
    assert.equal(findFinishedAdapter(ws), undefined);
    touch(path.join(ws, 'runs', 'r1', 'adapter', 'adapter_model.safetensors'));
    assert.equal(findFinishedAdapter(ws), path.join(ws, 'runs', 'r1', 'adapter'));
  });

  it('finds the merged folder but not the base model or the adapter', () => {
    const ws = tmp();
    touch(path.join(ws, 'tiny', 'model', 'config.json'), '{}');
    touch(path.join(ws, 'tiny', 'model', 'model.safetensors'));
    const adapter = path.join(ws, 'runs', 'r1', 'adapter');
    touch(path.join(adapter, 'adapter_config.json'), '{}');
    touch(path.join(adapter, 'config.json'), '{}');
    touch(path.join(adapter, 'adapter_model.safetensors'));
    assert.equal(findMergedFolder(ws, adapter), undefined);
    touch(path.join(ws, 'runs', 'r1', 'merged', 'config.json'), '{}');
    assert.equal(findMergedFolder(ws, adapter), undefined, 'no weights yet');
    touch(path.join(ws, 'runs', 'r1', 'merged', 'model.safetensors'));
    assert.equal(findMergedFolder(ws, adapter), path.join(ws, 'runs', 'r1', 'merged'));
  });
});

describe('e2e run failure detection', () => {
  it('reports a run whose last status is failed, with its reason', () => {
    const ws = mkdtempSync(path.join(tmpdir(), 'qlora-harness-'));
    mkdirSync(path.join(ws, 'runs', 'ok'), { recursive: true });
    writeFileSync(path.join(ws, 'runs', 'ok', 'events.jsonl'), '{"type":"status","data":{"state":"running"}}\n');
    assert.equal(findFailedRun(ws), undefined);
    mkdirSync(path.join(ws, 'runs', 'bad'), { recursive: true });
    writeFileSync(path.join(ws, 'runs', 'bad', 'events.jsonl'), '{"type":"status","data":{"state":"running"}}\n{"type":"status","data":{"state":"failed","message":"no module"}}\n{"type":"log"');
    assert.equal(findFailedRun(ws), 'bad: no module');
  });
});

describe('console lines the suite log lacks', () => {
  it('are printed once, marked, after the log file exists', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'qlora-harness-'));
    const printed: string[] = [];
    const out = new SuiteOutput({ logFile: path.join(dir, 'suite.log'), resultsFile: path.join(dir, 'r.json'), print: (l) => printed.push(l) });
    writeFileSync(out.logFile, '  1 passing (1ms)\n');
    out.pollLog();
    out.consoleMessage('log', ['%c INFO', 'color: #33f', '%s %d', 'found', 4]);
    out.consoleMessage('log', ['%c INFO', 'color: #33f', '%s', '  1 passing (1ms)']);
    out.consoleMessage('log', ['%c INFO', 'color: #33f', 'Creating a socket (x)...']);
    out.tally();
    assert.deepEqual(printed, ['  1 passing (1ms)', '[console] found 4']);
  });
});

describe('work folders', () => {
  it('gives each process its own folder and removes only those of dead processes', () => {
    const area = `unit-${process.pid}`;
    const parent = path.join(repoRoot, '.test-work', area);
    mkdirSync(path.join(parent, 'x-999999999'), { recursive: true });
    mkdirSync(path.join(parent, `x-${process.ppid}`), { recursive: true });
    const dir = freshWorkDir(area, 'x');
    try {
      assert.equal(dir, path.join(parent, `x-${process.pid}`));
      assert.equal(existsSync(path.join(parent, 'x-999999999')), false, 'a dead process\'s folder goes');
      assert.equal(existsSync(path.join(parent, `x-${process.ppid}`)), true, 'a live process\'s folder stays');
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});

describe('a suite cut short', () => {
  it('is counted from its per-test lines, not reported as empty', () => {
    const text = ['    suite', '      ✔ one (3ms)', '      ✘ 1) two: boom', '      - three', '      ✔ four (1ms)', '', '  1) suite two', '     Error: boom'].join('\n');
    assert.equal(parseMochaSummary(text), undefined);
    assert.deepEqual(countTestLines(text), { passed: 2, failed: 1, pending: 1 });
    assert.equal(countTestLines('nothing here'), undefined);
  });
});
