/**
 * Headless Debian Chromium driven by playwright-core, set up to open the VS Code web workbench
 * served by code-server. Never downloads a browser: it uses /usr/bin/chromium, which
 * scripts/vscode/setup.sh installs from Debian.
 */
import { mkdirSync, mkdtempSync, existsSync } from 'node:fs';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium; QLORA_CHROMIUM overrides it for other distributions. */
export const chromiumPath = process.env.QLORA_CHROMIUM ?? '/usr/bin/chromium';

const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** A browser with one context and one page; `close()` ends the browser. */
export interface WorkbenchBrowser {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Resolves once every console message seen so far has been handed to `onConsole`. */
  consoleDrained(): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link launchWorkbenchBrowser}. */
export interface LaunchOptions {
  /** Folder for the browser profile (a fresh subfolder is made in it). */
  workDir: string;
  /** Page size; big enough that the side bar, editor and panel all show. */
  viewport?: { width: number; height: number };
  /** Turn on VS Code's smoke-test driver, needed for the extension-test payload. */
  smokeTestDriver?: boolean;
  /** Receives each console call of the page (its argument values, in order) and page errors. */
  onConsole?: (type: string, args: unknown[]) => void;
}

/**
 * Runs before any workbench script: makes the web client read
 * `developmentOptions.enableSmokeTestDriver: true` from its configuration element. Intercepting
 * getAttribute is used because the element does not exist yet when init scripts run, and
 * rewriting the HTML through page.route makes Chromium block the loopback WebSocket. Kept as plain
 * text so no bundler helper (tsx adds `__name`) leaks into the page.
 */
const enableSmokeTestDriverScript = `(() => {
  const original = Element.prototype.getAttribute;
  Element.prototype.getAttribute = function (name) {
    const value = original.call(this, name);
    if (name !== 'data-settings' || this.id !== 'vscode-workbench-web-configuration' || value === null) return value;
    try {
      const config = JSON.parse(value);
      config.developmentOptions = Object.assign({}, config.developmentOptions, { enableSmokeTestDriver: true });
      return JSON.stringify(config);
    } catch {
      return value;
    }
  };
})();`;

/** Launches headless Chromium with a fresh profile and opens one page. */
export async function launchWorkbenchBrowser(opts: LaunchOptions): Promise<WorkbenchBrowser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(`Chromium not found at ${chromiumPath}. Run: bash scripts/vscode/setup.sh (or set QLORA_CHROMIUM)`);
  }
  mkdirSync(opts.workDir, { recursive: true });
  const profile = mkdtempSync(path.join(opts.workDir, 'chromium-'));
  // Playwright refuses --user-data-dir as an argument; a persistent context is its way to say it.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    args: chromiumArgs,
    headless: true,
    viewport: opts.viewport ?? { width: 1600, height: 1000 },
  });
  if (opts.smokeTestDriver) await context.addInitScript({ content: enableSmokeTestDriverScript });
  const page = context.pages()[0] ?? (await context.newPage());
  // Argument values arrive asynchronously; one queue keeps the messages in their order.
  let queue: Promise<void> = Promise.resolve();
  if (opts.onConsole) {
    const onConsole = opts.onConsole;
    page.on('console', (msg) => {
      const values = Promise.all(msg.args().map((a) => a.jsonValue().catch(() => '[unserializable]')));
      queue = queue.then(async () => onConsole(msg.type(), await values.catch(() => [msg.text()])));
    });
    page.on('pageerror', (err) => {
      queue = queue.then(() => onConsole('pageerror', [String(err)]));
    });
  }
  return {
    context,
    page,
    consoleDrained: () => queue,
    close: async () => {
      await context.close().catch(() => undefined);
    },
  };
}

/** Saves a full-page screenshot, never throwing (it runs on failure paths). */
export async function screenshot(page: Page, file: string): Promise<string | undefined> {
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    await page.screenshot({ path: file, fullPage: true, timeout: 10_000 });
    return file;
  } catch {
    return undefined;
  }
}
