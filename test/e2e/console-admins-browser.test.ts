// The console's Admins and API keys pages in real headless Chromium (playwright-core, Debian's
// /usr/bin/chromium) against real MariaDB and Redis: a superadmin signed in with TOTP creates a
// domain admin for one domain and sets its domain ACL, resets that admin's second factor,
// creates an API key with a role (shown once: the page shows it, a reload does not), uses and
// then revokes it, and turns 2FA enforcement on for domain admins. Every page: each input has a
// label, the skip link comes first by keyboard, no console errors. Screenshots go to
// docs/screenshots/ (the random parts, the key and its hint, masked).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as OTPAuth from 'otpauth';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTwoFactorPolicy } from '../../src/storage/two-factor-policy.js';
import { launchChromium } from '../support/browser.js';
import { startTestPostern, type TestPostern } from '../support/env.js';
import { freePort } from '../support/processes.js';
import { seedAdminAccount, seedDomain, seedTfa } from '../support/seed.js';

const SCREENSHOTS = join(import.meta.dirname, '../../docs/screenshots');
const ROOT_PASSWORD = 'browser admins root passphrase';
/** The base32 key seedTfa writes into mailcow's tfa table. */
const TOTP_SECRET = 'JBSWY3DPEHPK3PXP';
let web: string;
let postern: TestPostern;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let apiKey = '';
const consoleErrors: string[] = [];

beforeAll(async () => {
  const port = await freePort();
  web = `http://127.0.0.1:${port}`;
  browser = await launchChromium();
  postern = await startTestPostern('console_admins_browser', {
    POSTERN_WEB_LISTEN: `127.0.0.1:${port}`,
    POSTERN_PUBLIC_URL: web,
    POSTERN_BCRYPT_COST: '4',
  });
  const { db } = postern.deps;
  await seedDomain(db, 'one.example');
  await seedDomain(db, 'two.example');
  await seedAdminAccount(postern, { username: 'root', password: ROOT_PASSWORD, superadmin: true });
  await seedTfa(db, { username: 'root', authmech: 'totp', active: 1 });
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
});

/** Every visible input, select and textarea has a label (for=, wrapping, or aria-label). */
async function unlabelledInputs(): Promise<string[]> {
  // A string, so that this file needs no DOM types; runs in the page.
  return page.evaluate(`[...document.querySelectorAll('input, select, textarea')]
    .filter((element) => element.type !== 'hidden')
    .filter((element) => !(element.labels && element.labels.length > 0) && !element.getAttribute('aria-label'))
    .map((element) => element.outerHTML.slice(0, 120))`);
}

async function checkPage(name: string, mask: Locator[] = []) {
  expect(await unlabelledInputs()).toEqual([]);
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true, mask, maskColor: '#d5d9e0' });
  // Keyboard: the first Tab lands on the skip link, which leads to the content.
  await page.evaluate('document.activeElement && document.activeElement.blur()');
  await page.keyboard.press('Tab');
  expect(await page.evaluate('document.activeElement.textContent.trim()')).toBe('Skip to content');
  expect(consoleErrors, consoleErrors.join('\n')).toEqual([]);
}

const tfaRows = async (username: string) =>
  (await postern.deps.db.many('SELECT id FROM tfa WHERE username = ?', [username])).length;

