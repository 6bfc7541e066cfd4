/**
 * Page-object helpers for VS Code's web workbench (code-server 4.100 / VS Code 1.100), written
 * against the DOM a user sees: the command palette, quick picks, the explorer, context menus and
 * webviews. Selectors follow /work/shared/facts/vscode-e2e.md.
 */
import type { FrameLocator, Locator, Page } from 'playwright-core';

/** Waits until the workbench has rendered its parts and the explorer shows the workspace. */
export async function waitForWorkbench(page: Page, timeoutMs = 60_000): Promise<void> {
  await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: timeoutMs });
  await page.locator('.part.statusbar').waitFor({ state: 'visible', timeout: timeoutMs });
  // The explorer lists the folder's children once the file service is connected.
  await page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ state: 'visible', timeout: timeoutMs });
}

/** The quick-input widget (palette, quick picks, input boxes). */
export function quickInput(page: Page): Locator {
  return page.locator('.quick-input-widget');
}

/**
 * Runs a command through F1 by its palette label, e.g. `QLoRA: Start QLoRA Run`. Right after the
 * window opens the palette may not list extension commands yet (the extension host is still
 * registering contributions), so the palette is reopened until the row shows or time runs out.
 */
export async function runPaletteCommand(page: Page, label: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const input = quickInput(page).locator('input');
  const row = quickInput(page).locator('.quick-input-list .monaco-list-row', { hasText: label }).first();
  for (;;) {
    await page.keyboard.press('F1');
    await input.waitFor({ state: 'visible', timeout: 15_000 });
    await input.fill(`>${label}`);
    if (await row.waitFor({ state: 'visible', timeout: 3000 }).then(() => true, () => false)) {
      await page.keyboard.press('Enter');
      return;
    }
    const rows = await quickInput(page).locator('.quick-input-list .monaco-list-row').allInnerTexts().catch(() => []);
    await page.keyboard.press('Escape');
    if (Date.now() > deadline) throw new Error(`the command palette never offered "${label}" (it shows: ${rows.join(', ')})`);
    await page.waitForTimeout(1000);
  }
}

/** Waits for a quick pick to offer a row containing `text` and picks it. */
export async function pickQuickItem(page: Page, text: string, timeoutMs = 30_000): Promise<void> {
  const row = quickInput(page).locator('.quick-input-list .monaco-list-row', { hasText: text }).first();
  await row.waitFor({ state: 'visible', timeout: timeoutMs });
  await row.click();
}

/** Whether the quick-input widget is showing now. */
export async function quickInputVisible(page: Page): Promise<boolean> {
  return quickInput(page).isVisible();
}

/** Accepts whatever the visible quick input proposes (an input box default or the focused item). */
export async function acceptQuickInput(page: Page, timeoutMs = 30_000): Promise<void> {
  await quickInput(page).locator('input').waitFor({ state: 'visible', timeout: timeoutMs });
  await page.keyboard.press('Enter');
}

/**
 * The document inside one of our extension's webviews: VS Code nests it two iframes deep, and
 * filtering by extension id keeps Playwright's strict mode from seeing two candidates.
 */
export function extensionWebview(page: Page, extensionId: string): FrameLocator {
  return page.frameLocator(`iframe.webview.ready[src*="extensionId=${extensionId}"]`).frameLocator('#active-frame');
}

/** Shows the Explorer view (it may be hidden behind another view container). */
export async function showExplorer(page: Page): Promise<void> {
  await page.keyboard.press('Control+Shift+E');
  await page.locator('.explorer-folders-view').waitFor({ state: 'visible', timeout: 15_000 });
}

/**
 * Reveals `relPath` (slash-separated, relative to the workspace root) in the explorer by expanding
 * each folder on the way, and returns its row.
 */
export async function revealInExplorer(page: Page, relPath: string, timeoutMs = 30_000): Promise<Locator> {
  await showExplorer(page);
  const parts = relPath.split('/').filter(Boolean);
  let row: Locator | undefined;
  for (let i = 0; i < parts.length; i++) {
    const name = parts[i]!;
    const level = i + 1;
    // aria-level keeps `adapter` under runs/<id>/ apart from a same-named folder elsewhere.
    row = page.locator(`.explorer-folders-view .monaco-list-row[aria-level="${level}"]`).filter({
      has: page.locator('.label-name', { hasText: new RegExp(`^${escapeRegExp(name)}$`) }),
    }).first();
    await scrollUntilVisible(page, row, timeoutMs);
    const isLast = i === parts.length - 1;
    if (!isLast && (await row.getAttribute('aria-expanded')) !== 'true') {
      await row.click();
      await page.waitForFunction(
        (el) => el?.getAttribute('aria-expanded') === 'true',
        await row.elementHandle(),
        { timeout: timeoutMs },
      );
    }
  }
  if (!row) throw new Error('revealInExplorer: empty path');
  return row;
}

async function scrollUntilVisible(page: Page, row: Locator, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // The explorer is a virtual list: rows outside the viewport are not in the DOM, so scroll.
  while (Date.now() < deadline) {
    if (await row.isVisible()) return;
    await page.locator('.explorer-folders-view').hover();
    await page.mouse.wheel(0, 200);
    await page.waitForTimeout(150);
  }
  await row.waitFor({ state: 'visible', timeout: 1000 });
}

/**
 * Right-clicks `target` and chooses the context-menu entry labelled `label`. Menus are built
 * from context keys an extension may set a moment after a folder appears, so the menu is
 * reopened until the entry shows or `timeoutMs` passes. A click that lands while the menu is
 * still settling can leave it open with the entry only highlighted; `confirm` (when given) says
 * whether the action really started, and the menu is tried again until it does.
 */
export async function contextMenuAction(
  page: Page,
  target: Locator,
  label: string,
  timeoutMs = 30_000,
  confirm?: () => Promise<boolean>,
  confirmWithinMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const item = page.locator('.context-view .monaco-menu .action-item', { hasText: label }).first();
  for (;;) {
    await target.click({ button: 'right' });
    const shown = await item.waitFor({ state: 'visible', timeout: 3000 }).then(() => true, () => false);
    let entries: string[] = [];
    if (shown) {
      await item.click();
      if (!confirm || (await pollFor(page, confirm, confirmWithinMs))) return;
    } else {
      entries = await page.locator('.context-view .monaco-menu .action-label').allInnerTexts().catch(() => []);
    }
    if (await page.locator('.context-view .monaco-menu').isVisible().catch(() => false)) await page.keyboard.press('Escape');
    if (Date.now() > deadline) {
      const why = shown ? `choosing it did not start the action` : `it shows: ${entries.filter(Boolean).join(', ')}`;
      throw new Error(`the context menu's "${label}" entry failed after ${timeoutMs / 1000} s; ${why}`);
    }
    await page.waitForTimeout(shown ? 500 : 2000);
  }
}

async function pollFor(page: Page, check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await page.waitForTimeout(200);
  }
  return false;
}

/** Text of the visible notification toasts, for error messages in test failures. */
export async function notificationTexts(page: Page): Promise<string[]> {
  return page.locator('.notifications-toasts .notification-list-item-message').allInnerTexts().catch(() => []);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
