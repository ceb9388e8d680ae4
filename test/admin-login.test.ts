// Admin sign-in on the web listener against real MariaDB and Redis: password, then TOTP when
// enrolled or enforced; the admin cookie (HttpOnly, SameSite=Strict, Secure), bound server-side
// and ended server-side; rate limits per IP and per username that spare a known-good IP; TOTP
// enrolment, replay, recovery codes, reset by a superadmin; and the role matrix of the admin API
// for a signed-in superadmin and domain admins of this and of another domain.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashRecoveryCode, stepAt, totpCodeAt } from '../src/admin/totp.js';
import { startTestPostern, type TestPostern } from './support/env.js';
import { seedAdminAccount, seedDomain, seedMailbox, seedTfa } from './support/seed.js';

const ORIGIN = 'https://admin.example.org';
const ROOT_PASSWORD = 'root passphrase 0001';
const DESK_PASSWORD = 'helpdesk passphrase 02';
const OTHER_PASSWORD = 'other desk passphrase 3';
const FORCED_PASSWORD = 'forced admin passphrase';
const SECOND_ROOT_PASSWORD = 'second root passphrase';
const API_KEY = 'admin-login-test-api-key-0123456789abcdef';
let postern: TestPostern;
const bodies: string[] = [];

/** A browser: a cookie jar, a fixed client IP (via the trusted proxy header) and our Origin. */
function browser(ip: string) {
  const jar = new Map<string, string>();
  let lastSetCookie: string[] = [];
  async function request(
    method: string,
    path: string,
    form?: Record<string, string>,
    headers: Record<string, string> = {},
    json?: unknown,
  ) {
    const response = await fetch(`${postern.webUrl}${path}`, {
      method,
      redirect: 'manual',
      headers: {
        origin: ORIGIN,
        'x-forwarded-for': ip,
        ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...headers,
      },
      ...(form ? { body: new URLSearchParams(form).toString() } : {}),
      ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
    });
    lastSetCookie = response.headers.getSetCookie();
    for (const cookie of lastSetCookie) {
      const [pair = ''] = cookie.split(';');
      const [name = '', value = ''] = pair.split('=');
      if (/max-age=0/i.test(cookie) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    const text = await response.text();
    bodies.push(text);
    return { status: response.status, location: response.headers.get('location'), text };
  }
  return {
    jar,
    get setCookies() {
      return lastSetCookie;
    },
    request,
    async api(method: string, path: string, body?: unknown, csrf?: string) {
      const response = await request(
        method,
        `/api/v1${path}`,
        undefined,
        {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(csrf ? { 'x-csrf-token': csrf } : {}),
        },
        body,
      );
      return response;
    },
    async signIn(username: string, password: string) {
      return request('POST', '/admin/login', { username, password });
    },
    async csrf(path = '/admin') {
      const page = await request('GET', path);
      return /name="csrf" value="([^"]+)"/.exec(page.text)?.[1] ?? '';
    },
  };
}

async function seedAdmin(username: string, password: string, superadmin: boolean, domains: string[] = []) {
  await seedAdminAccount(postern, { username, password, superadmin, domains });
}

beforeAll(async () => {
  postern = await startTestPostern('admin_login', {
    POSTERN_PUBLIC_URL: ORIGIN,
    POSTERN_COOKIE_SECURE: 'true',
    POSTERN_TRUSTED_PROXIES: '127.0.0.1/32',
    POSTERN_BCRYPT_COST: '4',
    POSTERN_BAN_USER_THRESHOLD: '4',
    POSTERN_BAN_IP_THRESHOLD: '6',
    POSTERN_BAN_WINDOW_SECONDS: '600',
    POSTERN_BAN_SECONDS: '600',
    POSTERN_API_KEY: API_KEY,
  });
  const { db } = postern.deps;
  await seedDomain(db, 'example.org');
  await seedDomain(db, 'other.example');
  await seedMailbox(db, { username: 'alice@example.org', passwordHash: '{PLAIN}x' });
  await seedMailbox(db, { username: 'bob@other.example', passwordHash: '{PLAIN}x' });
  await seedAdmin('root', ROOT_PASSWORD, true);
  await seedAdmin('helpdesk', DESK_PASSWORD, false, ['example.org']);
  await seedAdmin('otherdesk', OTHER_PASSWORD, false, ['other.example']);
  await seedAdmin('forced', FORCED_PASSWORD, true);
  await seedAdmin('root2', SECOND_ROOT_PASSWORD, true);
  await db.execute(`UPDATE admin SET attributes = JSON_SET(attributes, '$.force_tfa', 1) WHERE username = 'forced'`);
});

