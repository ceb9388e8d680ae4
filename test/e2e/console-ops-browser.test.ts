// The console's operations pages in real headless Chromium (playwright-core, Debian's
// /usr/bin/chromium) against real MariaDB, Redis and the Keycloak fake (which follows Keycloak's
// code, cited in test/support/fake-keycloak.ts): a superadmin tests and saves the IdP settings,
// maps an attribute value to a template and checks the preview, runs a sync dry run and sees its
// actions, lifts a ban, and finds all of that in the audit page. Every page: each input has a
// label, the skip link comes first by keyboard, no console errors. Screenshots go to
// docs/screenshots/.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertMailboxTemplate } from '../../src/storage/templates.js';
import { launchChromium } from '../support/browser.js';
import { startTestPostern, type TestPostern } from '../support/env.js';
import { type FakeKeycloak, startFakeKeycloak } from '../support/fake-keycloak.js';
import { freePort } from '../support/processes.js';
import { seedAdminAccount, seedDomain } from '../support/seed.js';

const SCREENSHOTS = join(import.meta.dirname, '../../docs/screenshots');
const ROOT_PASSWORD = 'browser ops root passphrase';
const CLIENT_SECRET = 'browser-ops-client-secret-8c2f';
let web: string;
let postern: TestPostern;
let keycloak: FakeKeycloak;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const consoleErrors: string[] = [];

beforeAll(async () => {
  const port = await freePort();
  web = `http://127.0.0.1:${port}`;
  [keycloak, browser] = await Promise.all([
    startFakeKeycloak({
      clients: [{ clientId: 'postern', secret: CLIENT_SECRET }],
      users: [
        { username: 'ada', email: 'ada@example.org', emailVerified: true, attributes: { mailcow_template: ['staff'] } },
        { username: 'bo', email: 'bo@example.org', emailVerified: true, attributes: { mailcow_template: ['guest'] } },
      ],
    }),
    launchChromium(),
  ]);
  postern = await startTestPostern('console_ops_browser', {
    POSTERN_WEB_LISTEN: `127.0.0.1:${port}`,
    POSTERN_PUBLIC_URL: web,
    POSTERN_SECRET_KEY: 'console-ops-browser-secret-key-0123456789',
    POSTERN_BCRYPT_COST: '4',
    POSTERN_IDP_TIMEOUT_MS: '3000',
    POSTERN_BAN_USER_THRESHOLD: '3',
  });
  // This file starts every sync run itself and checks the run list; the minute cron would add a
  // real run of its own once import_users is saved, at a time the test does not choose.
  await postern.schedule.stop();
  const { db } = postern.deps;
  await seedDomain(db, 'example.org');
  await insertMailboxTemplate(db, 'Staff', { quota: 2 * 1024 ** 3, active: 1, imap_access: 1, smtp_access: 1 });
  await seedAdminAccount(postern, { username: 'root', password: ROOT_PASSWORD, superadmin: true });
  await mkdir(SCREENSHOTS, { recursive: true });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
}, 120_000);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await postern?.destroy();
  await keycloak?.close();
});

/** Every visible input, select and textarea has a label (for=, wrapping, or aria-label). */
async function unlabelledInputs(): Promise<string[]> {
  // A string, so that this file needs no DOM types; runs in the page.
  return page.evaluate(`[...document.querySelectorAll('input, select, textarea')]
    .filter((element) => element.type !== 'hidden')
    .filter((element) => !(element.labels && element.labels.length > 0) && !element.getAttribute('aria-label'))
    .map((element) => element.outerHTML.slice(0, 120))`);
}

async function checkPage(name: string) {
  expect(await unlabelledInputs()).toEqual([]);
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  // Keyboard: the first Tab lands on the skip link, which leads to the content.
  await page.evaluate('document.activeElement && document.activeElement.blur()');
  await page.keyboard.press('Tab');
  expect(await page.evaluate('document.activeElement.textContent.trim()')).toBe('Skip to content');
  expect(consoleErrors, consoleErrors.join('\n')).toEqual([]);
}

