/**
 * The recipe editor as a user sees it in the web workbench: the memory CodeLens above the tiny
 * recipe, the schema completion list while typing a key, a wrong value in the Problems panel, and
 * the hover on a key. Each step ends with its screenshot (taken by the runner). The recipe is
 * reverted at the end so the run that follows trains the recipe as written.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { revealInExplorer, runPaletteCommand } from './workbench';

/** One step: a name for its log line and screenshot, and what it does. */
export interface EditorStep {
  name: string;
  run: () => Promise<void>;
}

/** Steps that open `recipeRel` and exercise the language server through the editor UI. */
export function recipeEditorSteps(page: Page, workspace: string, recipeRel: string): EditorStep[] {
  const file = path.join(workspace, recipeRel);
  const original = readFileSync(file, 'utf8');
  const editor = page.locator('.editor-instance .monaco-editor').first();
  return [
    {
      name: 'recipe-codelens-completion',
      run: async () => {
        const row = await revealInExplorer(page, recipeRel);
        await row.dblclick();
        await editor.locator('.view-lines', { hasText: 'base_model' }).waitFor({ state: 'visible', timeout: 30_000 });
        // the server starts on this first recipe; its CodeLens carries the estimate
        await editor.locator('.codelens-decoration', { hasText: 'tokens/step' }).first().waitFor({ state: 'visible', timeout: 60_000 });
        await editor.locator('.view-lines').click();
        await page.keyboard.press('Control+Home');
        await page.keyboard.press('End');
        await page.keyboard.press('Enter');
        await page.keyboard.type('tr', { delay: 50 });
        await page.keyboard.press('Control+Space');
        await page.locator('.suggest-widget.visible .monaco-list-row', { hasText: 'trust_remote_code' }).first().waitFor({ state: 'visible', timeout: 15_000 });
      },
    },
    {
      name: 'recipe-problem',
      run: async () => {
        await page.keyboard.press('Escape');
        await page.keyboard.press('Home');
        await page.keyboard.press('Shift+End');
        await page.keyboard.type('revision: 7');
        await page.keyboard.press('Control+Shift+M');
        await page.locator('.markers-panel .monaco-list-row', { hasText: 'revision' }).first().waitFor({ state: 'visible', timeout: 10_000 });
      },
    },
    {
      name: 'recipe-hover',
      run: async () => {
        await editor.locator('.view-line span', { hasText: /^lora$/ }).first().hover();
        await page.locator('.monaco-hover', { hasText: 'The low-rank adapters' }).first().waitFor({ state: 'visible', timeout: 15_000 });
      },
    },
    {
      name: 'recipe-revert',
      run: async () => {
        await page.mouse.move(5, 5);
        // whether or not the edit reached the disk, the disk gets the original and the editor reloads it
        writeFileSync(file, original);
        const edited = async () => (await editor.locator('.view-lines').innerText()).includes('revision');
        // Up to three tries, each with the editor focused first: a loaded workbench has dropped one
        // palette Enter (the list re-sorted under it) and the command then went elsewhere.
        for (let attempt = 1; await edited(); attempt++) {
          if (attempt > 3) throw new Error('the recipe still shows the test edit after File: Revert File (3 tries)');
          await editor.locator('.view-lines').click();
          await runPaletteCommand(page, 'File: Revert File');
          const deadline = Date.now() + 10_000;
          while ((await edited()) && Date.now() < deadline) await page.waitForTimeout(250);
        }
        if (readFileSync(file, 'utf8') !== original) throw new Error(`${recipeRel} on disk differs from the original after the revert`);
        await page.keyboard.press('Control+Shift+M');
      },
    },
  ];
}
