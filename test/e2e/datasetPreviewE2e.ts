/**
 * UI end-to-end for the dataset preview, in code-server driven by headless Chromium: right-click
 * the tiny example's train.jsonl in the explorer -> "Open Dataset Preview" -> the panel draws rows
 * with trained, masked and special tokens coloured; the file itself shows the inline hints. Saves
 * screenshots into test-artifacts/e2e/dataset-preview-*.png. Expects `npm run build` and
 * scripts/vscode/setup.sh done; builds the tiny example when missing.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { launchWorkbenchBrowser, screenshot } from '../../scripts/vscode/browser';
import { freshWorkDir, repoRoot, requireCodeServer, startCodeServer, workbenchUrl } from '../../scripts/vscode/codeServer';
import { copyExamples } from '../../scripts/vscode/runSuite';
import { extensionIdentity, linkExtension } from '../../scripts/vscode/serve';
import { waitFor } from './e2eChecks';
import { contextMenuAction, extensionWebview, revealInExplorer, waitForWorkbench } from './workbench';

const artifacts = path.join(repoRoot, 'test-artifacts', 'e2e');

function log(line: string): void {
  process.stdout.write(`[e2e dataset] ${line}\n`);
}

async function main(): Promise<number> {
  requireCodeServer();
  const python = process.env.QLORA_STUDIO_PYTHON ?? path.join(repoRoot, '.venv', 'bin', 'python');
  execFileSync(python, [path.join(repoRoot, 'examples', 'tiny', 'make_tiny.py')], { stdio: 'inherit' });
  const workDir = freshWorkDir('e2e', 'dataset');
  mkdirSync(artifacts, { recursive: true });
  const workspace = copyExamples(path.join(workDir, 'workspace'));
  const { id: extensionId } = extensionIdentity(repoRoot);
  const server = await startCodeServer({ workDir, env: { QLORA_STUDIO_PYTHON: python }, beforeStart: (dirs) => linkExtension(repoRoot, dirs.extensions) });
  const browser = await launchWorkbenchBrowser({ workDir, viewport: { width: 1600, height: 1000 } });
  const page = browser.page;
  let ok = false;
  try {
    await page.goto(workbenchUrl(server.url, workspace), { waitUntil: 'domcontentloaded' });
    await waitForWorkbench(page);
    const row = await revealInExplorer(page, 'tiny/data/train.jsonl');
    await row.dblclick();
    await waitFor('the inline hint on the first line', 60_000, async () => ((await page.locator('.codelens-decoration', { hasText: /tok · \d+% trained/ }).count()) > 0 ? true : undefined));
    await screenshot(page, path.join(artifacts, 'dataset-preview-inline.png'));
    // A context-menu click in headless Chromium sometimes only highlights the entry: retry until
    // the panel's tab shows (each try waits up to 20 s: on a busy machine the panel can be slow).
    const panelTab = page.locator('.tabs-container .tab', { hasText: 'Preview: train.jsonl' });
    await contextMenuAction(page, await revealInExplorer(page, 'tiny/data/train.jsonl'), 'Open Dataset Preview', 180_000,
      async () => (await panelTab.count()) > 0, 20_000);
    const view = extensionWebview(page, extensionId);
    const counts = await waitFor('coloured tokens in the panel', 60_000, async () => {
      const trained = await view.locator('.tok.t1').count().catch(() => 0);
      const masked = await view.locator('.tok.t0').count().catch(() => 0);
      const special = await view.locator('.tok.t2, .tok.t3').count().catch(() => 0);
      return trained > 0 && masked > 0 && special > 0 ? { trained, masked, special } : undefined;
    });
    await waitFor('the totals', 60_000, async () => (/\d+ examples/.test((await view.locator('#totals').textContent().catch(() => '')) ?? '') ? true : undefined));
    await screenshot(page, path.join(artifacts, 'dataset-preview-panel.png'));
    log(`✔ panel drew ${counts.trained} trained, ${counts.masked} masked, ${counts.special} special tokens -> test-artifacts/e2e/dataset-preview-panel.png`);
    ok = true;
  } catch (err) {
    await screenshot(page, path.join(artifacts, 'dataset-preview-FAILED.png'));
    log(`✘ ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    await browser.close();
    await server.stop();
  }
  if (ok) rmSync(workDir, { recursive: true, force: true });
  log(ok ? '1 passed, 0 failed' : '0 passed, 1 failed');
  return ok ? 0 : 1;
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`e2e dataset: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
