// The passdb endpoint against real MariaDB: every decision rule of DESIGN.md §3.1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from './support/env.js';
import { countHashes } from './support/hash-count.js';
import { seedAliasDomain, seedAppPassword, seedDomain, seedMailbox } from './support/seed.js';

const RIP = '203.0.113.7';
/** Characters a login name must not carry (they pass as "no control character" in ASCII-only checks). */
const ODD_USERNAMES = [
  { name: 'a NUL (C0 control)', username: 'alice\u0000@example.org' },
  { name: 'DEL (0x7f)', username: 'alice\u007f@example.org' },
  { name: 'a C1 control (0x85, NEL)', username: 'alice\u0085@example.org' },
  { name: 'a C1 control (0x9b, CSI)', username: 'alice\u009b[31m@example.org' },
  { name: 'a right-to-left override (U+202E)', username: 'alice\u202egro.elpmaxe@example.org' },
  { name: 'a bidi isolate (U+2066)', username: 'alice\u2066@example.org' },
  { name: 'a zero-width space (U+200B)', username: 'ali\u200bce@example.org' },
  { name: 'a line separator (U+2028)', username: 'alice\u2028@example.org' },
  { name: 'a lone surrogate', username: 'alice\ud800@example.org' },
];
let postern: TestPostern;
let ids: Record<string, number> = {};

async function login(username: string, password: string, service = 'imap') {
  return postern.passdb({ username, password, real_rip: RIP, service });
}

beforeAll(async () => {
  postern = await startTestPostern('passdb', { POSTERN_BCRYPT_COST: '5' });
  const { db, hashPool } = postern.deps;
  const ssha = (pw: string) => hashPool.hash(pw, 'SSHA256');
  await seedDomain(db, 'example.org');
  await seedDomain(db, 'sleepy.example', { active: 0 });
  await seedAliasDomain(db, 'example.net', 'example.org');
  await seedAliasDomain(db, 'old.example', 'example.org', { active: 0 });
  await seedMailbox(db, { username: 'alice@example.org', passwordHash: await hashPool.hash('alice pw', 'BLF-CRYPT') });
  await seedMailbox(db, { username: 'off@example.org', passwordHash: await ssha('off pw'), active: 0 });
  await seedMailbox(db, { username: 'mailonly@example.org', passwordHash: await ssha('mailonly pw'), active: 2 });
  await seedMailbox(db, { username: 'nap@sleepy.example', passwordHash: await ssha('nap pw') });
  await seedMailbox(db, { username: 'room@example.org', passwordHash: await ssha('room pw'), kind: 'location' });
  await seedMailbox(db, {
    username: 'popper@example.org',
    passwordHash: await ssha('popper pw'),
    attributes: { imap_access: '0', smtp_access: '0' },
  });
  await seedMailbox(db, {
    username: 'kc@example.org',
    passwordHash: await ssha('kc old local pw'),
    authsource: 'keycloak',
  });
  await seedMailbox(db, { username: 'oidc@example.org', passwordHash: '', authsource: 'generic-oidc' });
  ids = {
    aliceImap: await seedAppPassword(db, {
      mailbox: 'alice@example.org',
      passwordHash: await ssha('alice imap app'),
      protocols: ['imap_access'],
    }),
    aliceRevoked: await seedAppPassword(db, {
      mailbox: 'alice@example.org',
      passwordHash: await ssha('alice revoked app'),
      protocols: ['imap_access', 'smtp_access'],
      active: false,
    }),
    kcAll: await seedAppPassword(db, {
      mailbox: 'kc@example.org',
      passwordHash: await hashPool.hash('kc app', 'BLF-CRYPT'),
      protocols: ['imap_access', 'smtp_access'],
    }),
    aliceDav: await seedAppPassword(db, {
      mailbox: 'alice@example.org',
      passwordHash: await ssha('alice dav app'),
      protocols: ['dav_access'],
    }),
    aliceNoFlags: await seedAppPassword(db, {
      mailbox: 'alice@example.org',
      passwordHash: await ssha('alice flagless app'),
      protocols: [],
    }),
    popperAll: await seedAppPassword(db, {
      mailbox: 'popper@example.org',
      passwordHash: await ssha('popper every app'),
      protocols: ['imap_access', 'pop3_access', 'smtp_access', 'sieve_access', 'dav_access', 'eas_access'],
    }),
    oidcSmtp: await seedAppPassword(db, {
      mailbox: 'oidc@example.org',
      passwordHash: await ssha('oidc smtp app'),
      protocols: ['smtp_access'],
    }),
  };
});

