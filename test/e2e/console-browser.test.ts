// The admin console in real headless Chromium (Debian's /usr/bin/chromium, playwright-core):
// a superadmin signs in with password and TOTP (the code computed with otpauth), creates a
// domain and a mailbox, and that mailbox then logs in over IMAP through real Dovecot asking
// this postern. A domain admin, signing in by keyboard alone, sees only its domain and gets 404
// for another domain's mailbox by URL. A form posted from another site, or without the CSRF
// token, is refused. Every page visited has a label for every input and logs no console error.
// Screenshots of the main pages go to docs/screenshots/ (shown in the README).
import { createServer, type Server } from 'node:http';
import { resolve } from 'node:path';
import * as OTPAuth from 'otpauth';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/browser.js';
import { type RunningDovecot, startDovecot } from '../support/dovecot.js';
import { startTestPostern, type TestPostern } from '../support/env.js';
import { imapLogin } from '../support/mail-clients.js';
import { freePort } from '../support/processes.js';
import { seedAdminAccount, seedDomain, seedMailbox, seedTfa } from '../support/seed.js';

const SCREENSHOTS = resolve(import.meta.dirname, '../../docs/screenshots');
const ROOT_PASSWORD = 'browser root passphrase';
const DESK_PASSWORD = 'browser desk passphrase';
const MAILBOX_PASSWORD = 'Erin mail pässword 1';
/** The base32 key seedTfa writes into mailcow's tfa table. */
const TOTP_SECRET = 'JBSWY3DPEHPK3PXP';

let web: string;
let postern: TestPostern;
let dovecot: RunningDovecot;
let browser: Browser;
let foreignSite: Server;
let foreignOrigin: string;
const consoleErrors: string[] = [];
/** Pages the test opens to see them refused (404/403): their "failed to load" lines are expected. */
const expectedRefusals = new Set<string>();

/** A fresh context whose page reports every console error and uncaught exception. */
async function openPage(): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const url = message.location().url;
    if (expectedRefusals.has(url) && message.text().startsWith('Failed to load resource')) return;
    consoleErrors.push(`${url || page.url()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => consoleErrors.push(`${page.url()}: ${error.message}`));
  return { context, page };
}

/** Form controls a person fills in that have no label (by <label for>, wrapping label or aria-label). */
async function unlabelledInputs(page: Page): Promise<string[]> {
  // Runs in the page (the test's TypeScript has no DOM types, hence a string).
  return page.evaluate<string[]>(`[...document.querySelectorAll('input, select, textarea')]
    .filter((control) => !['hidden', 'submit', 'button'].includes(control.type))
    .filter((control) => (control.labels?.length ?? 0) === 0 && !control.getAttribute('aria-label'))
    .map((control) => control.outerHTML)`);
}

/** The focused element's id, or its text when it has none. */
const focused = (page: Page, what: 'id' | 'textContent') => page.evaluate<string>(`document.activeElement?.${what}`);

async function shot(page: Page, name: string) {
  await page.screenshot({ path: `${SCREENSHOTS}/${name}.png`, fullPage: true });
}

beforeAll(async () => {
  const port = await freePort();
  web = `http://127.0.0.1:${port}`;
  browser = await launchChromium();
  postern = await startTestPostern('console_browser', {
    POSTERN_WEB_LISTEN: `127.0.0.1:${port}`,
    POSTERN_PUBLIC_URL: web,
    POSTERN_BCRYPT_COST: '5',
  });
  const { db } = postern.deps;
  await seedDomain(db, 'desk.example');
  await seedDomain(db, 'other.example');
  await seedMailbox(db, { username: 'bob@other.example', passwordHash: '{PLAIN}x' });
  await seedAdminAccount(postern, { username: 'root', password: ROOT_PASSWORD, superadmin: true });
  await seedTfa(db, { username: 'root', authmech: 'totp', active: 1 });
  await seedAdminAccount(postern, {
    username: 'desk',
    password: DESK_PASSWORD,
    superadmin: false,
    domains: ['desk.example'],
  });
  dovecot = await startDovecot({ authUrl: `${postern.internalUrl}/` });
  // Another site (localhost is another site than 127.0.0.1) whose page posts a form to postern.
  foreignSite = createServer((_request, response) => {
    response.setHeader('content-type', 'text/html');
    response.end(`<!doctype html><title>elsewhere</title>
      <form id="f" method="post" action="${web}/admin/domains/desk.example">
        <input type="hidden" name="description" value="changed from elsewhere">
      </form><script>document.getElementById('f').submit()</script>`);
  });
  const foreignPort = await freePort();
  await new Promise<void>((done) => foreignSite.listen(foreignPort, 'localhost', done));
  foreignOrigin = `http://localhost:${foreignPort}`;
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await dovecot?.stop();
  await postern?.destroy();
  await new Promise((done) => foreignSite?.close(done));
});

