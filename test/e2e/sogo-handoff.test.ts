// The SOGo handoff end to end through real Debian nginx running deploy/nginx/postern-sogo.conf:
// portal sign-in → /sogo-auth → nginx auth_request → postern verify → a stand-in SOGo that records
// the headers it receives, and the IMAP login SOGo would then make through real Dovecot.
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../src/cache/keys.js';
import { hashPassword } from '../../src/passwords/hash-password.js';
import { launchChromium } from '../support/browser.js';
import { type RunningDovecot, startDovecot } from '../support/dovecot.js';
import { MYSQL_ROOT_URL, startTestPostern, type TestPostern } from '../support/env.js';
import { imapLogin, imapSelectInbox } from '../support/mail-clients.js';
import { type RunningNginx, startNginx } from '../support/nginx.js';
import { freePort } from '../support/processes.js';
import { seedAppPassword, seedDomain, seedMailbox } from '../support/seed.js';
import {
  type RunningSogo,
  startSogo,
  startWebmailUpstream,
  type WebmailUpstream,
} from '../support/webmail-upstream.js';

const DOMAIN = 'handoff.example';
const ME = `me@${DOMAIN}`;
const OTHER = `other@${DOMAIN}`;
const NO_SOGO = `nosogo@${DOMAIN}`;
const PASSWORD = 'correct horse battery staple';
const TOKEN = randomBytes(24).toString('hex');
const API_KEY = 'handoff-test-api-key-0123456789abcdefghij';
const DAV_APP_PASSWORD = 'calendar sync app password';
const EAS_APP_PASSWORD = 'activesync app password';
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;

let postern: TestPostern;
let nginx: RunningNginx;
let upstream: WebmailUpstream;
let dovecot: RunningDovecot;
let browser: Browser | undefined;
let sogo: RunningSogo | undefined;

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');
const ks = () => ({ prefix: `${postern.name}:` });

/** The first value `read` returns that satisfies `isDone`, or the last one after ~2 s. */
async function eventually<T>(read: () => Promise<T>, isDone: (value: T) => boolean): Promise<T> {
  let value = await read();
  for (let i = 0; i < 40 && !isDone(value); i++) {
    await new Promise((r) => setTimeout(r, 50));
    value = await read();
  }
  return value;
}

/** IMAP APPEND of one message (LOGIN with the mailbox password), so SOGo has something to show. */
async function appendMessage(port: number, user: string, password: string, message: string): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setEncoding('utf8');
  let buffer = '';
  const waitFor = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`IMAP: no ${pattern} in ${buffer}`)), 5000);
      const check = () => {
        if (pattern.test(buffer)) {
          clearTimeout(timer);
          socket.off('data', onData);
          resolve();
        }
      };
      const onData = (chunk: string) => {
        buffer += chunk;
        check();
      };
      socket.on('data', onData);
      check();
    });
  try {
    await waitFor(/^\* OK/m);
    socket.write(`a1 LOGIN "${user}" "${password}"\r\n`);
    await waitFor(/^a1 OK/m);
    const body = Buffer.from(message.replace(/\n/g, '\r\n'), 'utf8');
    socket.write(`a2 APPEND INBOX {${body.length}}\r\n`);
    await waitFor(/^\+/m);
    socket.write(body);
    socket.write('\r\n');
    await waitFor(/^a2 OK/m);
    socket.write('a3 LOGOUT\r\n');
  } finally {
    socket.destroy();
  }
}

/** A cookie jar that honours Path and Max-Age=0, like a browser on one host. */
class Client {
  readonly cookies = new Map<string, { value: string; path: string }>();

  cookieHeader(path: string): string {
    return [...this.cookies.entries()]
      .filter(
        ([, c]) => path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/',
      )
      .map(([name, c]) => `${name}=${c.value}`)
      .join('; ');
  }