afterAll(async () => {
  await postern?.destroy();
});

describe('POST / (Dovecot passdb)', () => {
  it('accepts the right mailbox password with 200 and the canonical username', async () => {
    const { status, body } = await login('alice@example.org', 'alice pw');
    expect(status).toBe(200);
    expect(body).toEqual({ success: true, result: 'ok', username: 'alice@example.org' });
  });

  it('answers on /dovecot/passdb as well', async () => {
    const response = await fetch(`${postern.internalUrl}/dovecot/passdb`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice@example.org', password: 'alice pw', real_rip: RIP, service: 'imap' }),
    });
    expect(response.status).toBe(200);
  });

  it('refuses a wrong password with 401 password_mismatch', async () => {
    const { status, body } = await login('alice@example.org', 'alice PW');
    expect(status).toBe(401);
    expect(body).toEqual({ success: false, result: 'password_mismatch' });
  });

  it('never trims or normalises the password', async () => {
    expect((await login('alice@example.org', 'alice pw ')).status).toBe(401);
    expect((await login('alice@example.org', ' alice pw')).status).toBe(401);
  });

  it('answers user_unknown for a mailbox that does not exist', async () => {
    const { status, body } = await login('nobody@example.org', 'whatever');
    expect(status).toBe(401);
    expect(body).toEqual({ success: false, result: 'user_unknown' });
  });

  it('spends the floor of hash verifications on an unknown user, as on a known one', async () => {
    const hashes = countHashes(postern);
    try {
      await login('nobody@example.org', 'whatever');
      // POSTERN_LOGIN_HASH_FLOOR's default; passdb-timing.test.ts compares known mailboxes.
      expect(hashes.count).toBe(4);
    } finally {
      hashes.restore();
    }
  });

  it('matches the username case-insensitively', async () => {
    const { status, body } = await login('Alice@EXAMPLE.org', 'alice pw');
    expect(status).toBe(200);
    expect(body.username).toBe('alice@example.org');
  });

  it('resolves a login through an active alias domain for a caller that takes the canonical name back', async () => {
    const { status, body } = await postern.passdb({
      username: 'alice@example.net',
      password: 'alice pw',
      real_rip: RIP,
      service: 'imap',
      resolve_alias_domains: true,
    });
    expect(status).toBe(200);
    expect(body.username).toBe('alice@example.org');
  });

  // mailcow's passwd-verify.lua (data/conf/dovecot/auth/passwd-verify.lua) sends exactly
  // username, password, real_rip and service, and ignores every answer field but `success`: its
  // Dovecot would go on with the alias name, which mailcow's SQL userdb does not know. mailcow's
  // user_login() looks the name up in `mailbox` only, so it answers 401: so does postern.
  it("answers an alias-domain name as mailcow does (401) for a caller without the flag, such as mailcow's Lua", async () => {
    const hashes = countHashes(postern);
    try {
      const reply = await login('alice@example.net', 'alice pw');
      expect(reply).toEqual({ status: 401, body: { success: false, result: 'user_unknown' } });
      // The same work as any unknown user.
      expect(hashes.count).toBe(4);
    } finally {
      hashes.restore();
    }
    const explicit = await postern.passdb({
      username: 'alice@example.net',
      password: 'alice imap app',
      real_rip: RIP,
      service: 'imap',
      resolve_alias_domains: false,
    });
    expect(explicit.status).toBe(401);
    // A refused login leaves no sasl_log row (mailcow's Lua would have had one for a login its
    // Dovecot then failed).
    const aside = await postern.passdb({
      username: 'alice@example.net',
      password: 'alice pw',
      real_rip: '198.51.100.77',
      service: 'imap',
    });
    expect(aside.status).toBe(401);
    await postern.deps.saslLog.flush();
    expect(await postern.deps.db.many('SELECT username FROM sasl_log WHERE real_rip = ?', ['198.51.100.77'])).toEqual(
      [],
    );
    // The canonical name itself is not affected.
    expect((await login('alice@example.org', 'alice pw')).status).toBe(200);
  });

  it('refuses a resolve_alias_domains flag that is not a boolean', async () => {
    const reply = await postern.passdb({
      username: 'alice@example.net',
      password: 'alice pw',
      real_rip: RIP,
      service: 'imap',
      resolve_alias_domains: 'yes',
    });
    expect(reply.status).toBe(400);
  });

  it('does not resolve through an inactive alias domain', async () => {
    const reply = await postern.passdb({
      username: 'alice@old.example',
      password: 'alice pw',
      real_rip: RIP,
      service: 'imap',
      resolve_alias_domains: true,
    });
    expect(reply.body.result).toBe('user_unknown');
  });

  it('never lets a resource mailbox (location, thing, group) log in', async () => {
    expect((await login('room@example.org', 'room pw')).body.result).toBe('user_unknown');
  });

  it.each([
    { name: 'an inactive mailbox', user: 'off@example.org', password: 'off pw' },
    { name: 'a receive-only mailbox (active = 2)', user: 'mailonly@example.org', password: 'mailonly pw' },
    { name: 'a mailbox of an inactive domain', user: 'nap@sleepy.example', password: 'nap pw' },
  ])('refuses $name as user_disabled when the password is right', async ({ user, password }) => {
    const { status, body } = await login(user, password);
    expect(status).toBe(401);
    expect(body.result).toBe('user_disabled');
  });

  it('does not reveal that a mailbox is disabled to someone with a wrong password', async () => {
    expect((await login('off@example.org', 'guess')).body.result).toBe('password_mismatch');
  });

  it.each([
    { service: 'imap', result: 'user_disabled' },
    { service: 'smtp', result: 'user_disabled' },
    { service: 'submission', result: 'user_disabled' },
    { service: 'pop3', result: 'ok' },
    { service: 'sieve', result: 'ok' },
  ])('applies the mailbox protocol attributes: $service → $result', async ({ service, result }) => {
    expect((await login('popper@example.org', 'popper pw', service)).body.result).toBe(result);
  });

  it('accepts an app password on a protocol it allows', async () => {
    const { status, body } = await login('alice@example.org', 'alice imap app', 'imap');
    expect(status).toBe(200);
    expect(body.result).toBe('ok');
  });

  it('refuses an app password on a protocol it does not allow', async () => {
    expect((await login('alice@example.org', 'alice imap app', 'submission')).body.result).toBe('password_mismatch');
  });

  it('refuses a deactivated app password', async () => {
    expect((await login('alice@example.org', 'alice revoked app', 'imap')).body.result).toBe('password_mismatch');
  });

  it('refuses the mailbox password of an IdP-sourced mailbox, even the old local one', async () => {
    expect((await login('kc@example.org', 'kc old local pw')).body.result).toBe('password_mismatch');
    expect((await login('oidc@example.org', '')).body.result).toBe('password_mismatch');
  });

  it('accepts app passwords of IdP-sourced mailboxes', async () => {
    expect((await login('kc@example.org', 'kc app', 'imap')).status).toBe(200);
    expect((await login('oidc@example.org', 'oidc smtp app', 'smtp')).status).toBe(200);
    expect((await login('oidc@example.org', 'oidc smtp app', 'imap')).status).toBe(401);
  });

  it("writes mailcow's sasl_log row for each success, with the app password id or 0", async () => {
    await login('alice@example.org', 'alice pw', 'pop3');
    await login('alice@example.org', 'alice imap app', 'imap');
    await postern.deps.saslLog.flush();
    const rows = await postern.deps.db.many<{ service: string; app_password: number; real_rip: string }>(
      'SELECT service, app_password, real_rip FROM sasl_log WHERE username = ? ORDER BY service',
      ['alice@example.org'],
    );
    expect(rows).toEqual(
      expect.arrayContaining([
        { service: 'pop3', app_password: 0, real_rip: RIP },
        { service: 'imap', app_password: ids.aliceImap, real_rip: RIP },
      ]),
    );
  });

  it("accepts mailcow 2025-03's protocol object in place of service", async () => {
    const { status } = await postern.passdb({
      username: 'popper@example.org',
      password: 'popper pw',
      real_rip: RIP,
      protocol: { pop3: true },
    });
    expect(status).toBe(200);
  });

  it('writes SOGo, DAV and EAS labels in upper case like mailcow', async () => {
    const { status } = await postern.passdb({
      username: 'alice@example.org',
      password: 'alice pw',
      real_rip: '198.51.100.9',
      service: 'sogo',
    });
    expect(status).toBe(200);
    await postern.deps.saslLog.flush();
    const row = await postern.deps.db.one<{ service: string }>('SELECT service FROM sasl_log WHERE real_rip = ?', [
      '198.51.100.9',
    ]);
    expect(row?.service).toBe('SOGO');
  });
});

