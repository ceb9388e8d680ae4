// End to end: an IdP user whose email is another spelling of an existing IdP
// mailbox under mailcow's collation (utf8mb4_general_ci: é = e, ı = i) must not sign in as that
// mailbox, and a missing `email_verified` claim is refused unless the IdP settings say the
// provider verifies every email. Real OpenID provider (panva's oidc-provider), real Chromium,
// postern in-process on real MariaDB and Redis.
import type { Browser, BrowserContext, Page, Response as PwResponse } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { idpSettingsSchema, saveIdpSettings } from '../../src/sources/idp-settings.js';
import { insertMailboxTemplate } from '../../src/storage/templates.js';
import { launchChromium } from '../support/browser.js';
import { startTestPostern, type TestPostern } from '../support/env.js';
import { startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { freePort } from '../support/processes.js';
import { seedDomain, seedMailbox } from '../support/seed.js';

let postern: TestPostern;
let idp: TestOidcProvider;
let browser: Browser;
let web: string;
let context: BrowserContext;
let page: Page;

async function useSettings(extra: Record<string, unknown> = {}) {
  const { db, secretBox } = postern.deps;
  await db.execute('DELETE FROM identity_provider');
  await saveIdpSettings(
    db,
    idpSettingsSchema.parse({
      authsource: 'generic-oidc',
      postern_issuer_url: idp.issuer,
      client_id: idp.clientId,
      client_secret: idp.clientSecret,
      redirect_url: `${web}/login/sso/callback`,
      postern_token_auth_method: 'client_secret_basic',
      mappers: ['premium'],
      templates: ['Premium'],
      ...extra,
    }),
    secretBox,
  );
}

/** Start SSO in the browser and sign in at the IdP; resolves with our callback's response. */
async function ssoLogin(p: Page, username: string): Promise<PwResponse> {
  await p.goto(`${web}/login`);
  await p.click('#sso-login');
  await p.waitForSelector('#idp-login');
  await p.fill('#username', username);
  await p.fill('#password', 'idp-pw');
  const callback = p.waitForResponse((response) => response.url().startsWith(`${web}/login/sso/callback`));
  await p.click('#idp-login');
  const response = await callback;
  await p.waitForLoadState();
  return response;
}

async function exactMailbox(username: string) {
  return postern.deps.db.one<{ username: string; name: string }>(
    'SELECT username, name FROM mailbox WHERE BINARY username = ?',
    [username],
  );
}

async function loginsAs(target: string): Promise<number> {
  const row = await postern.deps.db.one<{ n: number }>(
    "SELECT COUNT(*) AS n FROM postern_audit WHERE action = 'sso.login' AND BINARY target = ?",
    [target],
  );
  return Number(row?.n ?? 0);
}

const hasSession = async () => (await context.cookies(web)).some((cookie) => cookie.name === 'postern_session');

beforeAll(async () => {
  const port = await freePort();
  web = `http://127.0.0.1:${port}`;
  const account = (username: string, email: string, extra: { email_verified?: boolean | null } = {}) => ({
    username,
    password: 'idp-pw',
    email,
    name: `Name of ${username}`,
    mailcow_template: 'premium',
    ...extra,
  });
  [idp, browser] = await Promise.all([
    startOidcProvider({
      redirectUris: [`${web}/login/sso/callback`],
      accounts: [
        account('erin', 'erin@example.org'),
        account('accent', 'érin@example.org'),
        account('dotless', 'erın@example.org'),
        account('domain', 'erin@éxample.org'),
        account('capital', 'ERİN@example.org'),
        account('silent', 'silent@example.org', { email_verified: null }),
        account('unverified', 'unverified@example.org', { email_verified: false }),
      ],
    }),
    launchChromium(),
  ]);
  postern = await startTestPostern('sso_collation', {
    POSTERN_WEB_LISTEN: `127.0.0.1:${port}`,
    POSTERN_PUBLIC_URL: web,
    POSTERN_SECRET_KEY: 'sso-collation-test-secret-key-0123456789',
    POSTERN_BCRYPT_COST: '5',
    POSTERN_IDP_TIMEOUT_MS: '3000',
  });
  const { db } = postern.deps;
  await seedDomain(db, 'example.org');
  await insertMailboxTemplate(db, 'Premium', { quota: 1024 ** 3, imap_access: '1', active: '1' });
  // The existing IdP mailbox the lookalikes aim at.
  await seedMailbox(db, { username: 'erin@example.org', passwordHash: '', authsource: 'generic-oidc' });
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await postern?.destroy();
  await idp?.close();
});

beforeEach(async () => {
  await context?.close();
  context = await browser.newContext();
  page = await context.newPage();
  await useSettings();
});

describe('SSO with an email that the collation takes for an existing mailbox', () => {
  it('signs the real erin@example.org in', async () => {
    const before = await loginsAs('erin@example.org');
    const response = await ssoLogin(page, 'erin');
    expect(response.status()).toBe(303);
    await expect(page.textContent('#mailbox-address')).resolves.toBe('erin@example.org');
    expect(await loginsAs('erin@example.org')).toBe(before + 1);
  });

  it.each([
    ['accent', 'érin@example.org', 409, 'Address already taken'],
    ['dotless', 'erın@example.org', 409, 'Address already taken'],
    ['domain', 'erin@éxample.org', 403, 'Domain not hosted here'],
    ['capital', 'erİn@example.org', 403, 'Unusable email address'],
  ])('does not sign %s (%s) in as erin@example.org', async (user, email, status, title) => {
    const before = await loginsAs('erin@example.org');
    const response = await ssoLogin(page, user);
    expect(response.status()).toBe(status);
    await expect(page.textContent('h1')).resolves.toBe(title);
    expect(await hasSession()).toBe(false);
    expect(await loginsAs('erin@example.org')).toBe(before);
    // Nor a new mailbox under that spelling, nor Unicode lower-casing's `eri` + U+0307 + `n`.
    expect(await exactMailbox(email)).toBeUndefined();
    expect(await exactMailbox('eri\u0307n@example.org')).toBeUndefined();
    // erin's mailbox took nothing from the intruder's identity (the template step sets the name).
    expect((await exactMailbox('erin@example.org'))?.name).not.toBe(`Name of ${user}`);
  });
});

describe('email_verified', () => {
  it('refuses an identity without the claim while the provider is not declared to verify every email', async () => {
    const response = await ssoLogin(page, 'silent');
    expect(response.status()).toBe(403);
    await expect(page.textContent('h1')).resolves.toBe('Email address not verified');
    await expect(page.textContent('body')).resolves.toContain('did not say whether it verified');
    expect(await hasSession()).toBe(false);
    expect(await exactMailbox('silent@example.org')).toBeUndefined();
  });

  it('accepts it when the settings say the provider verifies every email', async () => {
    await useSettings({ postern_emails_always_verified: true });
    const response = await ssoLogin(page, 'silent');
    expect(response.status()).toBe(303);
    await expect(page.textContent('#mailbox-address')).resolves.toBe('silent@example.org');
  });

  it('refuses email_verified: false even then', async () => {
    await useSettings({ postern_emails_always_verified: true });
    const response = await ssoLogin(page, 'unverified');
    expect(response.status()).toBe(403);
    await expect(page.textContent('h1')).resolves.toBe('Email address not verified');
    expect(await exactMailbox('unverified@example.org')).toBeUndefined();
  });
});
