/**
 * The walk's steps around a finished run, as a user meets them: a second run made with the CLI,
 * the loss chart as a full editor panel overlaying both runs, the playground answering in Chat
 * mode, and the playground coming back after a window reload. Each step ends with its screenshot
 * (taken by the runner).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { repoRoot } from '../../scripts/vscode/codeServer';
import { waitFor } from './e2eChecks';
import { acceptQuickInput, notificationTexts, pickQuickItem, quickInputVisible, runPaletteCommand } from './workbench';

/** One step: a name for its log line and screenshot, and what it does. */
export interface WalkStep {
  name: string;
  run: () => Promise<void>;
}

/** The first frame (webviews included) whose document has `selector` and passes `test`. */
async function frameWith(page: Page, selector: string, test: (f: Frame) => Promise<boolean> = async () => true): Promise<Frame | undefined> {
  for (const f of page.frames()) {
    if ((await f.$(selector).catch(() => null)) && (await test(f).catch(() => false))) return f;
  }
  return undefined;
}

/** A 3-step copy of the tiny recipe in `cli/`, trained with `qlora-studio run` into `cli/cli-runs/`. */
export function cliRunStep(workspace: string, log: (line: string) => void): WalkStep {
  return {
    name: 'cli-run',
    run: async () => {
      const dir = path.join(workspace, 'cli');
      mkdirSync(dir, { recursive: true });
      const recipe = path.join(dir, 'cli.qlora.yaml');
      const tiny = readFileSync(path.join(workspace, 'tiny', 'tiny.qlora.yaml'), 'utf8');
      writeFileSync(recipe, tiny.replace('base_model: ./model', 'base_model: ../tiny/model').replace(/\.\/data\//g, '../tiny/data/').replace(/max_steps: \d+/, 'max_steps: 3').replace('dir: runs', 'dir: cli-runs').replace('run_name: tiny', 'run_name: cli'));
      const python = process.env.QLORA_STUDIO_PYTHON ?? path.join(repoRoot, '.venv', 'bin', 'python');
      const out = execFileSync(python, ['-m', 'qlora_studio.cli', 'run', recipe], { cwd: dir, env: { ...process.env, OMP_NUM_THREADS: '1' }, timeout: 300_000, encoding: 'utf8' });
      log(`CLI run: ${out.trim().split('\n').slice(-1)[0] ?? ''}`);
    },
  };
}

/**
 * What an exported loss PNG shows, decoded by the browser: whether its corner is opaque (a
 * background), and how many pixels carry each of the first two run colours.
 */
async function pngFacts(page: Page, file: string): Promise<{ width: number; height: number; opaque: boolean; blue: number; orange: number }> {
  const url = `data:image/png;base64,${readFileSync(file).toString('base64')}`;
  return page.evaluate(async (src) => {
    const img = new Image();
    img.src = src;
    await img.decode();
    const c = document.createElement('canvas');
    [c.width, c.height] = [img.width, img.height];
    const g = c.getContext('2d')!;
    g.drawImage(img, 0, 0);
    const px = g.getImageData(0, 0, c.width, c.height).data;
    // No named helpers in here: the test runner's compiler would wrap them in a function the page lacks.
    let blue = 0;
    let orange = 0;
    for (let i = 0; i < px.length; i += 4) {
      const [r, g2, b] = [px[i]!, px[i + 1]!, px[i + 2]!];
      if (Math.abs(r - 0x4e) < 30 && Math.abs(g2 - 0x9d) < 30 && Math.abs(b - 0xe6) < 30) blue++;
      if (Math.abs(r - 0xe6) < 30 && Math.abs(g2 - 0xa2) < 30 && Math.abs(b - 0x3c) < 30) orange++;
    }
    return { width: c.width, height: c.height, opaque: px[3] === 255, blue, orange };
  }, url);
}

/** The loss panel and its PNG export, the playground in Chat mode, and the playground restored after a reload. */
export function runViewSteps(page: Page, workspace: string, artifacts: string, log: (line: string) => void): WalkStep[] {
  /** The adapter side's answer in Chat mode, which must survive the reload. */
  let lastAnswer = '';
  const wide = (f: Frame) => f.evaluate(() => document.body.clientWidth > 600);
  return [
    {
      name: 'loss-panel-two-runs',
      run: async () => {
        await runPaletteCommand(page, 'QLoRA: Open Loss Chart in Editor');
        const drawn = await waitFor('the loss panel to overlay two runs', 120_000, async () => {
          const f = await frameWith(page, '#chart-loss', wide);
          const n = f ? await f.evaluate(() => document.querySelectorAll('.u-legend .u-series').length) : 0;
          const checked = f ? await f.evaluate(() => [...document.querySelectorAll('vscode-checkbox[data-run]')].filter((b) => (b as unknown as { checked: boolean }).checked).length) : 0;
          return checked >= 2 && n >= 4 ? `${checked} runs, ${n} legend rows` : undefined;
        }, () => notificationTexts(page));
        log(`loss panel: ${drawn}`);
      },
    },
    {
      name: 'loss-export-png',
      run: async () => {
        const f = await waitFor('the loss panel', 30_000, () => frameWith(page, '#export-png', wide));
        await f.click('#export-png');
        // The save dialog proposes <workspace>/loss.png; the user accepts it.
        await acceptQuickInput(page);
        const file = path.join(workspace, 'loss.png');
        await waitFor('loss.png to be saved', 30_000, async () => (existsSync(file) ? true : undefined), () => notificationTexts(page));
        copyFileSync(file, path.join(artifacts, 'loss-export.png'));
        const png = await pngFacts(page, file);
        log(`exported PNG: ${JSON.stringify(png)}`);
        if (!png.opaque) throw new Error('the exported PNG has no background');
        if (png.blue < 50 || png.orange < 50) throw new Error(`the exported PNG does not show both runs in their colours: ${JSON.stringify(png)}`);
      },
    },
    {
      name: 'playground-chat',
      run: async () => {
        // The completion notification's "Open Playground" opens the run's adapter; once it is gone,
        // the palette command asks which adapter, and the tiny run's is the one to pick.
        const toast = page.locator('.notifications-toasts .notification-list-item', { hasText: 'Run tiny' }).first();
        const button = toast.locator('.monaco-button', { hasText: 'Open Playground' }).first();
        if (await button.isVisible()) await button.click();
        else {
          await runPaletteCommand(page, 'QLoRA: Open Playground');
          await page.waitForTimeout(500);
          if (await quickInputVisible(page)) await pickQuickItem(page, '/tiny/runs/');
        }
        const f = await waitFor('the playground', 60_000, () => frameWith(page, '#out-adapter'));
        const mode = await f.evaluate(() => (document.getElementById('mode') as unknown as { value: string }).value);
        if (mode !== 'chat') throw new Error(`the playground opened in ${mode} mode for a chat recipe`);
        await f.evaluate(() => {
          const input = document.getElementById('input') as unknown as { value: string; dispatchEvent(e: Event): void };
          input.value = 'What is the capital of France?';
          input.dispatchEvent(new Event('input'));
          (document.getElementById('generate') as HTMLElement).click();
        });
        const answers = await waitFor('both sides to answer', 240_000, async () => {
          const [busy, base, adapter] = await f.evaluate(() => [document.getElementById('generate')?.hasAttribute('disabled') ?? true, document.getElementById('out-base')?.textContent ?? '', document.getElementById('out-adapter')?.textContent ?? ''] as const);
          return !busy && base.trim() ? { base: base.trim(), adapter: adapter.trim() } : undefined;
        });
        log(`playground (chat): base ${JSON.stringify(answers.base)}, adapter ${JSON.stringify(answers.adapter)}`);
        if (!answers.adapter) throw new Error('the trained adapter gave no answer in Chat mode');
        lastAnswer = answers.adapter;
      },
    },
    {
      name: 'playground-restored',
      run: async () => {
        // VS Code's own reload (it saves the workbench state first, as a desktop reload does).
        await Promise.all([page.waitForNavigation({ timeout: 120_000 }), runPaletteCommand(page, 'Developer: Reload Window')]);
        // The QLoRA side bar stays in front after the reload, so the Explorer is not waited for.
        await page.locator('.monaco-workbench .part.statusbar').waitFor({ state: 'visible', timeout: 60_000 });
        const f = await waitFor('the playground to come back after the reload', 120_000, () => frameWith(page, '#out-adapter'));
        const mode = await waitFor('its mode', 30_000, async () => (await f.evaluate(() => (document.getElementById('mode') as unknown as { value: string }).value)) || undefined);
        if (mode !== 'chat') throw new Error(`the restored playground is in ${mode} mode`);
        const [chat, shown] = await f.evaluate(() => [document.querySelector('.chat')?.textContent ?? '', document.getElementById('out-adapter')?.textContent ?? ''] as const);
        if (lastAnswer && (!chat.includes(`assistant: ${lastAnswer}`) || shown.trim() !== lastAnswer)) {
          throw new Error(`the restored playground lost the last answer ${JSON.stringify(lastAnswer)} (chat ${JSON.stringify(chat)}, adapter side ${JSON.stringify(shown)})`);
        }
        log('the playground panel is back after the reload, in Chat mode, with the last answer');
      },
    },
  ];
}