describe('the admin console in Chromium', () => {
  it('a superadmin signs in with TOTP, creates a domain and a mailbox; the mailbox signs in to the portal and logs in over IMAP', async () => {
    const { context, page } = await openPage();
    try {
      await page.goto(`${web}/admin/login`);
      await page.fill('#username', 'root');
      await page.fill('#password', ROOT_PASSWORD);
      await page.click('button[type=submit]');
      await page.waitForURL(`${web}/admin/login/second-factor`);
      expect(await unlabelledInputs(page)).toEqual([]);
      const code = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(TOTP_SECRET) }).generate();
      await page.fill('#code', code);
      await page.click('button[type=submit]');
      await page.waitForURL(`${web}/admin`);
      expect(await page.textContent('#admin-username')).toBe('root');
      await shot(page, 'console-dashboard');

      await page.click('nav[aria-label=Console] >> text=Domains');
      await page.waitForURL(`${web}/admin/domains`);
      await page.click('#new-domain');
      expect(await unlabelledInputs(page)).toEqual([]);
      await page.fill('#f-domain', 'browser.example');
      await page.fill('#f-description', 'Made in the browser');
      await shot(page, 'console-domain-new');
      await page.click('#domain-form button[type=submit]');
      await page.waitForURL(`${web}/admin/domains/browser.example?notice=created`);
      expect(await page.textContent('#notice')).toContain('The domain was created.');
      expect(await unlabelledInputs(page)).toEqual([]);
      await page.goto(`${web}/admin/domains`);
      expect(await page.textContent('#domains')).toContain('browser.example');
      await shot(page, 'console-domains');

      await page.goto(`${web}/admin/mailboxes/new?domain=browser.example`);
      expect(await unlabelledInputs(page)).toEqual([]);
      await page.fill('#f-local_part', 'erin');
      await page.fill('#f-name', 'Erin Example');
      await page.fill('#f-password', MAILBOX_PASSWORD);
      await page.fill('#f-password2', MAILBOX_PASSWORD);
      await page.click('#mailbox-form button[type=submit]');
      await page.waitForURL(`${web}/admin/mailboxes/erin%40browser.example?notice=created`);
      expect(await unlabelledInputs(page)).toEqual([]);
      await shot(page, 'console-mailbox');
      await page.goto(`${web}/admin/mailboxes`);
      expect(await page.textContent('#mailboxes')).toContain('erin@browser.example');
      await shot(page, 'console-mailboxes');

      // The new mailbox signs in to the portal in a second browser context, with its own cookies.
      const second = await openPage();
      try {
        await second.page.goto(`${web}/login`);
        await second.page.fill('#username', 'erin@browser.example');
        await second.page.fill('#password', MAILBOX_PASSWORD);
        await second.page.click('#password-login');
        await second.page.waitForURL(`${web}/`);
        expect(await second.page.textContent('#mailbox-address')).toBe('erin@browser.example');
        expect(await unlabelledInputs(second.page)).toEqual([]);
      } finally {
        await second.context.close();
      }

      // The new mailbox's password works through real Dovecot, decided by this postern.
      const login = await imapLogin(dovecot.imapPort, 'erin@browser.example', MAILBOX_PASSWORD);
      expect(login.line).toMatch(/^a1 OK .*Logged in/);
      expect((await imapLogin(dovecot.imapPort, 'erin@browser.example', 'not the password')).ok).toBe(false);

      const audit = await postern.deps.db.many<{ action: string; actor: string }>(
        "SELECT action, actor FROM postern_audit WHERE target IN ('browser.example', 'erin@browser.example') ORDER BY id",
      );
      expect(audit).toEqual([
        { action: 'domain.create', actor: 'root' },
        { action: 'mailbox.create', actor: 'root' },
        { action: 'web.login', actor: 'erin@browser.example' },
      ]);
    } finally {
      await context.close();
    }
  });

  it('a domain admin, by keyboard, sees only its domain and gets 404 for another domain’s mailbox', async () => {
    const { context, page } = await openPage();
    try {
      await page.goto(`${web}/admin/login`);
      await page.keyboard.press('Tab');
      expect(await focused(page, 'id')).toBe('username');
      await page.keyboard.type('desk');
      await page.keyboard.press('Tab');
      await page.keyboard.type(DESK_PASSWORD);
      await page.keyboard.press('Enter');
      await page.waitForURL(`${web}/admin`);
      // The first Tab reaches the skip link; following it moves focus to the page's content.
      await page.keyboard.press('Tab');
      expect(await focused(page, 'textContent')).toBe('Skip to content');
      await page.keyboard.press('Enter');
      expect(await focused(page, 'id')).toBe('content');

      await page.goto(`${web}/admin/domains`);
      const domains = await page.$$eval('#domains tbody tr td:first-child', (cells) =>
        cells.map((cell) => cell.textContent),
      );
      expect(domains).toEqual(['desk.example']);
      expect(await page.$('#new-domain')).toBeNull();
      await page.goto(`${web}/admin/mailboxes`);
      expect(await page.textContent('main')).not.toContain('other.example');
      for (const path of ['/admin/mailboxes/bob%40other.example', '/admin/mailboxes/nobody%40other.example']) {
        expectedRefusals.add(`${web}${path}`);
      }
      expectedRefusals.add(`${web}/admin/domains/other.example`);
      const outside = await page.goto(`${web}/admin/mailboxes/bob%40other.example`);
      expect(outside?.status()).toBe(404);
      const missing = await page.goto(`${web}/admin/mailboxes/nobody%40other.example`);
      expect(missing?.status()).toBe(404);
      expect((await page.goto(`${web}/admin/domains/other.example`))?.status()).toBe(404);
    } finally {
      await context.close();
    }
  });

  it('refuses a form posted from another site, or without the token, or with a foreign Origin', async () => {
    const { context, page } = await openPage();
    try {
      await page.goto(`${web}/admin/login`);
      await page.fill('#username', 'desk');
      await page.fill('#password', DESK_PASSWORD);
      await page.click('button[type=submit]');
      await page.waitForURL(`${web}/admin`);

      // A real cross-site form post: the browser keeps the SameSite=Strict cookie to itself.
      expectedRefusals.add(`${web}/admin/domains/desk.example`);
      const refusal = page.waitForResponse((response) => response.url() === `${web}/admin/domains/desk.example`);
      await page.goto(foreignOrigin);
      expect((await refusal).status()).toBe(403);

      // The same session's cookie, but no token; then the token with another Origin.
      const noToken = await context.request.post(`${web}/admin/domains/desk.example`, {
        form: { description: 'no token' },
        headers: { origin: web },
      });
      expect(noToken.status()).toBe(403);
      await page.goto(`${web}/admin/domains/desk.example`);
      const csrf = await page.inputValue('#domain-form input[name=csrf]');
      const foreign = await context.request.post(`${web}/admin/domains/desk.example`, {
        form: { csrf, description: 'foreign origin' },
        headers: { origin: foreignOrigin },
      });
      expect(foreign.status()).toBe(403);
      const description = await postern.deps.db.one<{ description: string }>(
        "SELECT description FROM domain WHERE domain = 'desk.example'",
      );
      expect(description?.description).toBe('test domain desk.example');
      // With the token and our Origin the same change goes through.
      const ours = await context.request.post(`${web}/admin/domains/desk.example`, {
        form: { csrf, description: 'Desk team' },
        headers: { origin: web },
        maxRedirects: 0,
      });
      expect(ours.status()).toBe(303);
    } finally {
      await context.close();
    }
  });

  it('logged no console error on any page', () => {
    expect(consoleErrors).toEqual([]);
  });
});
