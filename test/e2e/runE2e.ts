/**
 * `npm run test:e2e`: the user's path through the real UI, in code-server driven by headless
 * Chromium. A run made with the CLI first; then F1 -> "QLoRA: Start QLoRA Run" -> pick the tiny
 * recipe -> the loss chart in the side panel draws points -> the run finishes (its notification)
 * -> the loss chart as an editor panel with both runs -> the playground answers in Chat mode and
 * comes back after a reload -> right-click the run's `adapter` folder in the explorer ->
 * "Merge adapter" -> the merged folder appears on disk; the completion notification shows, and a
 * recipe whose data cannot be read fails with an error notification. Works on a copy of examples/ under
 * .test-work/e2e, and saves a screenshot per step into test-artifacts/e2e/.
 * Expects `npm run build` and scripts/vscode/setup.sh done. Env: QLORA_E2E_TIMEOUT_S (default 900).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { launchWorkbenchBrowser, screenshot } from '../../scripts/vscode/browser';
import { freshWorkDir, repoRoot, requireCodeServer, startCodeServer, workbenchUrl } from '../../scripts/vscode/codeServer';
import { copyExamples } from '../../scripts/vscode/runSuite';
import { extensionIdentity, linkExtension } from '../../scripts/vscode/serve';
import { chartInkPixels, chartPointCount, findFailedRun, findFinishedAdapter, findMergedFolder, waitFor } from './e2eChecks';
import {
  acceptQuickInput,
  contextMenuAction,
  extensionWebview,
  notificationTexts,
  pickQuickItem,
  quickInputVisible,
  revealInExplorer,
  runPaletteCommand,
  waitForWorkbench,
} from './workbench';
import { recipeEditorSteps } from './recipeEditorSteps';
import { cliRunStep, runViewSteps } from './runViewSteps';

const artifacts = path.join(repoRoot, 'test-artifacts', 'e2e');

/** One step of the walk: a name for its log line and screenshot, and what it does. */
interface Step {
  name: string;
  run: () => Promise<void>;
}

function log(line: string): void {
  process.stdout.write(`[e2e] ${line}\n`);
}

function failIfRunFailed(workspace: string): void {
  const failure = findFailedRun(workspace);
  if (failure) throw new Error(`the run failed: ${failure}`);
}