// A service name postern does not know skipped the mailbox's access flags
// (popper has imap and smtp off and got 200 for lmtp). Dovecot's LMTP never authenticates with a
// password and `doveadm auth test` says "doveadm" unless told `-x service=imap`; the rest are not
// Dovecot services at all (imaps is still "imap" to Dovecot) or live only on Object.prototype.
describe('service names postern does not know', () => {
  const UNKNOWN = [
    'lmtp',
    'doveadm',
    'imaps',
    'x',
    'constructor',
    'toString',
    '__proto__',
    'hasOwnProperty',
    'NONE',
    'SSO',
  ];

  it.each(UNKNOWN)('denies %s for the right mailbox password, app password or none', async (service) => {
    for (const [username, password] of [
      ['popper@example.org', 'popper pw'],
      ['popper@example.org', 'popper every app'],
      ['alice@example.org', 'alice pw'],
      ['alice@example.org', 'alice flagless app'],
      ['alice@example.org', 'wrong'],
      ['nobody@example.org', 'whatever'],
    ] as const) {
      const { status, body } = await login(username, password, service);
      expect({ status, body }, `${service} ${username} ${password}`).toEqual({
        status: 401,
        body: { success: false, result: 'user_disabled' },
      });
    }
  });

  it('denies the mailcow 2025-03 protocol object naming an unknown service too', async () => {
    const { status } = await postern.passdb({
      username: 'popper@example.org',
      password: 'popper pw',
      real_rip: RIP,
      protocol: { lmtp: true },
    });
    expect(status).toBe(401);
  });

  it('spends no hash and writes no sasl_log row on an unknown service', async () => {
    const hashes = countHashes(postern);
    try {
      // A password never seen before: no cached verdict could hide a hash.
      expect((await login('alice@example.org', 'a fresh guess 7f3a', 'doveadm')).status).toBe(401);
      expect((await login('alice@example.org', 'alice pw', 'lmtp')).status).toBe(401);
      expect(hashes.count).toBe(0);
    } finally {
      hashes.restore();
    }
    await postern.deps.saslLog.flush();
    const rows = await postern.deps.db.many('SELECT service FROM sasl_log WHERE service IN (?, ?)', [
      'doveadm',
      'lmtp',
    ]);
    expect(rows).toEqual([]);
  });

  // Each name was a new metrics series for the life of the process.
  it('counts unknown names in one other series on /metrics', async () => {
    for (let index = 0; index < 300; index += 1) {
      expect((await login('nobody@example.org', 'x', `svc-${index}`)).status).toBe(401);
    }
    const text = await (await fetch(`${postern.internalUrl}/metrics`)).text();
    const services = new Set(
      [...text.matchAll(/^postern_auth_attempts_total\{[^}]*service="([^"]*)"/gm)].map((match) => match[1]),
    );
    expect([...services].filter((service) => service?.startsWith('svc-'))).toEqual([]);
    expect(services.has('other')).toBe(true);
    const other = /^postern_auth_attempts_total\{service="other",source="none",result="user_disabled"\} (\d+)$/m.exec(
      text,
    );
    expect(Number(other?.[1])).toBeGreaterThanOrEqual(300);
  });

  it('keeps the known services working for the same mailbox', async () => {
    expect((await login('popper@example.org', 'popper pw', 'pop3')).status).toBe(200);
    expect((await login('popper@example.org', 'popper pw', 'sieve')).status).toBe(200);
    expect((await login('popper@example.org', 'popper pw', 'managesieve')).status).toBe(200);
    expect((await login('alice@example.org', 'alice pw', 'IMAP')).status).toBe(200);
  });
});