describe('the console operations pages in Chromium', () => {
  it('signs in and tests, then saves, the identity provider settings', async () => {
    await page.goto(`${web}/admin/login`);
    await page.fill('#username', 'root');
    await page.fill('#password', ROOT_PASSWORD);
    await Promise.all([page.waitForURL(`${web}/admin`), page.keyboard.press('Enter')]);

    await page.click('a[href="/admin/identity-provider"]');
    await page.fill('#f-server_url', keycloak.url);
    await page.fill('#f-realm', 'mail');
    await page.fill('#f-client_id', 'postern');
    await page.fill('#f-client_secret', CLIENT_SECRET);
    await page.fill('#f-redirect_url', `${web}/login/sso/callback`);
    await page.check('#f-import_users');
    await page.fill('#f-sample_user', 'ada@example.org');
    await Promise.all([page.waitForLoadState('load'), page.click('#idp-test')]);
    const steps = await page.$$eval('#connection-report li', (items) =>
      items.map((item) => [item.getAttribute('data-step'), item.getAttribute('data-ok')]),
    );
    expect(steps).toEqual([
      ['discovery', 'true'],
      ['jwks', 'true'],
      ['client_credentials', 'true'],
      ['admin_api', 'true'],
      ['sample_user', 'true'],
      ['attribute_mapping', 'false'],
    ]);
    await checkPage('console-identity-provider');
    // The secret field is empty again after the test; empty keeps nothing yet, so type it once more.
    await page.fill('#f-client_secret', CLIENT_SECRET);
    await Promise.all([page.waitForURL(/saved=1/), page.click('#idp-save')]);
    expect(await page.textContent('#notice')).toContain('The identity provider settings were saved.');
  });

  it('maps an attribute value to a template and checks the preview', async () => {
    await page.click('a[href="/admin/templates"]');
    await page.fill('#f-value', 'staff');
    await page.selectOption('#f-template', 'Staff');
    await Promise.all([page.waitForURL(/saved=1/), page.click('#mapping-add button[type=submit]')]);
    expect(await page.$$eval('#mapping tbody tr[data-row]', (rows) => rows.length)).toBe(1);
    await page.selectOption('#f-default-template', 'Default');
    await Promise.all([page.waitForURL(/saved=1/), page.click('#mapping-default button[type=submit]')]);
    await page.fill('#p-value', 'staff');
    await Promise.all([page.waitForURL(/value=staff/), page.click('#mapping-preview button[type=submit]')]);
    expect(await page.textContent('#preview-template')).toBe('Template: Staff');
    expect(await page.textContent('#preview-result')).toContain('Row 1 ("staff") matches');
    await page.fill('#p-value', '');
    await page.fill('#p-sample-user', 'bo@example.org');
    await Promise.all([page.waitForURL(/sample_user=/), page.click('#mapping-preview button[type=submit]')]);
    expect(await page.textContent('#preview-template')).toBe('Template: Default');
    expect(await page.textContent('#preview-result')).toContain('IdP user "bo" has mailcow_template = ["guest"]');
    await checkPage('console-templates');
  });

  it('runs a sync dry run against the Keycloak fake and sees its actions', async () => {
    await page.click('a[href="/admin/sync"]');
    await Promise.all([page.waitForURL(/\/admin\/sync\/runs\/\d+$/), page.click('#sync-dry-run')]);
    // The progress script reloads the page once the run has finished; without it, refresh.
    await page.waitForSelector('#run-actions', { timeout: 20_000 });
    const actions = await page.$$eval('#run-actions tbody tr[data-action]', (rows) =>
      rows.map((row) => [...row.querySelectorAll('td')].map((cell) => cell.textContent)),
    );
    expect(actions).toEqual([
      ['create', 'ada@example.org', '', 'Staff', 'planned'],
      ['create', 'bo@example.org', '', 'Default', 'planned'],
    ]);
    await checkPage('console-sync-run');
    await page.click('a[href="/admin/sync"]');
    await checkPage('console-sync');
  });

  it('lifts a ban', async () => {
    for (const password of ['guess-1', 'guess-2', 'guess-3']) {
      await postern.deps.limiter.recordFailure({ ip: '198.51.100.7', username: 'mallory@example.org', password });
    }
    await page.click('a[href="/admin/bans"]');
    expect(await page.textContent('tr[data-ban="user:mallory@example.org"]')).toContain(
      '3 distinct wrong passwords for this username',
    );
    await checkPage('console-bans');
    await Promise.all([
      page.waitForURL(/lifted=/),
      page.click('button[aria-label="Lift the ban on mallory@example.org"]'),
    ]);
    expect(await page.textContent('#notice')).toContain('The ban on mallory@example.org was lifted.');
    expect(await page.$('tr[data-ban="user:mallory@example.org"]')).toBeNull();
  });

  it('finds all of that in the audit page', async () => {
    await page.click('a[href="/admin/audit"]');
    const events = await page.$$eval('#audit tbody tr[data-audit]', (rows) =>
      rows.map((row) => row.getAttribute('data-audit')),
    );
    expect(events).toEqual(expect.arrayContaining(['ban.lift', 'identity_provider.update']));
    await page.fill('#f-action', 'ban.lift');
    await Promise.all([page.waitForURL(/action=ban\.lift/), page.click('#audit-filter button[type=submit]')]);
    const lifts = await page.$$eval('#audit tbody tr[data-audit]', (rows) =>
      rows.map((row) => [...row.querySelectorAll('td')].slice(1, 5).map((cell) => cell.textContent)),
    );
    expect(lifts).toEqual([['root', 'ban.lift', 'success', 'mallory@example.org']]);
    await checkPage('console-audit');
    // The mapping edits (identity_provider.update, by root) are there too.
    await page.fill('#f-action', 'identity_provider.update');
    await Promise.all([page.waitForURL(/identity_provider/), page.click('#audit-filter button[type=submit]')]);
    expect(await page.$$eval('#audit tbody tr[data-audit]', (rows) => rows.length)).toBe(3);
  });

  it('shows the dashboard: login charts, health, bans and the last sync run', async () => {
    await postern.deps.db.execute(
      "REPLACE INTO sasl_log (service, app_password, username, real_rip, datetime) VALUES ('imap', 0, 'ada@example.org', '192.0.2.4', NOW() - INTERVAL 2 HOUR), ('smtp', 0, 'ada@example.org', '192.0.2.4', NOW() - INTERVAL 1 DAY)",
    );
    await page.click('a[href="/admin"]');
    expect(await page.$$eval('#health dd[data-health="ok"]', (items) => items.length)).toBe(3);
    expect(await page.textContent('#dash-last-run')).toContain('(dry run): succeeded');
    expect(await page.$$eval('#logins-7d rect', (bars) => bars.length)).toBe(2);
    await checkPage('console-dashboard');
  });
});
