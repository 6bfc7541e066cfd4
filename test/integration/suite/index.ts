/**
 * Entry of the integration suite that runs inside a real VS Code extension host (code-server via
 * scripts/vscode/runSuite.ts, or @vscode/test-electron): loads every *.integration.test.js bundled
 * next to this file and runs them with mocha.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';
import { HarnessReporter } from '../../../scripts/vscode/harnessReporter';

/** Runs the suite; rejects when any test fails. */
export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 60_000, color: false, reporter: HarnessReporter });
  // QLORA_IT_ONLY=part-of-a-file-name runs the matching files only (a quicker loop while editing one).
  const only = process.env['QLORA_IT_ONLY'];
  const files = fs.readdirSync(__dirname).filter((f) => f.endsWith('.integration.test.js') && (!only || f.includes(only))).sort();
  for (const f of files) mocha.addFile(path.join(__dirname, f));
  return new Promise((resolve, reject) => {
    mocha.run((failures) => (failures ? reject(new Error(`${failures} integration test(s) failed`)) : resolve()));
  });
}
