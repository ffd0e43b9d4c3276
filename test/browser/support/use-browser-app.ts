import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { launchBrowser } from './browser.js';
import { startBrowserApp, type BrowserApp } from './browser-app.js';

export interface SharedBrowserApp {
  /** The app of the suite (set in its beforeAll). */
  readonly app: BrowserApp;
  /** The suite's chromium (set in its beforeAll). */
  readonly browser: Browser;
  /** A new browser context, closed after the suite. */
  newContext(options?: Parameters<Browser['newContext']>[0]): Promise<BrowserContext>;
}

/**
 * Registers a suite's beforeAll / afterAll: the module's app (startBrowserApp(), default options) and chromium
 * before the first test, then `setup(app)` (users etc.); after the last one, the contexts made through it are
 * closed, then chromium and the app.
 */
export function useBrowserApp(executable: string | undefined, setup?: (app: BrowserApp) => Promise<void>): SharedBrowserApp {
  let app: BrowserApp | undefined;
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  beforeAll(async () => {
    app = await startBrowserApp();
    browser = await launchBrowser(executable!);
    await setup?.(app);
  });
  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await app?.shutdown();
  });
  const shared: SharedBrowserApp = {
    get app() {
      if (!app) throw new Error('useBrowserApp(): the app is started in beforeAll');
      return app;
    },
    get browser() {
      if (!browser) throw new Error('useBrowserApp(): chromium is launched in beforeAll');
      return browser;
    },
    async newContext(options) {
      const context = await shared.browser.newContext(options);
      contexts.push(context);
      return context;
    },
  };
  return shared;
}
