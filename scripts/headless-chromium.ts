/** Debian's chromium driven by playwright-core, for the report's browser test and its screenshots. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { CHROMIUM, headlessFlags } from '../src/report/png.js';

export const chromiumPresent = fs.existsSync(CHROMIUM);

export interface OpenedPage {
  readonly page: Page;
  /** console errors and uncaught page errors seen so far */
  readonly errors: string[];
  /** requests for anything but the page itself (the report must fetch nothing) */
  readonly requests: string[];
  close(): Promise<void>;
}

/** Opens `file` in a fresh headless chromium profile, recording console errors and outside requests. */
export async function openInChromium(file: string, viewport = { width: 1344, height: 900 }): Promise<OpenedPage> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-chromium-'));
  // launchPersistentContext is what accepts a --user-data-dir of our own
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, viewport,
    args: headlessFlags(profile).filter((f) => !f.startsWith('--user-data-dir') && f !== '--headless'),
  });
  const page = context.pages()[0] ?? await context.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  const url = `file://${path.resolve(file)}`;
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => { if (r.url() !== url) requests.push(r.url()); });
  await page.goto(url, { waitUntil: 'load' });
  return {
    page, errors, requests,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}
