// Real headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core; nothing is
// downloaded. A missing browser fails the test that needs it, loudly: never a skip.
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM_PATH = process.env.TEST_CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * One browser per test file; give each test its own `browser.newContext()` (fresh cookies).
 * Playwright starts Chromium with a fresh temporary profile (its own --user-data-dir) and
 * removes it on close; passing --user-data-dir ourselves is refused by launch().
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: install it (apt-get install -y chromium) or set TEST_CHROMIUM_PATH`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}