afterAll(async () => {
  await postern?.destroy();
});

async function lastAuditId(): Promise<number> {
  const row = await postern.deps.db.one<{ id: number | null }>('SELECT MAX(id) AS id FROM postern_audit');
  return Number(row?.id ?? 0);
}

/** The sign-in and second-factor rows about an admin written after row `afterId`, oldest first. */
async function signInRows(username: string, afterId: number) {
  return postern.deps.db.many<{ action: string; outcome: string; detail: unknown }>(
    `SELECT action, outcome, actor, actor_kind, actor_role, ip, detail FROM postern_audit
      WHERE target = ? AND id > ? AND (action LIKE 'admin.%' OR action = 'tfa.enrol') ORDER BY id`,
    [username, afterId],
  );
}

describe('password sign-in', () => {
  it('signs a superadmin in with a cookie of its own: HttpOnly, SameSite=Strict, Secure, path /', async () => {
    const b = browser('198.51.100.1');
    const response = await b.signIn('root', ROOT_PASSWORD);
    expect(response).toMatchObject({ status: 303, location: '/admin' });
    const cookie = b.setCookies.find((value) => value.startsWith('postern_admin='));
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Secure/);
    expect(cookie).toMatch(/Path=\//);
    expect(b.jar.has('postern_session')).toBe(false);
    const home = await b.request('GET', '/admin');
    expect(home.status).toBe(200);
    expect(home.text).toContain('<dd id="admin-username">root</dd>');
    // The mailbox portal does not take it as a portal session.
    expect((await b.request('GET', '/')).location).toBe('/login');
  });

  it('answers a wrong password, an unknown admin and a disabled one alike', async () => {
    const b = browser('198.51.100.2');
    const wrong = await b.signIn('root', 'not the password');
    const unknown = await b.signIn('nobody', 'not the password');
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    const message = (text: string) => /role="alert">([^<]*)</.exec(text)?.[1];
    expect(message(wrong.text)).toBe('Wrong username or password.');
    expect(message(unknown.text)).toBe(message(wrong.text));
    expect(b.jar.has('postern_admin')).toBe(false);
  });

  it('refuses a sign-in form posted from another site', async () => {
    const response = await browser('198.51.100.3').request(
      'POST',
      '/admin/login',
      { username: 'root', password: ROOT_PASSWORD },
      { origin: 'https://evil.example' },
    );
    expect(response.status).toBe(403);
  });

  it('ends the session server-side at sign-out: the old cookie opens nothing', async () => {
    const b = browser('198.51.100.4');
    await b.signIn('root', ROOT_PASSWORD);
    const stolen = b.jar.get('postern_admin') ?? '';
    const csrf = await b.csrf();
    expect((await b.request('POST', '/admin/logout', { csrf })).location).toBe('/admin/login');
    const replay = browser('198.51.100.4');
    replay.jar.set('postern_admin', stolen);
    expect((await replay.request('GET', '/admin')).location).toBe('/admin/login');
    expect((await replay.api('GET', '/admins')).status).toBe(401);
    expect(
      await postern.deps.db.many(
        "SELECT actor, actor_kind, actor_role, ip FROM postern_audit WHERE action = 'admin.logout'",
      ),
    ).toEqual([{ actor: 'root', actor_kind: 'admin', actor_role: 'superadmin', ip: '198.51.100.4' }]);
  });

  it('signs a disabled admin out on its next request', async () => {
    const b = browser('198.51.100.5');
    await b.signIn('otherdesk', OTHER_PASSWORD);
    await postern.deps.db.execute("UPDATE admin SET active = 0 WHERE username = 'otherdesk'");
    try {
      expect((await b.api('GET', '/templates')).status).toBe(401);
      expect((await b.request('GET', '/admin')).location).toBe('/admin/login');
    } finally {
      await postern.deps.db.execute("UPDATE admin SET active = 1 WHERE username = 'otherdesk'");
    }
  });
});

