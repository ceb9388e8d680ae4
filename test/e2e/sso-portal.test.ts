// SSO and the user portal end to end: a real OpenID provider (panva's oidc-provider), postern
// in-process on real MariaDB and Redis, and real headless Chromium filling in the forms.
import { createHash } from 'node:crypto';
import type { Browser, BrowserContext, Page, Response as PwResponse } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { keys } from '../../src/cache/keys.js';
import { ssoTransactionKey } from '../../src/login/sso-login.js';
import { idpSettingsSchema, saveIdpSettings } from '../../src/sources/idp-settings.js';
import { testIdpConnection } from '../../src/sources/test-connection.js';
import { insertMailboxTemplate } from '../../src/storage/templates.js';
import { launchChromium } from '../support/browser.js';
import { type RunningDovecot, startDovecot } from '../support/dovecot.js';
import { startTestPostern, type TestPostern } from '../support/env.js';
import { imapLogin, imapSelectInbox, submissionAuthPlain } from '../support/mail-clients.js';
import { startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { freePort } from '../support/processes.js';
import { seedDomain, seedMailbox } from '../support/seed.js';
import { selfSignedCertificate } from '../support/tls.js';

const PREMIUM = {
  quota: 2 * 1024 ** 3,
  imap_access: '1',
  pop3_access: '0',
  smtp_access: '1',
  sieve_access: '1',
  sogo_access: '1',
  active: '1',
};
const BASIC = {
  quota: 512 * 1024 ** 2,
  imap_access: '0',
  pop3_access: '1',
  smtp_access: '1',
  sieve_access: '0',
  sogo_access: '1',
  active: '1',
};

let postern: TestPostern;
let dovecot: RunningDovecot;
let idp: TestOidcProvider;
let browser: Browser;
let web: string;
let context: BrowserContext;
let page: Page;

async function useSettings(
  kind: 'discovery' | 'keycloak' | 'manual' | 'unreachable',
  extra: Record<string, unknown> = {},
) {
  const common = {
    client_id: idp.clientId,
    client_secret: idp.clientSecret,
    redirect_url: `${web}/login/sso/callback`,
    mappers: ['premium', 'basic'],
    templates: ['Premium', 'Basic'],
    ...extra,
  };
  const settings =
    kind === 'keycloak'
      ? { authsource: 'keycloak', server_url: idp.baseUrl, realm: idp.realm, version: '19.0.3', ...common }
      : kind === 'manual'
        ? {
            authsource: 'generic-oidc',
            authorize_url: idp.endpoints.authorize,
            token_url: idp.endpoints.token,
            userinfo_url: idp.endpoints.userinfo,
            ...common,
          }
        : {
            authsource: 'generic-oidc',
            postern_issuer_url:
              kind === 'unreachable' ? `http://127.0.0.1:${await freePort()}/realms/gone` : idp.issuer,
            ...common,
          };
  const { db, secretBox } = postern.deps;
  // Keys of the other provider type stay behind (as in mailcow); clear them so each test is exact.
  await db.execute('DELETE FROM identity_provider');
  await saveIdpSettings(db, idpSettingsSchema.parse(settings), secretBox);
}

async function mailbox(username: string) {
  return postern.deps.db.one<{ authsource: string; quota: number; active: number; name: string; attributes: string }>(
    'SELECT authsource, quota, active, name, attributes FROM mailbox WHERE username = ?',
    [username],
  );
}

function attributesOf(row: { attributes: unknown } | undefined): Record<string, string> {
  const value = row?.attributes;
  return typeof value === 'string' ? JSON.parse(value) : (value as Record<string, string>);
}

/** mailcow's attribute_hash: sha1 of the template's stored attributes text (computed by MariaDB here). */
async function templateHash(name: string): Promise<string> {
  const row = await postern.deps.db.one<{ hash: string }>(
    'SELECT SHA1(attributes) AS hash FROM templates WHERE template = ?',
    [name],
  );
  return String(row?.hash);
}

/** The state our /login/sso put into the authorization request. */
function captureState(p: Page): Promise<string> {
  return p
    .waitForRequest((request) => request.url().startsWith(idp.endpoints.authorize))
    .then((request) => new URL(request.url()).searchParams.get('state') ?? '');
}

/** Start SSO in the browser and sign in at the IdP; resolves with our callback's response. */
async function ssoLogin(
  p: Page,
  username: string,
  password = 'idp-pw',
  beforeSubmit?: () => Promise<void>,
  startAt = '/login',
): Promise<PwResponse> {
  await p.goto(`${web}${startAt}`);
  await p.click('#sso-login');
  await p.waitForSelector('#idp-login');
  await p.fill('#username', username);
  await p.fill('#password', password);
  await beforeSubmit?.();
  const callback = p.waitForResponse((response) => response.url().startsWith(`${web}/login/sso/callback`));
  await p.click('#idp-login');
  const response = await callback;
  await p.waitForLoadState();
  return response;
}

async function auditActions(actor: string): Promise<string[]> {
  const rows = await postern.deps.db.many<{ action: string }>(
    'SELECT action FROM postern_audit WHERE actor = ? ORDER BY id',
    [actor],
  );
  return rows.map((row) => row.action);
}

beforeAll(async () => {
  const port = await freePort();
  web = `http://127.0.0.1:${port}`;
  [idp, browser] = await Promise.all([
    startOidcProvider({
      redirectUris: [`${web}/login/sso/callback`],
      accounts: [
        {
          username: 'alice',
          password: 'idp-pw',
          email: 'Alice@Example.org',
          name: 'Alice Liddell',
          mailcow_template: 'premium',
        },
        { username: 'bob', password: 'idp-pw', email: 'bob@example.org', name: 'Bob', mailcow_template: 'premium' },
        {
          username: 'carol',
          password: 'idp-pw',
          email: 'carol@unknown.test',
          name: 'Carol',
          mailcow_template: 'premium',
        },
        { username: 'dave', password: 'idp-pw', email: 'dave@example.org', name: 'Dave', mailcow_template: 'basic' },
        { username: 'erin', password: 'idp-pw', email: 'erin@example.org', name: 'Erin', mailcow_template: 'premium' },
      ],
    }),
    launchChromium(),
  ]);
  postern = await startTestPostern('sso', {
    POSTERN_WEB_LISTEN: `127.0.0.1:${port}`,
    POSTERN_PUBLIC_URL: web,
    POSTERN_SECRET_KEY: 'sso-portal-test-secret-key-0123456789',
    POSTERN_BCRYPT_COST: '5',
    POSTERN_IDP_TIMEOUT_MS: '3000',
  });
  const { db, hashPool } = postern.deps;
  await seedDomain(db, 'example.org');
  await insertMailboxTemplate(db, 'Premium', PREMIUM);
  await insertMailboxTemplate(db, 'Basic', BASIC);
  await seedMailbox(db, {
    username: 'bob@example.org',
    passwordHash: await hashPool.hash('bob local pw', 'BLF-CRYPT'),
  });
  // A real Dovecot asking this postern, for the mail-client half of the story.
  dovecot = await startDovecot({ authUrl: `${postern.internalUrl}/`, submission: true });
});

afterAll(async () => {
  await dovecot?.stop();
  await context?.close();
  await browser?.close();
  await postern?.destroy();
  await idp?.close();
});

beforeEach(async () => {
  await context?.close();
  context = await browser.newContext();
  page = await context.newPage();
  await useSettings('discovery');
});

describe('SSO login through a real OpenID provider', () => {
  it('provisions the mailbox from the mapped template on first login and opens the portal', async () => {
    const response = await ssoLogin(page, 'alice');
    expect(response.status()).toBe(303);
    expect(new URL(page.url()).pathname).toBe('/');
    await expect(page.textContent('#mailbox-address')).resolves.toBe('alice@example.org');
    await expect(page.getAttribute('#open-webmail', 'href')).resolves.toBe('/sogo-auth?login=alice%40example.org');

    const row = await mailbox('alice@example.org');
    expect(row).toMatchObject({ authsource: 'generic-oidc', quota: PREMIUM.quota, active: 1, name: 'Alice Liddell' });
    expect(attributesOf(row)).toMatchObject({
      imap_access: '1',
      pop3_access: '0',
      attribute_hash: await templateHash('Premium'),
    });
    expect(await auditActions('alice@example.org')).toEqual(['sso.provision', 'sso.login']);

    const cookie = (await context.cookies(web)).find((c) => c.name === 'postern_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/', secure: false });
    expect(cookie?.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Only a hash of the id is a Redis key.
    const digest = createHash('sha256')
      .update(cookie?.value ?? '')
      .digest('hex');
    const prefix = { prefix: postern.deps.config.redisPrefix };
    await expect(postern.deps.redis.exists(keys.webSession(prefix, digest))).resolves.toBe(1);
    await expect(postern.deps.redis.exists(keys.webSession(prefix, cookie?.value ?? ''))).resolves.toBe(0);
  });

  it('creates an app password in the portal, shows it once, and postern’s passdb accepts it', async () => {
    await ssoLogin(page, 'alice');
    await page.fill('#app-password-name', 'Phone');
    await page.uncheck('input[name=protocols][value=smtp]');
    await page.check('input[name=protocols][value=imap]');
    await page.click('#create-app-password');
    const secret = (await page.textContent('#app-password-secret'))?.trim() ?? '';
    expect(secret).toMatch(/^[a-km-zA-HJ-NP-Z2-9]{6}(-[a-km-zA-HJ-NP-Z2-9]{6}){3}$/);

    const passdb = (service: string) =>
      postern.passdb({ username: 'alice@example.org', password: secret, real_rip: '127.0.0.1', service });
    await expect(passdb('imap')).resolves.toMatchObject({ status: 200, body: { success: true } });
    await expect(passdb('smtp')).resolves.toMatchObject({ status: 401 });

    // A mail client reads mail with it through real Dovecot, and cannot send with it.
    const imap = await imapSelectInbox(dovecot.imapPort, 'alice@example.org', secret);
    expect(imap.login.line).toMatch(/^a1 OK .*Logged in/);
    expect(imap.select?.ok).toBe(true);
    const smtp = await submissionAuthPlain(dovecot.submissionPort as number, 'alice@example.org', secret);
    expect(smtp.code).toBe(535);

    const stored = await postern.deps.db.one<{
      password: string;
      domain: string;
      imap_access: number;
      smtp_access: number;
    }>(
      "SELECT password, domain, imap_access, smtp_access FROM app_passwd WHERE mailbox = 'alice@example.org' AND name = 'Phone'",
    );
    expect(stored).toMatchObject({ domain: 'example.org', imap_access: 1, smtp_access: 0 });
    expect(stored?.password).toMatch(/^\{BLF-CRYPT\}\$2[aby]\$/);

    // Shown once: the portal lists it by name, never the secret.
    await page.goto(`${web}/`);
    await expect(page.textContent('#app-passwords')).resolves.toContain('Phone');
    expect(await page.content()).not.toContain(secret);

    await page.click('button[aria-label="Revoke Phone"]');
    await expect(page.locator('#no-app-passwords').count()).resolves.toBe(1);
    await expect(passdb('imap')).resolves.toMatchObject({ status: 401 });
    expect((await imapLogin(dovecot.imapPort, 'alice@example.org', secret)).line).toMatch(/AUTHENTICATIONFAILED/);
    expect(await auditActions('alice@example.org')).toEqual(
      expect.arrayContaining(['app_password.create', 'app_password.revoke']),
    );
  });

  it('re-maps the template at the next login when the IdP attribute changes', async () => {
    idp.setClaims('dave', { mailcow_template: 'basic' });
    await ssoLogin(page, 'dave');
    expect(attributesOf(await mailbox('dave@example.org'))).toMatchObject({
      imap_access: '0',
      attribute_hash: await templateHash('Basic'),
    });

    idp.setClaims('dave', { mailcow_template: 'premium' });
    const next = await browser.newContext();
    try {
      const response = await ssoLogin(await next.newPage(), 'dave');
      expect(response.status()).toBe(303);
    } finally {
      await next.close();
    }
    const row = await mailbox('dave@example.org');
    expect(row?.quota).toBe(PREMIUM.quota);
    expect(attributesOf(row)).toMatchObject({
      imap_access: '1',
      pop3_access: '0',
      attribute_hash: await templateHash('Premium'),
    });
    expect(await auditActions('dave@example.org')).toContain('sso.template');
  });

  it('refuses to take over a mailbox that signs in with its local password', async () => {
    const response = await ssoLogin(page, 'bob');
    expect(response.status()).toBe(409);
    await expect(page.textContent('h1')).resolves.toBe('This mailbox uses its password');
    await expect(page.textContent('body')).resolves.toContain('Ask an admin to switch it');
    const row = await mailbox('bob@example.org');
    expect(row?.authsource).toBe('mailcow');
    expect(await auditActions('bob@example.org')).toEqual(['sso.refused']);
    expect((await context.cookies(web)).some((c) => c.name === 'postern_session')).toBe(false);
  });

  it('shows a clear page when the address’s domain is not hosted here', async () => {
    const response = await ssoLogin(page, 'carol');
    expect(response.status()).toBe(403);
    await expect(page.textContent('h1')).resolves.toBe('Domain not hosted here');
    await expect(page.textContent('body')).resolves.toContain('unknown.test is not hosted on this server');
    expect(await mailbox('carol@unknown.test')).toBeUndefined();
  });

  it('returns to the page that sent the browser to sign in (next= through the IdP round trip)', async () => {
    await page.goto(`${web}/login?next=${encodeURIComponent('/?from=webmail')}`);
    await expect(page.getAttribute('#sso-login', 'href')).resolves.toBe('/login/sso?next=%2F%3Ffrom%3Dwebmail');
    const response = await ssoLogin(page, 'alice', 'idp-pw', undefined, '/login?next=%2F%3Ffrom%3Dwebmail');
    expect(response.status()).toBe(303);
    expect(response.headers().location).toBe('/?from=webmail');
    await expect(page.textContent('#mailbox-address')).resolves.toBe('alice@example.org');
    // Used once: the next-path cookie is gone with the pre-login one.
    const names = (await context.cookies(`${web}/login/sso`)).map((cookie) => cookie.name);
    expect(names).not.toContain('postern_sso_next');
  });

  it('refuses a callback whose state was tampered with', async () => {
    const state = captureState(page);
    await page.goto(`${web}/login/sso`);
    await page.waitForSelector('#idp-login');
    const real = await state;
    const forged = `${real.slice(0, -2)}xx`;
    const response = await page.goto(
      `${web}/login/sso/callback?code=forged&state=${forged}&iss=${encodeURIComponent(idp.issuer)}`,
    );
    expect(response?.status()).toBe(403);
    await expect(page.textContent('h1')).resolves.toBe('Sign-in link expired or already used');
  });

  it('refuses a replayed callback (same code and state twice)', async () => {
    let callbackUrl = '';
    page.on('request', (request) => {
      if (request.url().startsWith(`${web}/login/sso/callback`)) callbackUrl = request.url();
    });
    const first = await ssoLogin(page, 'erin');
    expect(first.status()).toBe(303);
    expect(callbackUrl).toContain('code=');

    const replay = await page.goto(callbackUrl);
    expect(replay?.status()).toBe(403);
    await expect(page.textContent('h1')).resolves.toBe('Sign-in link expired or already used');
  });

  it('refuses a callback whose ID token nonce does not match the stored one', async () => {
    const state = captureState(page);
    const response = await ssoLogin(page, 'erin', 'idp-pw', async () => {
      // Rewrite the pending transaction's nonce: the IdP's ID token now carries a different one.
      const key = ssoTransactionKey(postern.deps.config.redisPrefix, await state);
      const stored = JSON.parse((await postern.deps.redis.get(key)) ?? '{}');
      await postern.deps.redis.set(key, JSON.stringify({ ...stored, nonce: 'not-the-nonce-we-sent' }), 'EX', 60);
    });
    expect(response.status()).toBe(403);
    await expect(page.textContent('h1')).resolves.toBe('Sign-in response rejected');
    expect((await context.cookies(web)).some((c) => c.name === 'postern_session')).toBe(false);
  });

  it('logs out: the session is destroyed and the old cookie no longer works', async () => {
    await ssoLogin(page, 'erin');
    const cookie = (await context.cookies(web)).find((c) => c.name === 'postern_session');
    expect(cookie).toBeDefined();
    await page.click('#logout');
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.goto(`${web}/`);
    expect(new URL(page.url()).pathname).toBe('/login');
    const stale = await fetch(`${web}/`, {
      headers: { cookie: `postern_session=${cookie?.value}` },
      redirect: 'manual',
    });
    expect(stale.status).toBe(303);
    expect(stale.headers.get('location')).toBe('/login');
  });

  it('works with Keycloak-shaped settings (issuer from server URL and realm, openid always requested)', async () => {
    await useSettings('keycloak');
    const scopes = page
      .waitForRequest((request) => request.url().startsWith(idp.endpoints.authorize))
      .then((request) => new URL(request.url()).searchParams.get('scope'));
    idp.setAccount({
      username: 'frank',
      password: 'idp-pw',
      email: 'frank@example.org',
      name: 'Frank',
      mailcow_template: 'basic',
    });
    const response = await ssoLogin(page, 'frank');
    expect(response.status()).toBe(303);
    expect((await scopes)?.split(' ').sort()).toEqual(['email', 'openid', 'profile']);
    const row = await mailbox('frank@example.org');
    expect(row?.authsource).toBe('keycloak');
    expect(attributesOf(row).attribute_hash).toBe(await templateHash('Basic'));
  });

  it('works with mailcow’s three-URL generic-OIDC setup (identity from userinfo)', async () => {
    await useSettings('manual');
    idp.setAccount({
      username: 'grace',
      password: 'idp-pw',
      email: 'grace@example.org',
      name: 'Grace',
      mailcow_template: 'premium',
    });
    const response = await ssoLogin(page, 'grace');
    expect(response.status()).toBe(303);
    await expect(page.textContent('#mailbox-address')).resolves.toBe('grace@example.org');
    expect((await mailbox('grace@example.org'))?.authsource).toBe('generic-oidc');
  });

  it('shows a 502 page, not a crash, when the identity provider is unreachable', async () => {
    await useSettings('unreachable');
    const response = await page.goto(`${web}/login/sso`);
    expect(response?.status()).toBe(502);
    await expect(page.textContent('h1')).resolves.toBe('Identity provider unavailable');
  });
});

describe('password sign-in and CSRF', () => {
  it('signs a local mailbox in with its password; IdP mailboxes and wrong passwords get the same refusal', async () => {
    const submit = async (username: string, password: string) => {
      await page.goto(`${web}/login`);
      await page.fill('#username', username);
      await page.fill('#password', password);
      const response = page.waitForResponse((r) => r.url() === `${web}/login` && r.request().method() === 'POST');
      await page.click('#password-login');
      const status = (await response).status();
      await page.waitForLoadState();
      return status;
    };
    await expect(submit('bob@example.org', 'wrong')).resolves.toBe(401);
    const wrongText = await page.textContent('[role=alert]');
    await expect(submit('alice@example.org', 'anything')).resolves.toBe(401);
    expect(await page.textContent('[role=alert]')).toBe(wrongText);

    await expect(submit('Bob@Example.org', 'bob local pw')).resolves.toBe(303);
    await expect(page.textContent('#mailbox-address')).resolves.toBe('bob@example.org');
    const cookie = (await context.cookies(web)).find((c) => c.name === 'postern_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax' });
  });

  it('continues to a local next= after sign-in and ignores one that leaves the site', async () => {
    const signIn = (next: string) =>
      fetch(`${web}/login`, {
        method: 'POST',
        headers: { origin: web, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: 'bob@example.org', password: 'bob local pw', next }),
        redirect: 'manual',
      });
    const back = '/sogo-auth?login=bob%40example.org';
    const local = await signIn(back);
    expect(local.status).toBe(303);
    expect(local.headers.get('location')).toBe(back);
    for (const foreign of ['//evil.example/', 'https://evil.example/', '/\\evil.example']) {
      const response = await signIn(foreign);
      expect(response.status, foreign).toBe(303);
      expect(response.headers.get('location'), foreign).toBe('/');
    }

    // The page carries next= into both ways of signing in; a signed-in visit goes straight on.
    await page.goto(`${web}/login?next=${encodeURIComponent(back)}`);
    await expect(page.getAttribute('input[name=next]', 'value')).resolves.toBe(back);
    await page.fill('#username', 'bob@example.org');
    await page.fill('#password', 'bob local pw');
    const posted = page.waitForResponse((r) => r.url() === `${web}/login` && r.request().method() === 'POST');
    await page.click('#password-login');
    expect((await posted).headers().location).toBe(back);
    const again = await context.request.get(`${web}/login?next=%2F%3Fagain%3D1`, { maxRedirects: 0 });
    expect(again.status()).toBe(303);
    expect(again.headers().location).toBe('/?again=1');
  });

  it('refuses cross-site POSTs to the sign-in, logout and app-password forms', async () => {
    for (const path of ['/login', '/logout', '/app-passwords', '/app-passwords/1/revoke']) {
      const response = await fetch(`${web}${path}`, {
        method: 'POST',
        headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
        body: 'username=bob%40example.org&password=bob+local+pw&name=x&protocols=imap',
        redirect: 'manual',
      });
      expect(response.status, path).toBe(403);
    }
  });
});