describe('the console admins pages in Chromium', () => {
  it('signs in with TOTP and creates a domain admin for one domain', async () => {
    await page.goto(`${web}/admin/login`);
    await page.fill('#username', 'root');
    await page.fill('#password', ROOT_PASSWORD);
    await Promise.all([page.waitForURL(`${web}/admin/login/second-factor`), page.keyboard.press('Enter')]);
    await page.fill('#code', new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(TOTP_SECRET) }).generate());
    await Promise.all([page.waitForURL(`${web}/admin`), page.keyboard.press('Enter')]);

    await page.click('nav[aria-label=Console] >> text=Admins');
    await page.waitForURL(`${web}/admin/admins`);
    await page.fill('#f-username', 'desk');
    await page.fill('#f-password', 'desk passphrase in the browser');
    await page.selectOption('#f-role', 'domainadmin');
    await page.fill('#f-domains', 'one.example');
    await Promise.all([
      page.waitForURL(`${web}/admin/admins/desk?notice=created`),
      page.click('#create-admin button[type=submit]'),
    ]);
    expect(await page.textContent('#notice')).toContain('The admin was created.');
    expect(await page.inputValue('#f-domains')).toBe('one.example');
    const rows = await postern.deps.db.many<{ domain: string }>(
      "SELECT domain FROM domain_admins WHERE username = 'desk' ORDER BY domain",
    );
    expect(rows.map((row) => row.domain)).toEqual(['one.example']);
  });

  it("sets the domain admin's ACL and resets its second factor", async () => {
    await page.fill('#f-domains', 'one.example, two.example');
    await Promise.all([page.waitForURL(/notice=saved/), page.click('#edit-admin button[type=submit]')]);
    expect(await page.textContent('#notice')).toContain('The changes were saved.');
    expect(await page.inputValue('#f-domains')).toBe('one.example, two.example');
    const rows = await postern.deps.db.many<{ domain: string }>(
      "SELECT domain FROM domain_admins WHERE username = 'desk' ORDER BY domain",
    );
    expect(rows.map((row) => row.domain)).toEqual(['one.example', 'two.example']);

    // The admin had enrolled an authenticator and lost the phone.
    await seedTfa(postern.deps.db, { username: 'desk', authmech: 'totp', active: 1 });
    expect(await tfaRows('desk')).toBe(1);
    await page.reload();
    await checkPage('console-admin');
    await Promise.all([page.waitForURL(/notice=tfa-reset/), page.click('#reset-2fa button[type=submit]')]);
    expect(await page.textContent('#notice')).toContain("The admin's second factor was removed");
    expect(await tfaRows('desk')).toBe(0);
    expect(await tfaRows('root')).toBe(1);
  });

  it('creates an API key with a role, shown once: the page shows it, a reload does not', async () => {
    await page.click('nav[aria-label=Console] >> text=Admins');
    await page.click('a[href="/admin/api-keys"]');
    await page.waitForURL(`${web}/admin/api-keys`);
    await page.fill('#f-name', 'monitoring');
    await page.selectOption('#f-role', 'domainadmin');
    await page.fill('#f-domains', 'one.example');
    await page.selectOption('#f-access', 'ro');
    await page.fill('#f-allow_from', '127.0.0.1/32');
    await page.fill('#f-expires', '2099-01-01');
    await Promise.all([
      page.waitForURL(`${web}/admin/api-keys/created`),
      page.click('#create-key button[type=submit]'),
    ]);
    apiKey = await page.inputValue('#api-key-secret');
    expect(apiKey).toMatch(/^postern_[A-Za-z0-9_-]{43}$/);
    expect(await page.textContent('main')).toContain('shown only this once');
    await checkPage('console-api-key-created', [page.locator('#api-key-secret')]);

    await page.reload();
    expect(page.url()).toBe(`${web}/admin/api-keys/created`);
    expect(await page.$('#api-key-secret')).toBeNull();
    expect(await page.textContent('#api-key-gone')).toContain('shown only once');
    expect(await page.content()).not.toContain(apiKey);
    // The reload repeated no POST: one key.
    expect(await postern.deps.db.many('SELECT id FROM postern_api_keys')).toHaveLength(1);

    // The key opens the API with its role: one.example only, read only.
    const domains = await fetch(`${web}/api/v1/domains`, { headers: { 'x-api-key': apiKey } });
    expect(domains.status).toBe(200);
    expect(JSON.stringify(await domains.json())).toContain('one.example');
  });

  it('lists the key without it and revokes it', async () => {
    await page.click('a[href="/admin/api-keys"]');
    const row = await page.textContent('#api-keys tbody tr');
    expect(row).toContain('monitoring');
    expect(row).toContain('domain admin (one.example)');
    expect(row).toContain('2099-01-01');
    expect(await page.content()).not.toContain(apiKey);
    await checkPage('console-api-keys', [page.locator('#api-keys code')]);
    await Promise.all([page.waitForURL(/notice=revoked/), page.click('#api-keys button[type=submit]')]);
    expect(await page.textContent('#notice')).toContain('The API key was revoked.');
    expect(await page.textContent('#api-keys tbody tr')).toContain('revoked');
    const refused = await fetch(`${web}/api/v1/domains`, { headers: { 'x-api-key': apiKey } });
    expect(refused.status).toBe(401);
  });

  it('turns 2FA enforcement on for domain admins', async () => {
    await page.click('nav[aria-label=Console] >> text=Admins');
    expect(await page.isChecked('#p-domainadmin')).toBe(false);
    await page.check('#p-domainadmin');
    await Promise.all([page.waitForURL(/notice=policy/), page.click('#tfa-policy button[type=submit]')]);
    expect(await page.textContent('#notice')).toContain('The two-factor enforcement was saved.');
    expect(await page.isChecked('#p-domainadmin')).toBe(true);
    expect((await readTwoFactorPolicy(postern.deps.db)).policy).toEqual({
      superadmin: false,
      domainadmin: true,
      mailbox: false,
    });
    const list = await page.$$eval('#admins tbody tr', (rows) =>
      rows.map((row) => [...row.querySelectorAll('td')].slice(0, 4).map((cell) => cell.textContent)),
    );
    expect(list).toEqual([
      ['desk', 'domain admin', 'one.example, two.example', 'active'],
      ['root', 'superadmin', 'all', 'active'],
    ]);
    await checkPage('console-admins');
  });

  it('finds every change in the audit log', async () => {
    // The revoked key's refused attempt is written off the request path: write it now.
    await postern.deps.auditWriter.flush();
    // Without the sign-in's own entries (admin.first_factor, admin.login…).
    const actions = await postern.deps.db.many<{ actor: string; action: string }>(
      "SELECT actor, action FROM postern_audit WHERE actor = 'root' AND action NOT LIKE 'admin.login%' AND action <> 'admin.first_factor' ORDER BY id",
    );
    expect(actions.map((row) => `${row.actor}:${row.action}`)).toEqual([
      'root:admin.create',
      'root:admin.update',
      'root:tfa.reset',
      'root:api_key.create',
      'root:api_key.revoke',
      'root:two_factor_policy.update',
    ]);
    const refused = await postern.deps.db.many<{ actor: string }>(
      "SELECT actor FROM postern_audit WHERE action = 'api_key.refused'",
    );
    expect(refused.map((row) => row.actor)).toEqual(['api-key:1']);
  });
});