describe('rate limits', () => {
  it('bans a username after distinct wrong passwords, but not from the IP it signed in from before', async () => {
    const known = browser('203.0.113.10');
    expect((await known.signIn('helpdesk', DESK_PASSWORD)).status).toBe(303);
    const attacker = browser('203.0.113.66');
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await attacker.signIn('helpdesk', `guess number ${i}`)).status);
    expect(statuses.slice(0, 4)).toEqual([401, 401, 401, 401]);
    expect(statuses[4]).toBe(429);
    // Even the right password is refused from elsewhere while the username is banned...
    expect((await browser('203.0.113.67').signIn('helpdesk', DESK_PASSWORD)).status).toBe(429);
    // ...but the real admin, from its known-good IP, still gets in.
    expect((await browser('203.0.113.10').signIn('helpdesk', DESK_PASSWORD)).status).toBe(303);
  });

  it('bans an IP that tries many usernames', async () => {
    const attacker = browser('203.0.113.99');
    const statuses = [];
    for (let i = 0; i < 8; i++) statuses.push((await attacker.signIn(`user${i}`, `guess ${i}`)).status);
    expect(statuses).toContain(429);
    expect((await attacker.signIn('root', ROOT_PASSWORD)).status).toBe(429);
  });
});

describe('the admin API with an admin session', () => {
  async function signedIn(username: string, password: string, ip: string) {
    const b = browser(ip);
    expect((await b.signIn(username, password)).status).toBe(303);
    return { b, csrf: await b.csrf() };
  }

  // Every admin API route × superadmin, domain admin of the object's domain, domain admin of
  // another domain. 404 for objects outside the ACL is the same 404 as for a missing object.
  const matrix: [string, string, unknown, number, number, number][] = [
    // method, path, body, superadmin, helpdesk (example.org), otherdesk (other.example)
    ['GET', '/mailboxes/alice@example.org', undefined, 200, 200, 404],
    ['GET', '/mailboxes/bob@other.example', undefined, 200, 404, 200],
    ['GET', '/mailboxes/ghost@example.org', undefined, 404, 404, 404],
    ['GET', '/mailboxes/alice@example.org/app-passwords', undefined, 200, 200, 404],
    ['DELETE', '/mailboxes/alice@example.org/app-passwords/999', undefined, 404, 404, 404],
    ['PUT', '/mailboxes/alice@example.org/authsource', { authsource: 'mailcow' }, 200, 200, 404],
    ['GET', '/identity-provider', undefined, 200, 403, 403],
    ['PUT', '/identity-provider', { authsource: 'keycloak' }, 400, 403, 403],
    ['GET', '/templates', undefined, 200, 200, 200],
    ['POST', '/templates', { template: 'X' }, 400, 403, 403],
    ['GET', '/admins', undefined, 200, 403, 403],
    ['GET', '/admins/helpdesk', undefined, 200, 403, 403],
    ['PATCH', '/admins/helpdesk', { domains: ['example.org', 'other.example'] }, 200, 403, 403],
    ['DELETE', '/admins/otherdesk/tfa', undefined, 200, 403, 403],
    ['GET', '/bans', undefined, 200, 403, 403],
    ['GET', '/sync/runs', undefined, 200, 403, 403],
    ['GET', '/audit', undefined, 200, 200, 200],
    ['POST', '/audit', {}, 404, 403, 403],
    ['GET', '/domains', undefined, 200, 200, 200],
    ['GET', '/domains/example.org', undefined, 200, 200, 404],
    ['PATCH', '/domains/example.org', { description: 'Example' }, 200, 200, 404],
    ['POST', '/domains', { domain: 'not a domain' }, 400, 403, 403],
    ['DELETE', '/domains/other.example', undefined, 409, 404, 403],
    ['GET', '/alias-domains', undefined, 200, 200, 200],
    ['GET', '/alias-domains/none.example', undefined, 404, 404, 404],
    ['POST', '/alias-domains', { alias_domain: 'x.example', target_domain: 'example.org' }, 201, 409, 404],
    ['DELETE', '/mailboxes/alice@example.org/tfa', undefined, 200, 200, 404],
    ['DELETE', '/mailboxes/bob@other.example/tfa', undefined, 200, 404, 200],
    ['DELETE', '/mailboxes/ghost@example.org/tfa', undefined, 404, 404, 404],
    ['GET', '/two-factor-policy', undefined, 200, 403, 403],
    ['PUT', '/two-factor-policy', {}, 400, 403, 403],
  ];
  let sessions: Record<'root' | 'helpdesk' | 'otherdesk', { b: ReturnType<typeof browser>; csrf: string }>;

  beforeAll(async () => {
    sessions = {
      root: await signedIn('root', ROOT_PASSWORD, '192.0.2.1'),
      // The rate-limit test above banned the username; its known-good IP still gets in.
      helpdesk: await signedIn('helpdesk', DESK_PASSWORD, '203.0.113.10'),
      otherdesk: await signedIn('otherdesk', OTHER_PASSWORD, '192.0.2.3'),
    };
  });

  it.each(matrix)('%s %s → superadmin %#', async (method, path, body, root, helpdesk, otherdesk) => {
    const results: number[] = [];
    for (const who of ['root', 'helpdesk', 'otherdesk'] as const) {
      const { b, csrf } = sessions[who];
      results.push((await b.api(method, path, body, csrf)).status);
    }
    expect(results).toEqual([root, helpdesk, otherdesk]);
    if (method === 'PATCH')
      await sessions.root.b.api('PATCH', '/admins/helpdesk', { domains: ['example.org'] }, sessions.root.csrf);
  });

  it('words a 404 outside the ACL exactly like a missing mailbox', async () => {
    const { b } = sessions.helpdesk;
    const outside = await b.api('GET', '/mailboxes/bob@other.example');
    const missing = await b.api('GET', '/mailboxes/bob@example.org');
    expect(outside.text.replace('bob@other.example', 'X')).toBe(missing.text.replace('bob@example.org', 'X'));
  });

  it('refuses a cookie-authenticated change without the CSRF token or from another origin', async () => {
    const { b, csrf } = sessions.root;
    expect((await b.api('PATCH', '/admins/helpdesk', { active: true })).status).toBe(403);
    const crossSite = await b.request('PATCH', '/api/v1/admins/helpdesk', undefined, {
      origin: 'https://evil.example',
      'x-csrf-token': csrf,
    });
    expect(crossSite.status).toBe(403);
  });

  it('audits a session admin by name', async () => {
    const rows = await postern.deps.db.many<{ actor: string }>(
      "SELECT actor FROM postern_audit WHERE action = 'admin.update' AND target = 'helpdesk'",
    );
    expect(rows.map((row) => row.actor)).toContain('root');
  });
});