  async request(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
    const cookie = this.cookieHeader(path.split('?')[0] ?? path);
    const response = await fetch(`${nginx.url}${path}`, {
      method: init.method ?? 'GET',
      redirect: 'manual',
      headers: { ...(cookie ? { cookie } : {}), ...init.headers },
      ...(init.body !== undefined ? { body: init.body } : {}),
    });
    const setCookies = response.headers.getSetCookie();
    for (const line of setCookies) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
      const name = pair.slice(0, pair.indexOf('='));
      const value = pair.slice(pair.indexOf('=') + 1);
      const path = attributes.find((a) => /^path=/i.test(a))?.slice(5) ?? '/';
      const maxAge = attributes.find((a) => /^max-age=/i.test(a));
      if ((maxAge && Number(maxAge.slice(8)) <= 0) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, { value, path });
    }
    return {
      status: response.status,
      location: response.headers.get('location'),
      setCookies,
      text: await response.text(),
    };
  }

  async signIn(username: string, password = PASSWORD) {
    const response = await this.request('/login', {
      method: 'POST',
      headers: { origin: nginx.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username, password }).toString(),
    });
    expect(response.status, response.text).toBe(303);
    expect(this.cookies.has('postern_session')).toBe(true);
  }

  async signOut() {
    const portal = await this.request('/');
    const csrf = /name="csrf" value="([^"]+)"/.exec(portal.text)?.[1];
    expect(csrf).toBeTruthy();
    const response = await this.request('/logout', {
      method: 'POST',
      headers: { origin: nginx.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: csrf as string }).toString(),
    });
    expect(response.status).toBe(303);
  }
}

/** Signed in as `user`, handoff redeemed: the client holds a webmail session; returns SOGo's secret. */
async function openWebmail(user = ME) {
  const client = new Client();
  await client.signIn(user);
  const handoff = await client.request(`/sogo-auth?login=${encodeURIComponent(user)}`);
  expect(handoff.status).toBe(303);
  const first = await client.request('/SOGo/so/');
  expect(first.status, nginx.logs()).toBe(200);
  const auth = upstream.headerValues('authorization');
  expect(auth).toHaveLength(1);
  const decoded = Buffer.from((auth[0] as string).replace(/^Basic /, ''), 'base64').toString('utf8');
  const secret = decoded.slice(decoded.indexOf(':') + 1);
  return { client, secret, decoded };
}

/** Signs ME in at the portal through nginx, in a fresh context of the real browser. */
async function signInInBrowser(chromium: Browser) {
  const context = await chromium.newContext();
  const page = await context.newPage();
  await page.goto(`${nginx.url}/login`);
  await page.fill('#username', ME);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForURL(`${nginx.url}/`), page.click('button[type=submit]')]);
  return { context, page };
}

async function auditRows(action: string) {
  return postern.deps.db.many<{ actor: string; target: string | null; detail: unknown; ip: string | null }>(
    'SELECT actor, target, detail, ip FROM postern_audit WHERE action = ? ORDER BY id',
    [action],
  );
}

async function lastRefusal(action = 'sogo.webmail.refused') {
  const rows = await auditRows(action);
  const row = rows[rows.length - 1];
  const detail = typeof row?.detail === 'string' ? JSON.parse(row.detail) : row?.detail;
  return { ...row, detail: detail as { reason?: string } | undefined, count: rows.length };
}