// SOGo logs into IMAP, so an app password used there needs its IMAP flag (as in
// mailcow 2025-03b; mailcow 2025-05 and later ignore the flags on SOGo's logins, see README).
describe('app passwords on SOGo logins', () => {
  it.each([
    { password: 'alice imap app', status: 200 },
    { password: 'alice dav app', status: 401 },
    { password: 'alice flagless app', status: 401 },
    { password: 'alice pw', status: 200 },
  ])('SOGO with $password answers $status', async ({ password, status }) => {
    expect((await login('alice@example.org', password, 'SOGO')).status).toBe(status);
  });
});

describe('the listener fast path', () => {
  // The internal listener answers POST / and /dovecot/passdb itself, before hono; a URL with a
  // query string is not taken by the fast path and reaches the hono route instead.
  const post = async (path: string, body: string, contentType = 'application/json') => {
    const response = await fetch(`${postern.internalUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body,
    });
    return { status: response.status, type: response.headers.get('content-type'), body: await response.json() };
  };
  const good = JSON.stringify({ username: 'alice@example.org', password: 'alice pw', real_rip: RIP, service: 'imap' });
  const wrong = JSON.stringify({ username: 'alice@example.org', password: 'nope', real_rip: RIP, service: 'imap' });

  it.each([
    { name: 'a success', body: good, status: 200 },
    { name: 'a wrong password', body: wrong, status: 401 },
    { name: 'a body that is not JSON', body: '{"username":', status: 400 },
    {
      name: 'an invalid field',
      body: '{"username":"a b","password":"x","real_rip":"::1","service":"imap"}',
      status: 400,
    },
    { name: 'a body not declared as JSON', body: good, contentType: 'text/plain', status: 400 },
    ...ODD_USERNAMES.map(({ name, username }) => ({
      name: `a username with ${name}`,
      body: JSON.stringify({ username, password: 'alice pw', real_rip: RIP, service: 'imap' }),
      status: 400,
    })),
  ])('answers $name exactly as the hono route does', async ({ body, contentType, status }) => {
    for (const path of ['/', '/dovecot/passdb']) {
      const fast = await post(path, body, contentType);
      const viaHono = await post(`${path}?through=hono`, body, contentType);
      expect(fast.status).toBe(status);
      expect(fast).toEqual(viaHono);
    }
  });

  it('leaves other methods and paths to hono', async () => {
    const response = await fetch(`${postern.internalUrl}/dovecot/passdb`, { method: 'GET' });
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });
});

describe('POST / with malformed requests', () => {
  it.each(ODD_USERNAMES)(
    'refuses a username with $name with 400, as other control characters',
    async ({ username }) => {
      const response = await postern.passdb({ username, password: 'alice pw', real_rip: RIP, service: 'imap' });
      expect(response.status).toBe(400);
      expect((response.body.error as { message: string }).message).toMatch(/username: must not contain/);
    },
  );

  it('still accepts a username with letters outside ASCII', async () => {
    const response = await postern.passdb({
      username: 'zoë@example.org',
      password: 'x',
      real_rip: RIP,
      service: 'imap',
    });
    expect(response.status).toBe(401);
  });

  it.each([
    { name: 'a non-JSON body', body: 'username=alice', message: /not valid JSON/ },
    {
      name: 'a missing password',
      body: { username: 'a@example.org', real_rip: RIP, service: 'imap' },
      message: /password/,
    },
    { name: 'a missing username', body: { password: 'x', real_rip: RIP, service: 'imap' }, message: /username/ },
    {
      name: 'a missing real_rip',
      body: { username: 'a@example.org', password: 'x', service: 'imap' },
      message: /real_rip/,
    },
    {
      name: 'a real_rip that is not an IP',
      body: { username: 'a@example.org', password: 'x', real_rip: 'localhost', service: 'imap' },
      message: /real_rip: must be an IP address/,
    },
    {
      name: 'no service at all',
      body: { username: 'a@example.org', password: 'x', real_rip: RIP },
      message: /service/,
    },
    {
      name: 'a protocol object naming two services',
      body: { username: 'a@example.org', password: 'x', real_rip: RIP, protocol: { imap: true, pop3: true } },
      message: /service/,
    },
    {
      name: 'a non-string password',
      body: { username: 'a@example.org', password: 12, real_rip: RIP, service: 'imap' },
      message: /password/,
    },
    { name: 'a JSON array', body: [], message: /body/ },
  ])('answers 400 with a clear message for $name', async ({ body, message }) => {
    const response = await postern.passdb(body);
    expect(response.status).toBe(400);
    expect((response.body.error as { message: string }).message).toMatch(message);
  });

  it('refuses a body over 16 KiB with 400', async () => {
    const response = await postern.passdb({
      username: 'alice@example.org',
      password: 'x'.repeat(17 * 1024),
      real_rip: RIP,
      service: 'imap',
    });
    expect(response.status).toBe(400);
    expect((response.body.error as { message: string }).message).toMatch(/larger than 16384 bytes/);
  });

  it('refuses a body that is not declared as JSON', async () => {
    const response = await fetch(`${postern.internalUrl}/`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: '{}',
    });
    expect(response.status).toBe(400);
  });

  it('never echoes the password in an error', async () => {
    const response = await postern.passdb({
      username: 'a b',
      password: 'hunter2-secret',
      real_rip: RIP,
      service: 'imap',
    });
    expect(response.status).toBe(400);
    expect(JSON.stringify(response.body)).not.toContain('hunter2-secret');
  });
});