describe('TOTP', () => {
  // Wrong codes below count against 'root' (the limiter's user threshold is 4 here); the IP it
  // signed in from stays usable, as the known-good rule promises.
  const KNOWN_ROOT_IP = '192.0.2.50';

  it("enrols with a confirmation code, shows 10 recovery codes once, stores them hashed, in mailcow's tfa table", async () => {
    const b = browser(KNOWN_ROOT_IP);
    await b.signIn('root', ROOT_PASSWORD);
    const page = await b.request('GET', '/admin/tfa/enrol');
    expect(page.text).toMatch(/<svg[^>]*>/);
    const secret = /id="totp-secret">([A-Z2-7]+)</.exec(page.text)?.[1] ?? '';
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1] ?? '';
    expect((await b.request('POST', '/admin/tfa/enrol', { csrf, code: '000000' })).status).toBe(401);
    // The previous step's code (allowed drift), so the current step stays unused for sign-in below.
    const confirm = await b.request('POST', '/admin/tfa/enrol', {
      csrf,
      code: totpCodeAt(secret, stepAt(Date.now()) - 1),
      name: 'phone',
    });
    expect(confirm.status).toBe(200);
    const codes = [...confirm.text.matchAll(/<span class="secret">([0-9A-Z-]{19})<\/span>/g)].map((m) => m[1] ?? '');
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    const [row] = await postern.deps.db.many<{ authmech: string; secret: string; active: number; key_id: string }>(
      "SELECT authmech, secret, active, key_id FROM tfa WHERE username = 'root'",
    );
    expect(row).toEqual({ authmech: 'totp', secret, active: 1, key_id: 'phone' });
    const stored = await postern.deps.db.many<{ code_hash: string }>(
      "SELECT code_hash FROM postern_recovery_codes WHERE username = 'root' ORDER BY id",
    );
    expect(stored.map((r) => r.code_hash).sort()).toEqual(codes.map(hashRecoveryCode).sort());
    expect(JSON.stringify(stored)).not.toContain(codes[0]);

    // Sign in again: the password alone is no longer enough.
    const again = browser(KNOWN_ROOT_IP);
    expect((await again.signIn('root', ROOT_PASSWORD)).location).toBe('/admin/login/second-factor');
    expect((await again.request('GET', '/admin')).location).toBe('/admin/login');
    expect((await again.api('GET', '/admins')).status).toBe(401);
    const factorCsrf = await again.csrf('/admin/login/second-factor');
    // The code that confirmed the enrolment was spent.
    const spent = await again.request('POST', '/admin/login/second-factor', {
      csrf: factorCsrf,
      code: totpCodeAt(secret, stepAt(Date.now()) - 1),
    });
    expect(spent.status).toBe(401);
    const code = totpCodeAt(secret, stepAt(Date.now()));
    expect((await again.request('POST', '/admin/login/second-factor', { csrf: factorCsrf, code })).location).toBe(
      '/admin',
    );
    expect((await again.request('GET', '/admin')).status).toBe(200);

    // Replaying that code in another sign-in is refused.
    const replay = browser(KNOWN_ROOT_IP);
    await replay.signIn('root', ROOT_PASSWORD);
    const replayCsrf = await replay.csrf('/admin/login/second-factor');
    expect((await replay.request('POST', '/admin/login/second-factor', { csrf: replayCsrf, code })).status).toBe(401);

    // A recovery code works once.
    const recovery = codes[3] ?? '';
    expect(
      (await replay.request('POST', '/admin/login/second-factor', { csrf: replayCsrf, code: recovery.toLowerCase() }))
        .location,
    ).toBe('/admin');
    const reuse = browser(KNOWN_ROOT_IP);
    await reuse.signIn('root', ROOT_PASSWORD);
    const reuseCsrf = await reuse.csrf('/admin/login/second-factor');
    expect(
      (await reuse.request('POST', '/admin/login/second-factor', { csrf: reuseCsrf, code: recovery })).status,
    ).toBe(401);

    const audit = await postern.deps.db.many<{ action: string; detail: unknown }>(
      "SELECT action, detail FROM postern_audit WHERE target = 'root' AND action IN ('tfa.enrol', 'tfa.recovery_code.used', 'admin.login') ORDER BY id",
    );
    expect(audit.map((r) => r.action)).toEqual(
      expect.arrayContaining(['tfa.enrol', 'tfa.recovery_code.used', 'admin.login']),
    );
    // Every one of those rows names the admin as an admin, with its role and the client address.
    const who = await postern.deps.db.many<{ action: string; second_factor: string | null }>(
      `SELECT action, actor, actor_kind, actor_role, ip, JSON_VALUE(detail, '$.second_factor') AS second_factor
         FROM postern_audit WHERE target = 'root' AND action IN ('tfa.enrol', 'tfa.recovery_code.used', 'admin.login')
         AND ip = ? ORDER BY id`,
      [KNOWN_ROOT_IP],
    );
    const asRoot = { actor: 'root', actor_kind: 'admin', actor_role: 'superadmin', ip: KNOWN_ROOT_IP };
    expect(who).toEqual(
      expect.arrayContaining([
        { ...asRoot, action: 'tfa.enrol', second_factor: null },
        { ...asRoot, action: 'admin.login', second_factor: 'totp' },
        { ...asRoot, action: 'tfa.recovery_code.used', second_factor: null },
        { ...asRoot, action: 'admin.login', second_factor: 'recovery_code' },
      ]),
    );
    const everything = JSON.stringify(await postern.deps.db.many('SELECT * FROM postern_audit'));
    for (const secretValue of [secret, ...codes, ROOT_PASSWORD]) expect(everything).not.toContain(secretValue);
  });

  it('makes an enforced admin enrol before anything else', async () => {
    const mark = await lastAuditId();
    const b = browser('192.0.2.60');
    expect((await b.signIn('forced', FORCED_PASSWORD)).location).toBe('/admin/tfa/enrol');
    expect((await b.request('GET', '/admin')).location).toBe('/admin/login');
    expect((await b.api('GET', '/templates')).status).toBe(401);
    const page = await b.request('GET', '/admin/tfa/enrol');
    expect(page.text).toContain('required for your account');
    const secret = /id="totp-secret">([A-Z2-7]+)</.exec(page.text)?.[1] ?? '';
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1] ?? '';
    expect((await b.request('POST', '/admin/tfa/enrol', { csrf, code: '000000' })).status).toBe(401);
    const done = await b.request('POST', '/admin/tfa/enrol', { csrf, code: totpCodeAt(secret, stepAt(Date.now())) });
    expect(done.status).toBe(200);
    expect((await b.request('GET', '/admin')).status).toBe(200);
    // Held at enrolment is not signed in; a wrong confirmation code there is a failed sign-in.
    expect((await signInRows('forced', mark)).map((row) => [row.action, row.outcome, row.detail])).toEqual([
      ['admin.first_factor', 'success', { factor: 'password', next: 'enrol' }],
      ['admin.login.failed', 'failure', { reason: 'wrong_code', factor: 'totp_enrolment' }],
      ['tfa.enrol', 'success', expect.objectContaining({ authmech: 'totp' })],
      ['admin.login', 'success', { second_factor: 'totp' }],
    ]);
  });

  it('audits a password without its code as no sign-in, a missing or wrong code as a failure, and the sign-in once granted', async () => {
    const ip = '192.0.2.65';
    await seedAdmin('audited', 'audited admin passphrase', true);
    await seedTfa(postern.deps.db, { username: 'audited', authmech: 'totp', active: 1 });
    const mark = await lastAuditId();
    const b = browser(ip);
    expect((await b.signIn('audited', 'audited admin passphrase')).location).toBe('/admin/login/second-factor');
    const csrf = await b.csrf('/admin/login/second-factor');
    expect((await b.request('POST', '/admin/login/second-factor', { csrf, code: '' })).status).toBe(401);
    const wrong = totpCodeAt('JBSWY3DPEHPK3PXP', stepAt(Date.now()) + 5);
    expect((await b.request('POST', '/admin/login/second-factor', { csrf, code: wrong })).status).toBe(401);
    expect((await b.api('GET', '/admins')).status).toBe(401);
    const before = await signInRows('audited', mark);
    expect(before.some((row) => row.action === 'admin.login')).toBe(false);
    const code = totpCodeAt('JBSWY3DPEHPK3PXP', stepAt(Date.now()));
    expect((await b.request('POST', '/admin/login/second-factor', { csrf, code })).location).toBe('/admin');
    const asAudited = { actor: 'audited', actor_kind: 'admin', actor_role: 'superadmin', ip };
    expect(await signInRows('audited', mark)).toEqual([
      {
        ...asAudited,
        action: 'admin.first_factor',
        outcome: 'success',
        detail: { factor: 'password', next: 'second_factor' },
      },
      {
        ...asAudited,
        action: 'admin.login.failed',
        outcome: 'failure',
        detail: { reason: 'missing_code', factor: 'totp' },
      },
      {
        ...asAudited,
        action: 'admin.login.failed',
        outcome: 'failure',
        detail: { reason: 'wrong_code', factor: 'totp' },
      },
      { ...asAudited, action: 'admin.login', outcome: 'success', detail: { second_factor: 'totp' } },
    ]);
  });

  it("lets a superadmin reset another admin's TOTP: audited, and the owner is told at the next sign-in", async () => {
    // root signs in with its password only (its authenticator removed for this test).
    const admin = browser(KNOWN_ROOT_IP);
    await postern.deps.db.execute("DELETE FROM tfa WHERE username = 'root'");
    await admin.signIn('root', ROOT_PASSWORD);
    const csrf = await admin.csrf();
    const reset = await admin.api('DELETE', '/admins/forced/tfa', undefined, csrf);
    expect(reset.status).toBe(200);
    expect(await postern.deps.db.many("SELECT id FROM tfa WHERE username = 'forced'")).toEqual([]);
    expect(
      await postern.deps.db.many(
        "SELECT actor, target FROM postern_audit WHERE action = 'tfa.reset' AND target = 'forced'",
      ),
    ).toEqual([{ actor: 'root', target: 'forced' }]);
    const owner = browser('192.0.2.72');
    expect((await owner.signIn('forced', FORCED_PASSWORD)).location).toBe('/admin/tfa/enrol');
    expect((await owner.request('GET', '/admin/tfa/enrol')).text).toContain('id="tfa-reset-notice"');
  });

  it('lets only an admin with a second factor require one of others (no self-lockout)', async () => {
    const root = browser(KNOWN_ROOT_IP);
    await postern.deps.db.execute("DELETE FROM tfa WHERE username = 'root'");
    expect((await root.signIn('root', ROOT_PASSWORD)).location).toBe('/admin');
    const csrf = await root.csrf();
    const refused = await root.api('PATCH', '/admins/helpdesk', { force_tfa: true }, csrf);
    expect(refused.status).toBe(409);
    expect(refused.text).toMatch(/set up your own two-factor sign-in/);
    await postern.deps.db.execute(
      "INSERT INTO tfa (key_id, username, authmech, secret, active) VALUES ('phone', 'root', 'totp', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 1)",
    );
    const allowed = await root.api('PATCH', '/admins/helpdesk', { force_tfa: true }, csrf);
    expect(allowed.status).toBe(200);
    expect(JSON.parse(allowed.text)).toMatchObject({ force_tfa: true });
    // The rate-limit test banned 'helpdesk'; its known-good IP still signs in, straight to enrolment.
    expect((await browser('203.0.113.10').signIn('helpdesk', DESK_PASSWORD)).location).toBe('/admin/tfa/enrol');
  });

  it('tells the owner of a reset second factor once, at the next sign-in, and audits that it was told', async () => {
    await postern.deps.db.execute("DELETE FROM tfa WHERE username = 'root'");
    const root = browser(KNOWN_ROOT_IP);
    expect((await root.signIn('root', ROOT_PASSWORD)).location).toBe('/admin');
    const csrf = await root.csrf();
    // root2 is not enforced: after the reset it signs in with its password and lands on /admin.
    await postern.deps.db.execute(
      "INSERT INTO tfa (key_id, username, authmech, secret, active) VALUES ('phone', 'root2', 'totp', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 1)",
    );
    expect((await root.api('DELETE', '/admins/root2/tfa', undefined, csrf)).status).toBe(200);
    const owner = browser('192.0.2.80');
    expect((await owner.signIn('root2', SECOND_ROOT_PASSWORD)).location).toBe('/admin');
    const home = await owner.request('GET', '/admin');
    expect(home.text).toContain('id="tfa-reset-notice"');
    expect(home.text).toContain('A superadmin has reset your two-factor sign-in');
    expect((await owner.request('GET', '/admin')).text).not.toContain('id="tfa-reset-notice"');
    const again = browser('192.0.2.81');
    await again.signIn('root2', SECOND_ROOT_PASSWORD);
    expect((await again.request('GET', '/admin')).text).not.toContain('id="tfa-reset-notice"');
    expect(
      await postern.deps.db.many(
        "SELECT actor, action FROM postern_audit WHERE target = 'root2' AND action LIKE 'tfa.reset%' ORDER BY id",
      ),
    ).toEqual([
      { actor: 'root', action: 'tfa.reset' },
      { actor: 'root2', action: 'tfa.reset.notified' },
    ]);
  });

  it('refuses an admin whose only authenticator is one postern cannot check (mailcow WebAuthn), saying why', async () => {
    await postern.deps.db.execute(
      "INSERT INTO tfa (key_id, username, authmech, secret, active) VALUES ('key', 'otherdesk', 'webauthn', '', 1)",
    );
    try {
      const b = browser('192.0.2.3');
      const refused = await b.signIn('otherdesk', OTHER_PASSWORD);
      expect(refused.status).toBe(403);
      expect(refused.text).toContain('postern cannot check');
      expect(b.jar.has('postern_admin')).toBe(false);
    } finally {
      await postern.deps.db.execute("DELETE FROM tfa WHERE username = 'otherdesk'");
    }
    expect((await browser('192.0.2.3').signIn('otherdesk', OTHER_PASSWORD)).location).toBe('/admin');
  });

  it('never sent a password in any page or response', () => {
    for (const text of bodies)
      for (const secret of [ROOT_PASSWORD, DESK_PASSWORD, OTHER_PASSWORD, FORCED_PASSWORD])
        expect(text).not.toContain(secret);
  });
});

