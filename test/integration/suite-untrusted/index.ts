/**
 * Entry of the untrusted-workspace suite: the harness opens the workspace with Workspace Trust on
 * and untrusted, then runs these tests.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';
import { HarnessReporter } from '../../../scripts/vscode/harnessReporter';

/** Runs the suite; rejects when any test fails. */
export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 60_000, color: false, reporter: HarnessReporter });
  for (const f of fs.readdirSync(__dirname).filter((f) => f.endsWith('.integration.test.js')).sort()) mocha.addFile(path.join(__dirname, f));
  return new Promise((resolve, reject) => {
    mocha.run((failures) => (failures ? reject(new Error(`${failures} integration test(s) failed`)) : resolve()));
  });
}