/** Builds the tiny example in the checkout when missing (its outputs are git-ignored). */
function ensureTinyExample(): void {
  const script = path.join(repoRoot, 'examples', 'tiny', 'make_tiny.py');
  if (!existsSync(script)) throw new Error(`${script} is missing: the e2e test trains the tiny example`);
  const python = process.env.QLORA_STUDIO_PYTHON ?? path.join(repoRoot, '.venv', 'bin', 'python');
  execFileSync(python, [script], { stdio: 'inherit', env: { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1' } });
}

async function steps(page: Page, workspace: string, extensionId: string): Promise<Step[]> {
  const recipeName = 'tiny.qlora.yaml';
  let adapterRel = '';
  return [
    { name: 'workbench', run: () => waitForWorkbench(page) },
    ...recipeEditorSteps(page, workspace, `tiny/${recipeName}`),
    cliRunStep(workspace, log),
    {
      name: 'start-run',
      run: async () => {
        await runPaletteCommand(page, 'QLoRA: Start QLoRA Run');
        // With no recipe in the active editor the command asks which recipe to run.
        await page.waitForTimeout(500);
        if (await quickInputVisible(page)) await pickQuickItem(page, recipeName);
      },
    },
    {
      name: 'chart-draws',
      run: async () => {
        const view = extensionWebview(page, extensionId);
        // The chart's own point count when it publishes one, else line pixels in the run's colour.
        const drawn = await waitFor('the loss chart to draw points', 300_000, async () => {
          failIfRunFailed(workspace);
          const n = await chartPointCount(view);
          if (n > 0) return `${n} points (data attribute)`;
          const ink = await chartInkPixels(view);
          return ink >= 20 ? `${ink} line pixels in the series colour` : undefined;
        }, () => notificationTexts(page));
        log(`loss chart drew: ${drawn}`);
      },
    },
    {
      name: 'run-completes',
      run: async () => {
        const adapter = await waitFor('the run to write runs/<id>/adapter/adapter_config.json', 1_200_000, async () => {
          failIfRunFailed(workspace);
          return findFinishedAdapter(workspace);
        }, () => notificationTexts(page));
        adapterRel = path.relative(workspace, adapter).split(path.sep).join('/');
        const view = extensionWebview(page, extensionId);
        log(`adapter at ${adapterRel}; chart now holds ${await chartPointCount(view)} points`);
      },
    },
    {
      name: 'completion-notification',
      run: async () => {
        const note = await waitFor('the run-completed notification', 120_000, async () => (await notificationTexts(page)).find((t) => /^Run tiny .*completed after \d+ steps/.test(t)), () => notificationTexts(page));
        log(`notification: ${note}`);
      },
    },
    ...runViewSteps(page, workspace, artifacts, log),
    {
      name: 'merge-adapter',
      run: async () => {
        const row = await revealInExplorer(page, adapterRel);
        // The command's first question (the dtype pick) showing is the proof the entry ran.
        // Up to 150 s: after the run ends the explorer may need a while before the entry shows on the new
        // folder (revealing it through compact folders, then the adapter scan) on a slow machine.
        await contextMenuAction(page, row, 'Merge adapter', 150_000, () => quickInputVisible(page));
        // The command asks for a dtype, then an output folder; the defaults are what a user takes.
        await acceptQuickInput(page);
        await page.waitForTimeout(300);
        if (await quickInputVisible(page)) await acceptQuickInput(page);
      },
    },
    {
      name: 'merged-folder',
      run: async () => {
        const merged = await waitFor('a merged model folder (config.json + *.safetensors) next to the run', 300_000, async () => findMergedFolder(workspace, path.join(workspace, adapterRel)), () => notificationTexts(page));
        log(`merged folder: ${path.relative(workspace, merged)}`);
        // The merge ends with a notification carrying the verification figure; until then the
        // backend may still be checking the merged weights, so stopping here would cut it short.
        const note = await waitFor('the merge notification', 180_000, async () => (await notificationTexts(page)).find((t) => /merged/i.test(t)), () => notificationTexts(page));
        log(`notification: ${note}`);
      },
    },
    {
      // Last: from here on the workspace holds a failed run on purpose.
      name: 'failed-run-notification',
      run: async () => {
        const tiny = path.join(workspace, 'tiny');
        writeFileSync(path.join(tiny, 'broken-rows.jsonl'), '{not json\n');
        writeFileSync(path.join(tiny, 'broken-rows.qlora.yaml'), 'base_model: ./model\ndata:\n  train: ./broken-rows.jsonl\n  max_seq_len: 64\ntraining:\n  max_steps: 2\noutput:\n  run_name: broken-rows\n');
        await runPaletteCommand(page, 'QLoRA: Start QLoRA Run');
        await page.waitForTimeout(500);
        if (await quickInputVisible(page)) await pickQuickItem(page, 'broken-rows.qlora.yaml');
        const note = await waitFor('the run-failed notification', 300_000, async () => (await notificationTexts(page)).find((t) => /failed before training/.test(t)), () => notificationTexts(page));
        log(`notification: ${note}`);
        // A run that fails while loading leaves no loading notification behind.
        await waitFor('the loading notification of the failed run to close', 10_000, async () => ((await notificationTexts(page)).some((t) => /QLoRA run broken-rows/.test(t)) ? undefined : true), () => notificationTexts(page));
      },
    },
  ];
}

async function main(): Promise<number> {
  requireCodeServer();
  if (!existsSync(path.join(repoRoot, 'out', 'extension.js'))) throw new Error('out/extension.js is missing: run `npm run build` first');
  ensureTinyExample();
  const workDir = freshWorkDir('e2e', 'e2e');
  rmSync(artifacts, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });
  const workspace = copyExamples(path.join(workDir, 'workspace'));
  const { id: extensionId } = extensionIdentity(repoRoot);
  const server = await startCodeServer({
    workDir,
    // One explorer row per folder: the walk reveals tiny/runs/<id>/adapter row by row, and a compact
    // "runs / <id>" row does not expand the way a plain one does.
    settings: { 'explorer.compactFolders': false },
    env: { QLORA_STUDIO_PYTHON: process.env.QLORA_STUDIO_PYTHON ?? path.join(repoRoot, '.venv', 'bin', 'python') },
    beforeStart: (dirs) => {
      linkExtension(repoRoot, dirs.extensions);
    },
  });
  const browser = await launchWorkbenchBrowser({ workDir, viewport: { width: 1600, height: 1000 } });
  const deadline = Number(process.env.QLORA_E2E_TIMEOUT_S ?? '900') * 1000;
  let passed = 0;
  let failed = 0;
  const killer = setTimeout(() => {
    log(`timed out after ${deadline / 1000} s`);
    log(`${passed} passed, ${failed + 1} failed`);
    void screenshot(browser.page, path.join(artifacts, 'timeout.png')).finally(() => {
      void browser.close().then(() => server.stop()).then(() => process.exit(1));
    });
  }, deadline);
  const started = Date.now();
  try {
    await browser.page.goto(workbenchUrl(server.url, workspace), { waitUntil: 'domcontentloaded' });
    const all = await steps(browser.page, workspace, extensionId);
    for (const [i, step] of all.entries()) {
      const t0 = Date.now();
      const shot = path.join(artifacts, `${String(i + 1).padStart(2, '0')}-${step.name}.png`);
      try {
        await step.run();
        await screenshot(browser.page, shot);
        passed += 1;
        log(`✔ ${step.name} (${((Date.now() - t0) / 1000).toFixed(1)} s) -> ${path.relative(repoRoot, shot)}`);
      } catch (err) {
        failed += 1;
        await screenshot(browser.page, shot.replace(/\.png$/, '-FAILED.png'));
        log(`✘ ${step.name}: ${err instanceof Error ? err.message : String(err)}`);
        const toasts = await notificationTexts(browser.page);
        if (toasts.length) log(`notifications: ${toasts.join(' | ')}`);
        break;
      }
    }
  } finally {
    clearTimeout(killer);
    await browser.close();
    await server.stop();
  }
  const ok = failed === 0 && passed > 0;
  // A passing run's workspace copy and profiles are only disk use; a failing one is kept to look at.
  if (ok) rmSync(workDir, { recursive: true, force: true });
  log(`${passed} passed, ${failed} failed in ${((Date.now() - started) / 1000).toFixed(1)} s (screenshots in ${path.relative(repoRoot, artifacts)}${ok ? '' : `; work folder ${path.relative(repoRoot, workDir)}, server log ${path.relative(repoRoot, server.logFile)}`})`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`e2e: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