describe('two-factor enforcement per role', () => {
  // Where root signed in before (the TOTP tests' wrong codes banned the username elsewhere).
  const ROOT_IP = '192.0.2.50';
  let root: ReturnType<typeof browser>;
  let csrf: string;

  beforeAll(async () => {
    await postern.deps.db.execute("DELETE FROM tfa WHERE username IN ('root', 'helpdesk', 'root2')");
    root = browser(ROOT_IP);
    expect((await root.signIn('root', ROOT_PASSWORD)).location).toBe('/admin');
    csrf = await root.csrf();
  });

  afterAll(async () => {
    await postern.deps.db.execute('DELETE FROM postern_two_factor_policy');
  });

  it('starts with nothing enforced', async () => {
    const response = await root.api('GET', '/two-factor-policy');
    expect(response.status).toBe(200);
    expect(JSON.parse(response.text)).toEqual({ superadmin: false, domainadmin: false, mailbox: false, changes: {} });
  });

  it('refuses an admin without a second factor turning enforcement on, with a clear error (no self-lockout)', async () => {
    for (const role of ['superadmin', 'domainadmin', 'mailbox']) {
      const refused = await root.api('PUT', '/two-factor-policy', { [role]: true }, csrf);
      expect(refused.status).toBe(409);
      expect(JSON.parse(refused.text).error.message).toMatch(/set up your own two-factor sign-in/);
    }
    expect(JSON.parse((await root.api('GET', '/two-factor-policy')).text)).toMatchObject({
      superadmin: false,
      domainadmin: false,
      mailbox: false,
    });
    // Turning it off, or leaving it off, never locks anyone out.
    expect((await root.api('PUT', '/two-factor-policy', { mailbox: false }, csrf)).status).toBe(200);
  });

  it('validates the body: only the three roles, as booleans', async () => {
    expect((await root.api('PUT', '/two-factor-policy', { everyone: true }, csrf)).status).toBe(400);
    expect((await root.api('PUT', '/two-factor-policy', { superadmin: 'yes' }, csrf)).status).toBe(400);
    expect((await root.api('PUT', '/two-factor-policy', { superadmin: true })).status).toBe(403);
  });

  it('lets an enrolled superadmin enforce it for domain admins, who must then enrol at their next sign-in', async () => {
    await postern.deps.db.execute(
      "INSERT INTO tfa (key_id, username, authmech, secret, active) VALUES ('phone', 'root', 'totp', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 1)",
    );
    // helpdesk's own force_tfa (set above) is cleared, so only the role's policy can send it to enrolment.
    expect((await root.api('PATCH', '/admins/helpdesk', { force_tfa: false }, csrf)).status).toBe(200);
    expect((await browser('203.0.113.10').signIn('helpdesk', DESK_PASSWORD)).location).toBe('/admin');
    const changed = await root.api('PUT', '/two-factor-policy', { domainadmin: true }, csrf);
    expect(changed.status).toBe(200);
    expect(JSON.parse(changed.text)).toMatchObject({
      superadmin: false,
      domainadmin: true,
      mailbox: false,
      changes: { domainadmin: { modified_by: 'root' } },
    });
    const desk = browser('203.0.113.10');
    expect((await desk.signIn('helpdesk', DESK_PASSWORD)).location).toBe('/admin/tfa/enrol');
    expect((await desk.request('GET', '/admin')).location).toBe('/admin/login');
    expect((await desk.api('GET', '/audit')).status).toBe(401);
    const page = await desk.request('GET', '/admin/tfa/enrol');
    expect(page.text).toContain('required for your account');
    const secret = /id="totp-secret">([A-Z2-7]+)</.exec(page.text)?.[1] ?? '';
    const pageCsrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1] ?? '';
    const done = await desk.request('POST', '/admin/tfa/enrol', {
      csrf: pageCsrf,
      code: totpCodeAt(secret, stepAt(Date.now())),
    });
    expect(done.status).toBe(200);
    expect((await desk.api('GET', '/audit')).status).toBe(200);
    // Superadmins are not enforced: root2 (no authenticator) still signs in with its password.
    expect((await browser('192.0.2.91').signIn('root2', SECOND_ROOT_PASSWORD)).location).toBe('/admin');
  });

  it('enforces it for superadmins too, and an API key may change it (audited with before and after)', async () => {
    const viaKey = await fetch(`${postern.webUrl}/api/v1/two-factor-policy`, {
      method: 'PUT',
      headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ superadmin: true, domainadmin: true }),
    });
    expect(viaKey.status).toBe(200);
    expect((await browser('192.0.2.92').signIn('root2', SECOND_ROOT_PASSWORD)).location).toBe('/admin/tfa/enrol');
    // An enrolled superadmin still goes to its second factor, not to enrolment.
    expect((await browser(ROOT_IP).signIn('root', ROOT_PASSWORD)).location).toBe('/admin/login/second-factor');
    const rows = await postern.deps.db.many<{ actor: string; actor_kind: string; before_values: unknown }>(
      "SELECT actor, actor_kind, target, before_values, after_values FROM postern_audit WHERE action = 'two_factor_policy.update' ORDER BY id",
    );
    expect(rows).toEqual([
      {
        actor: 'root',
        actor_kind: 'admin',
        target: 'two_factor_policy',
        before_values: { domainadmin: false },
        after_values: { domainadmin: true },
      },
      {
        actor: 'api:config',
        actor_kind: 'api_key',
        target: 'two_factor_policy',
        before_values: { superadmin: false },
        after_values: { superadmin: true },
      },
    ]);
  });
});