beforeAll(async () => {
  const port = await freePort();
  upstream = await startWebmailUpstream();
  postern = await startTestPostern('sogo', {
    POSTERN_SOGO_NETWORKS: '127.0.0.1/32',
    POSTERN_PUBLIC_URL: `http://127.0.0.1:${port}`,
    POSTERN_INTERNAL_TOKEN: TOKEN,
    POSTERN_WEBMAIL_URL: '/SOGo/so/',
    POSTERN_BAN_EXEMPT_NETWORKS: '127.0.0.0/8',
    POSTERN_API_KEY: API_KEY,
    POSTERN_ADMIN_WEBMAIL: 'on',
  });
  const db = postern.deps.db;
  await seedDomain(db, DOMAIN);
  const passwordHash = await hashPassword(PASSWORD, 'SSHA256');
  await seedMailbox(db, { username: ME, passwordHash });
  await seedMailbox(db, { username: OTHER, passwordHash });
  await seedMailbox(db, { username: NO_SOGO, passwordHash, attributes: { sogo_access: '0' } });
  await seedAppPassword(db, {
    mailbox: ME,
    passwordHash: await hashPassword(DAV_APP_PASSWORD, 'SSHA256'),
    protocols: ['dav_access'],
  });
  await seedAppPassword(db, {
    mailbox: ME,
    passwordHash: await hashPassword(EAS_APP_PASSWORD, 'SSHA256'),
    protocols: ['eas_access', 'imap_access'],
  });
  nginx = await startNginx({
    port,
    webUrl: postern.webUrl,
    internalUrl: postern.internalUrl,
    webmailUrl: upstream.url,
    internalToken: TOKEN,
  });
  dovecot = await startDovecot({ authUrl: `${postern.internalUrl}/`, internalToken: TOKEN });
});

afterAll(async () => {
  await browser?.close();
  await sogo?.stop();
  await dovecot?.stop();
  await nginx?.stop();
  await upstream?.close();
  await postern?.destroy();
});