describe('an identity provider with a self-signed certificate (ignore_ssl_error)', () => {
  let labIdp: TestOidcProvider;

  beforeAll(async () => {
    labIdp = await startOidcProvider({
      redirectUris: [`${web}/login/sso/callback`],
      accounts: [{ username: 'erin', password: 'lab-pw', email: 'erin@example.org', mailcow_template: 'premium' }],
      tls: selfSignedCertificate(),
    });
  });

  afterAll(async () => {
    await labIdp?.close();
  });

  async function useLabIdp(ignoreSslError: boolean) {
    const { db, secretBox } = postern.deps;
    await db.execute('DELETE FROM identity_provider');
    const settings = idpSettingsSchema.parse({
      authsource: 'generic-oidc',
      postern_issuer_url: labIdp.issuer,
      client_id: labIdp.clientId,
      client_secret: labIdp.clientSecret,
      redirect_url: `${web}/login/sso/callback`,
      mappers: ['premium'],
      templates: ['Premium'],
      ignore_ssl_error: ignoreSslError,
    });
    await saveIdpSettings(db, settings, secretBox);
    return settings;
  }

  it('is refused while certificates are verified, with a clear page and test-connection step', async () => {
    const settings = await useLabIdp(false);
    const response = await page.goto(`${web}/login/sso`);
    expect(response?.status()).toBe(502);
    const report = await testIdpConnection(settings, { timeoutMs: 3000 });
    expect(report.steps[0]).toMatchObject({ step: 'discovery', ok: false });
    expect(report.steps[0]?.detail).toMatch(/certificate/i);
  });

  it('signs in through it when ignore_ssl_error is set', async () => {
    const settings = await useLabIdp(true);
    const report = await testIdpConnection(settings, { timeoutMs: 3000 });
    expect(report.steps[0]).toMatchObject({ step: 'discovery', ok: true });
    // The browser must accept the lab certificate too, as its users would.
    const labContext = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      const labPage = await labContext.newPage();
      const callback = await ssoLogin(labPage, 'erin', 'lab-pw');
      expect(callback.status()).toBe(303);
      await expect(labPage.textContent('#mailbox-address')).resolves.toBe('erin@example.org');
    } finally {
      await labContext.close();
    }
  });
});