describe('SOGo handoff through nginx', () => {
  it('hands a signed-in user to SOGo with their identity and an IMAP secret Dovecot accepts', async () => {
    upstream.clear();
    const client = new Client();
    await client.signIn(ME);

    const handoff = await client.request(`/sogo-auth?login=${encodeURIComponent(ME)}`);
    expect(handoff.status).toBe(303);
    expect(handoff.location).toBe('/SOGo/so/');
    const handoffCookie = handoff.setCookies.find((line) => line.startsWith('postern_sogo_handoff='));
    expect(handoffCookie).toMatch(
      /^postern_sogo_handoff=[A-Za-z0-9_-]{43}; Max-Age=60; Path=\/SOGo; HttpOnly; SameSite=Lax$/,
    );
    const secret = client.cookies.get('postern_sogo_handoff')?.value as string;

    // Only a digest of the handoff is stored, with a TTL of at most 60 s; the secret is nowhere in Redis.
    const redis = postern.deps.redis;
    const stored = await redis.get(keys.sogoHandoff(ks(), sha256(secret)));
    expect(JSON.parse(stored as string)).toMatchObject({ username: ME });
    const ttl = await redis.pttl(keys.sogoHandoff(ks(), sha256(secret)));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
    const allKeys = await redis.keys(`${postern.name}:*`);
    for (const key of allKeys) {
      expect(key).not.toContain(secret);
      if ((await redis.type(key)) === 'string') expect(await redis.get(key)).not.toContain(secret);
    }

    const page = await client.request('/SOGo/so/');
    expect(page.status, nginx.logs()).toBe(200);
    expect(page.text).toContain(`<h1 id="sogo-user">${ME}</h1>`);
    expect(upstream.headerValues('x-webobjects-remote-user')).toEqual([ME]);
    expect(upstream.headerValues('x-webobjects-auth-type')).toEqual(['Basic']);
    const [authorization] = upstream.headerValues('authorization');
    const decoded = Buffer.from((authorization as string).replace(/^Basic /, ''), 'base64').toString('utf8');
    expect(decoded).toMatch(new RegExp(`^${ME}:[A-Za-z0-9_-]{43}$`));
    const imapSecret = decoded.slice(ME.length + 1);
    expect(imapSecret).not.toBe(secret);
    // nginx passed postern's cookies (new webmail session, spent handoff) and SOGo's own.
    expect(page.setCookies).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^postern_webmail=[A-Za-z0-9_-]{43}; Max-Age=\d+; Path=\/SOGo; HttpOnly; SameSite=Lax$/),
        'postern_sogo_handoff=; Max-Age=0; Path=/SOGo; HttpOnly; SameSite=Lax',
        expect.stringMatching(/^0xHIGHFLYxSOGo=/),
      ]),
    );
    expect(client.cookies.has('postern_sogo_handoff')).toBe(false);

    // Later requests (SOGo's XHR POSTs included) ride on the webmail session with the same secret.
    const post = await client.request('/SOGo/so/me/Mail/0/folderINBOX/view', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"sortingAttributes":{}}',
    });
    expect(post.status).toBe(200);
    const last = upstream.last();
    expect(last?.method).toBe('POST');
    expect(last?.body).toBe('{"sortingAttributes":{}}');
    expect(upstream.headerValues('authorization')).toEqual([authorization]);
    expect(upstream.headerValues('x-webobjects-remote-user')).toEqual([ME]);

    // What SOGo does next: log into IMAP from its own address with that Authorization.
    const imap = await imapSelectInbox(dovecot.imapPort, ME, imapSecret);
    expect(imap.login.ok, `${imap.login.line}\n${dovecot.logs()}`).toBe(true);
    expect(imap.select?.ok).toBe(true);

    // sasl_log is written after the passdb answered (a record, not a gate): poll briefly.
    const sasl = await eventually(
      () =>
        postern.deps.db.many<{ service: string; real_rip: string }>(
          'SELECT service, real_rip FROM sasl_log WHERE username = ? ORDER BY service',
          [ME],
        ),
      (rows) => rows.some((row) => row.service === 'SOGO'),
    );
    expect(sasl.map((row) => row.service)).toEqual(expect.arrayContaining(['SSO', 'SOGO']));
    expect(sasl.find((row) => row.service === 'SOGO')?.real_rip).toBe('127.0.0.1');
    expect((await auditRows('sogo.handoff')).some((row) => row.actor === ME)).toBe(true);
    expect((await auditRows('sogo.webmail.start')).some((row) => row.actor === ME)).toBe(true);
    const everyAudit = JSON.stringify(await postern.deps.db.many('SELECT * FROM postern_audit'));
    expect(everyAudit).not.toContain(secret);
    expect(everyAudit).not.toContain(imapSecret);
    expect(nginx.logs()).not.toContain(imapSecret);
  });

  it('accepts the IMAP secret only for its own user and only from SOGo addresses', async () => {
    const { secret } = await openWebmail();
    const ask = (username: string, realRip: string) =>
      postern.passdb(
        { username, password: secret, real_rip: realRip, service: 'imap' },
        { authorization: `Bearer ${TOKEN}` },
      );
    expect((await ask(ME, '127.0.0.1')).status).toBe(200);
    expect((await ask(ME, '192.0.2.10')).status).toBe(401);
    expect((await ask(ME, '::ffff:192.0.2.10')).status).toBe(401);
    expect((await ask(OTHER, '127.0.0.1')).status).toBe(401);
    expect((await imapLogin(dovecot.imapPort, OTHER, secret)).ok).toBe(false);
  });

  it('refuses a replayed handoff and sends the browser back through the portal', async () => {
    const client = new Client();
    await client.signIn(ME);
    await client.request(`/sogo-auth?login=${encodeURIComponent(ME)}`);
    const handoff = client.cookies.get('postern_sogo_handoff')?.value as string;
    expect((await client.request('/SOGo/so/')).status).toBe(200);

    upstream.clear();
    const attacker = new Client();
    attacker.cookies.set('postern_sogo_handoff', { value: handoff, path: '/SOGo' });
    const replay = await attacker.request('/SOGo/so/');
    expect(replay.status).toBe(302);
    expect(replay.location).toBe('/sogo-auth');
    expect(replay.setCookies).toContain('postern_sogo_handoff=; Max-Age=0; Path=/SOGo; HttpOnly; SameSite=Lax');
    expect(upstream.requests).toHaveLength(0);
    const refusal = await lastRefusal();
    expect(refusal.detail?.reason).toBe('handoff_replayed');
    expect(JSON.stringify(refusal)).not.toContain(handoff);
  });

  it('sends a signed-in browser without a webmail session through /sogo-auth into webmail, without a loop', async () => {
    const client = new Client();
    await client.signIn(ME);
    const bounced = await client.request('/SOGo/so/');
    expect(bounced.status).toBe(302);
    expect(bounced.location).toBe('/sogo-auth');
    const handoff = await client.request('/sogo-auth');
    expect(handoff.status).toBe(303);
    upstream.clear();
    expect((await client.request('/SOGo/so/')).status).toBe(200);
    expect(upstream.headerValues('x-webobjects-remote-user')).toEqual([ME]);

    // Not signed in: the sign-in page, which continues to /sogo-auth afterwards.
    const stranger = await new Client().request('/sogo-auth');
    expect(stranger.location).toBe(`/login?next=${encodeURIComponent('/sogo-auth')}`);
  });

  it('admits CalDAV/CardDAV clients by HTTP Basic (app password with dav_access), passing their credentials to SOGo', async () => {
    upstream.clear();
    const client = new Client();
    const authorization = basic(ME, DAV_APP_PASSWORD);
    const response = await client.request(`/SOGo/dav/${ME}/Calendar/`, {
      method: 'PROPFIND',
      headers: { authorization, depth: '0' },
    });
    expect(response.status, nginx.logs()).toBe(200);
    expect(upstream.headerValues('x-webobjects-remote-user')).toEqual([ME]);
    expect(upstream.headerValues('authorization')).toEqual([authorization]);
    // sasl_log is written in batches.
    const sasl = await eventually(
      () => postern.deps.db.many("SELECT 1 FROM sasl_log WHERE username = ? AND service = 'DAV'", [ME]),
      (rows) => rows.length > 0,
    );
    expect(sasl.length).toBeGreaterThan(0);
  });

  it.each([
    ['no credentials', undefined],
    ['a wrong password', basic(ME, 'wrong')],
    ['an app password without dav_access', basic(ME, EAS_APP_PASSWORD)],
    ['a mailbox that does not exist', basic(`nobody@${DOMAIN}`, PASSWORD)],
    ['a malformed header', 'Basic !!!'],
  ])('answers a DAV client with %s with a 401 Basic challenge, never a redirect', async (_label, authorization) => {
    upstream.clear();
    const response = await fetch(`${nginx.url}/SOGo/dav/${ME}/Contacts/`, {
      method: 'PROPFIND',
      redirect: 'manual',
      headers: authorization ? { authorization } : {},
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Basic realm="SOGo", charset="UTF-8"');
    expect(upstream.requests).toHaveLength(0);
  });

  it('admits ActiveSync at /Microsoft-Server-ActiveSync with an app password that has eas_access', async () => {
    upstream.clear();
    const path = '/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=me&DeviceId=x1&DeviceType=phone';
    const refused = await fetch(`${nginx.url}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { authorization: basic(ME, DAV_APP_PASSWORD) },
    });
    expect(refused.status).toBe(401);
    const admitted = await new Client().request(path, {
      method: 'POST',
      headers: { authorization: basic(ME, EAS_APP_PASSWORD) },
      body: '',
    });
    expect(admitted.status, nginx.logs()).toBe(200);
    expect(upstream.requests.map((r) => r.url)).toEqual([
      '/SOGo/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=me&DeviceId=x1&DeviceType=phone',
    ]);
    expect(upstream.headerValues('x-webobjects-remote-user')).toEqual([ME]);
  });

  it('ignores HTTP Basic on webmail pages: the browser goes through the portal', async () => {
    upstream.clear();
    const response = await new Client().request('/SOGo/so/', { headers: { authorization: basic(ME, PASSWORD) } });
    expect(response.status).toBe(302);
    expect(response.location).toBe('/sogo-auth');
    expect(upstream.requests).toHaveLength(0);
  });

  it('lets an admin open a mailbox through a single-use webmail link, audited, with a read-only portal', async () => {
    const mint = (username: string) =>
      fetch(`${postern.webUrl}/api/v1/mailboxes/${encodeURIComponent(username)}/webmail-link`, {
        method: 'POST',
        headers: { 'x-api-key': API_KEY },
      });
    expect((await mint(NO_SOGO)).status).toBe(409);
    const minted = await mint(OTHER);
    expect(minted.status).toBe(200);
    const { url, expires_in } = (await minted.json()) as { url: string; expires_in: number };
    expect(expires_in).toBe(60);
    expect(url).toMatch(new RegExp(`^${nginx.url}/sogo-auth/admin/[A-Za-z0-9_-]{43}$`));
    const path = new URL(url).pathname;

    upstream.clear();
    const admin = new Client();
    const opened = await admin.request(path);
    expect(opened.status).toBe(303);
    expect(opened.location).toBe(`/sogo-auth?login=${encodeURIComponent(OTHER)}`);
    expect((await admin.request(opened.location as string)).status).toBe(303);
    expect((await admin.request('/SOGo/so/')).status).toBe(200);
    expect(upstream.headerValues('x-webobjects-remote-user')).toEqual([OTHER]);

    // Used once; the link's secret is nowhere in the audit.
    expect((await new Client().request(path)).status).toBe(403);
    const audit = await postern.deps.db.many<{ action: string; target: string | null }>(
      "SELECT action, target FROM postern_audit WHERE actor = 'api:config' ORDER BY id",
    );
    expect(audit.map((row) => row.action)).toEqual([
      'sogo.admin_link.refused',
      'sogo.admin_link',
      'sogo.admin_login',
      'sogo.handoff',
    ]);
    expect(audit.slice(1).every((row) => row.target === OTHER)).toBe(true);
    const refusals = await postern.deps.db.many<{ detail: { reason: string } }>(
      "SELECT detail FROM postern_audit WHERE action = 'sogo.admin_login.refused'",
    );
    expect(refusals.map((row) => row.detail.reason)).toEqual(['ticket_unknown']);
    expect(JSON.stringify(await postern.deps.db.many('SELECT * FROM postern_audit'))).not.toContain(path.slice(-43));

    // The admin's portal session may look, not change the mailbox's credentials.
    const portal = await admin.request('/');
    expect(portal.status).toBe(200);
    expect(portal.text).toMatch(/id="acting-admin"[^>]*>An admin \(api:config\) is acting for this mailbox/);
    const csrf = /name="csrf" value="([^"]+)"/.exec(portal.text)?.[1] as string;
    const create = await admin.request('/app-passwords', {
      method: 'POST',
      headers: { origin: nginx.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, name: 'sneaky', protocols: 'imap' }).toString(),
    });
    expect(create.status).toBe(403);
    expect(await postern.deps.db.many("SELECT 1 FROM app_passwd WHERE name = 'sneaky'")).toHaveLength(0);
  });

  it("refuses another mailbox's login= with a 403 page that points admins to their webmail link", async () => {
    const client = new Client();
    await client.signIn(ME);
    const response = await client.request(`/sogo-auth?login=${encodeURIComponent(OTHER)}`);
    expect(response.status).toBe(403);
    expect(response.text).toContain('Not your mailbox');
    expect(response.text).toContain('webmail link from the admin API');
    expect(response.setCookies.some((line) => line.startsWith('postern_sogo_handoff='))).toBe(false);
    const refusal = await lastRefusal('sogo.handoff.refused');
    expect(refusal).toMatchObject({ actor: ME, target: OTHER, detail: { reason: 'other_user' } });
  });

  it('sends a browser without a portal session to the login, and audits it', async () => {
    const response = await new Client().request(`/sogo-auth?login=${encodeURIComponent(ME)}`);
    expect(response.status).toBe(303);
    expect(response.location).toBe(`/login?next=${encodeURIComponent(`/sogo-auth?login=${encodeURIComponent(ME)}`)}`);
    const refusal = await lastRefusal('sogo.handoff.refused');
    expect(refusal).toMatchObject({ actor: 'anonymous', target: ME, detail: { reason: 'no_session' } });
  });

  it('refuses a mailbox whose sogo_access is off with a clear page', async () => {
    const client = new Client();
    await client.signIn(NO_SOGO);
    const response = await client.request(`/sogo-auth?login=${encodeURIComponent(NO_SOGO)}`);
    expect(response.status).toBe(403);
    expect(response.text).toContain('Webmail is off for this mailbox');
    const refusal = await lastRefusal('sogo.handoff.refused');
    expect(refusal).toMatchObject({ actor: NO_SOGO, detail: { reason: 'sogo_access_off' } });
  });

  it('refuses an expired handoff', async () => {
    upstream.clear();
    const client = new Client();
    await client.signIn(ME);
    await client.request(`/sogo-auth?login=${encodeURIComponent(ME)}`);
    const handoff = client.cookies.get('postern_sogo_handoff')?.value as string;
    // Let Redis expire it now instead of waiting 60 s: expiry is exactly this TTL running out.
    await postern.deps.redis.pexpire(keys.sogoHandoff(ks(), sha256(handoff)), 1);
    await new Promise((r) => setTimeout(r, 20));
    const response = await client.request('/SOGo/so/');
    expect(response.status).toBe(302);
    expect(upstream.requests).toHaveLength(0);
    expect((await lastRefusal()).detail?.reason).toBe('handoff_expired');
  });

  it.each([
    ['a forged handoff', 'postern_sogo_handoff', randomBytes(32).toString('base64url'), 'handoff_unknown'],
    ['a malformed handoff', 'postern_sogo_handoff', 'not-a-token', 'handoff_malformed'],
    ['a forged webmail session', 'postern_webmail', randomBytes(32).toString('base64url'), 'webmail_session_unknown'],
  ])('refuses %s', async (_label, name, value, reason) => {
    upstream.clear();
    const client = new Client();
    client.cookies.set(name, { value, path: '/SOGo' });
    const response = await client.request('/SOGo/so/');
    expect(response.status).toBe(302);
    expect(response.location).toBe('/sogo-auth');
    expect(upstream.requests).toHaveLength(0);
    expect((await lastRefusal()).detail?.reason).toBe(reason);
  });

  it('ends the webmail session and its IMAP secret when the portal session ends', async () => {
    const { client, secret } = await openWebmail();
    await client.signOut();
    upstream.clear();
    const response = await client.request('/SOGo/so/');
    expect(response.status).toBe(302);
    expect(response.setCookies).toContain('postern_webmail=; Max-Age=0; Path=/SOGo; HttpOnly; SameSite=Lax');
    expect(upstream.requests).toHaveLength(0);
    expect((await lastRefusal()).detail?.reason).toBe('portal_session_ended');
    const passdb = await postern.passdb(
      { username: ME, password: secret, real_rip: '127.0.0.1', service: 'imap' },
      { authorization: `Bearer ${TOKEN}` },
    );
    expect(passdb.status).toBe(401);
    expect((await imapLogin(dovecot.imapPort, ME, secret)).ok).toBe(false);
  });

  it('never lets client-supplied identity headers reach SOGo', async () => {
    const forged = {
      'X-Webobjects-Remote-User': OTHER,
      'x-webobjects-auth-type': 'None',
      Authorization: `Basic ${Buffer.from(`${OTHER}:guess`).toString('base64')}`,
      X_Webobjects_Remote_User: OTHER,
    };
    const { client, decoded } = await openWebmail();
    upstream.clear();
    const response = await client.request('/SOGo/so/', { headers: forged });
    expect(response.status).toBe(200);
    expect(upstream.headerValues('x-webobjects-remote-user')).toEqual([ME]);
    expect(upstream.headerValues('x-webobjects-auth-type')).toEqual(['Basic']);
    expect(upstream.headerValues('authorization').map((v) => Buffer.from(v.slice(6), 'base64').toString())).toEqual([
      decoded,
    ]);
    const names = upstream.last()?.rawHeaders.map(([name]) => name.toLowerCase()) ?? [];
    expect(names).not.toContain('x_webobjects_remote_user');

    upstream.clear();
    const anonymous = await new Client().request('/SOGo/so/', { headers: forged });
    expect(anonymous.status).toBe(302);
    expect(upstream.requests).toHaveLength(0);
  });

  it('keeps the verify endpoint internal and token-guarded', async () => {
    expect((await new Client().request('/postern-verify')).status).toBe(404);
    const direct = await fetch(`${postern.internalUrl}/sogo/verify`);
    expect(direct.status).toBe(403);
  });

  it('works in a real browser: portal sign-in, "Open webmail", SOGo shows the user', async () => {
    browser = await launchChromium();
    const { context, page } = await signInInBrowser(browser);
    upstream.clear();
    await Promise.all([page.waitForURL(`${nginx.url}/SOGo/so/`), page.click('#open-webmail')]);
    expect(await page.textContent('#sogo-user')).toBe(ME);
    expect(upstream.headerValues('x-webobjects-remote-user')).toEqual([ME]);
    const cookies = await context.cookies(`${nginx.url}/SOGo/so/`);
    expect(cookies.map((c) => c.name).sort()).toEqual(['0xHIGHFLYxSOGo', 'postern_session', 'postern_webmail']);
    // A reload rides on the webmail session.
    await page.reload();
    expect(await page.textContent('#sogo-user')).toBe(ME);
    await context.close();
  });

  it('opens the mailbox in real SOGo (Debian sogod 5.8) in headless Chromium', async () => {
    const subject = `handoff proof ${randomBytes(4).toString('hex')}`;
    await appendMessage(
      dovecot.imapPort,
      ME,
      PASSWORD,
      `From: sender@example.net\nTo: ${ME}\nSubject: ${subject}\nDate: Mon, 2 Jan 2023 10:00:00 +0000\nMessage-ID: <${randomBytes(6).toString('hex')}@example.net>\n\nHello from the test.\n`,
    );
    sogo = await startSogo({ imapPort: dovecot.imapPort, mysqlRootUrl: MYSQL_ROOT_URL, database: postern.name });
    upstream.forwardTo(sogo.url);
    try {
      browser ??= await launchChromium();
      const { context, page } = await signInInBrowser(browser);
      upstream.clear();
      await page.click('#open-webmail');
      await page.waitForURL(/\/SOGo\/so\/me@handoff\.example\/Mail\//, { timeout: 15_000 });
      await page.getByText(subject).first().waitFor({ timeout: 15_000 });
      // SOGo received only postern's identity, and opened IMAP with the webmail secret.
      const users = new Set(upstream.requests.flatMap((r) => upstream.headerValues('x-webobjects-remote-user', r)));
      expect([...users]).toEqual([ME]);
      const sasl = await eventually(
        () => postern.deps.db.many("SELECT 1 FROM sasl_log WHERE username = ? AND service = 'SOGO'", [ME]),
        (rows) => rows.length > 0,
      );
      expect(sasl.length).toBeGreaterThan(0);
      await context.close();
    } catch (error) {
      throw new Error(
        `${String(error)}\n--- sogo ---\n${sogo.logs().slice(-4000)}\n--- nginx ---\n${nginx.logs().slice(-3000)}\n--- dovecot ---\n${dovecot.logs().slice(-6000)}`,
      );
    } finally {
      upstream.forwardTo(undefined);
    }
  });
});
