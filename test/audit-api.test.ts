// GET /api/v1/audit against real MariaDB: filters, keyset paging, and a domain admin's view
// narrowed to entries about its own domains; the trail cannot be changed through the API.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '../src/storage/audit.js';
import { startTestPostern, type TestPostern } from './support/env.js';
import { seedAdminAccount, seedDomain, seedMailbox, seedTfa } from './support/seed.js';

const API_KEY = 'config-api-key-0123456789abcdefghijklmnop';
const ORIGIN = 'https://admin.example.org';
const DESK_PASSWORD = 'helpdesk passphrase 02';
let postern: TestPostern;

async function get(path: string, headers: Record<string, string> = { 'x-api-key': API_KEY }) {
  const response = await fetch(`${postern.webUrl}/api/v1${path}`, { headers });
  // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
  return { status: response.status, body: (await response.json()) as any };
}

beforeAll(async () => {
  postern = await startTestPostern('audit_api', {
    POSTERN_API_KEY: API_KEY,
    POSTERN_PUBLIC_URL: ORIGIN,
    POSTERN_BCRYPT_COST: '4',
    POSTERN_BAN_USER_THRESHOLD: '3',
  });
  const { db } = postern.deps;
  await seedDomain(db, 'example.org');
  await seedDomain(db, 'other.example');
  await seedAdminAccount(postern, {
    username: 'helpdesk',
    password: DESK_PASSWORD,
    superadmin: false,
    domains: ['example.org'],
  });
  for (let i = 0; i < 5; i++) {
    await recordAudit(db, {
      actor: { kind: 'admin', name: 'root', role: 'superadmin' },
      action: 'mailbox.authsource',
      target: `user${i}@example.org`,
      ip: '192.0.2.1',
    });
  }
  await recordAudit(db, {
    actor: { kind: 'admin', name: 'root', role: 'superadmin' },
    action: 'mailbox.authsource',
    target: 'bob@other.example',
    ip: '192.0.2.2',
  });
  await recordAudit(db, {
    actor: { kind: 'admin', name: 'anonymous' },
    action: 'admin.login.failed',
    detail: { reason: 'unknown_user' },
    ip: '203.0.113.9',
  });
  await recordAudit(db, {
    actor: { kind: 'admin', name: 'root', role: 'superadmin' },
    action: 'tfa.reset',
    target: 'helpdesk',
  });
  await recordAudit(db, {
    actor: { kind: 'admin', name: 'root', role: 'superadmin' },
    action: 'domain.update',
    target: 'domain:example.org',
    domain: 'Example.ORG',
    before: { active: true, client_secret: 'hunter2-before' },
    after: { active: false, client_secret: 'hunter2-after' },
    ip: '192.0.2.7',
  });
  await recordAudit(db, {
    actor: { kind: 'system', name: 'scheduler' },
    action: 'sync.apply',
    outcome: 'failure',
    detail: { errors: 2, nested: [{ password: 'hunter2-nested', token: 'hunter2-token', recovery_codes_left: 3 }] },
  });
  // A writer that predates the columns (direct INSERT): judged by its action suffix and target.
  await db.execute(
    "INSERT INTO postern_audit (actor, action, target, ip) VALUES ('alice@example.org', 'portal.login.refused', 'alice@example.org', '198.51.100.4')",
  );
});

afterAll(async () => {
  await postern?.destroy();
});

describe('GET /api/v1/audit', () => {
  it('lists newest first and pages by keyset without gaps or repeats', async () => {
    const first = await get('/audit?limit=3&action=mailbox.authsource');
    expect(first.body.entries[0]).toMatchObject({
      actor: 'root',
      actor_kind: 'admin',
      actor_role: 'superadmin',
      outcome: 'success',
    });
    expect(first.status).toBe(200);
    expect(first.body.entries.map((e: { target: string }) => e.target)).toEqual([
      'bob@other.example',
      'user4@example.org',
      'user3@example.org',
    ]);
    const second = await get(first.body.next.replace('/api/v1', ''));
    expect(second.body.entries.map((e: { target: string }) => e.target)).toEqual([
      'user2@example.org',
      'user1@example.org',
      'user0@example.org',
    ]);
    const third = await get(second.body.next.replace('/api/v1', ''));
    expect(third.body).toEqual({ entries: [], next: null });
  });

  it.each([
    ['?ip=192.0.2.2', ['bob@other.example']],
    ['?action=tfa.', ['helpdesk']],
    ['?outcome=failure', ['alice@example.org', null, null]],
    ['?outcome=failure&action=admin.', [null]],
    ['?ip=192.0.2.7&outcome=success', ['domain:example.org']],
    ['?target=user1@example.org', ['user1@example.org']],
    ['?actor=anonymous', [null]],
    [`?since=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`, []],
  ])('filters by %s', async (query, targets) => {
    const response = await get(`/audit${query}`);
    expect(response.status).toBe(200);
    expect(response.body.entries.map((e: { target: string | null }) => e.target)).toEqual(targets);
  });

  it.each(['?limit=0', '?limit=501', '?since=yesterday', '?action=DROP%20TABLE', '?unknown=1'])(
    'refuses the query %s with 400',
    async (query) => {
      expect((await get(`/audit${query}`)).status).toBe(400);
    },
  );

  it("shows a domain admin only entries about its domains' addresses", async () => {
    const login = await fetch(`${postern.webUrl}/admin/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'helpdesk', password: DESK_PASSWORD }).toString(),
    });
    const cookie = (login.headers.getSetCookie().find((c) => c.startsWith('postern_admin=')) ?? '').split(';')[0] ?? '';
    const response = await get('/audit?limit=500', { cookie });
    expect(response.status).toBe(200);
    const targets = response.body.entries.map((e: { target: string | null }) => e.target);
    // Five mailbox entries, the domain object, the legacy portal row; nothing of other.example.
    expect(targets.length).toBe(7);
    expect(targets).toContain('domain:example.org');
    for (const entry of response.body.entries) expect(entry.domain).toBe('example.org');
  });

  it('returns actor kind and role, the changed fields before and after, and never a secret value', async () => {
    const { body } = await get('/audit?action=domain.update');
    expect(body.entries).toEqual([
      expect.objectContaining({
        actor: 'root',
        actor_kind: 'admin',
        actor_role: 'superadmin',
        outcome: 'success',
        domain: 'example.org',
        ip: '192.0.2.7',
        before: { active: true, client_secret: '[redacted]' },
        after: { active: false, client_secret: '[redacted]' },
      }),
    ]);
    const system = await get('/audit?actor=scheduler');
    expect(system.body.entries[0]).toMatchObject({
      actor_kind: 'system',
      outcome: 'failure',
      detail: { errors: 2, nested: [{ password: '[redacted]', token: '[redacted]', recovery_codes_left: 3 }] },
    });
    const table = JSON.stringify(await postern.deps.db.many('SELECT * FROM postern_audit'));
    expect(table).not.toContain('hunter2');
  });

  it('cannot change the trail: no write method exists', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const response = await fetch(`${postern.webUrl}/api/v1/audit`, { method, headers: { 'x-api-key': API_KEY } });
      expect(response.status).toBe(404);
    }
  });
});

// Security events that are written off the request path (audit/audit-writer.ts): refused mail
// logins for a reason other than a wrong secret, bans placed and lifted. Through the real passdb.
describe('security events in the trail', () => {
  const sha256 = (password: string) => `{SHA256}${createHash('sha256').update(password).digest('base64')}`;
  const login = (username: string, password: string, realRip = '198.51.100.30', service = 'imap') =>
    postern.passdb({ username, password, real_rip: realRip, service });
  const events = async (action: string) => {
    await postern.deps.auditWriter.flush();
    return (await get(`/audit?action=${action}&limit=500`)).body.entries as {
      actor: string;
      actor_kind: string;
      target: string | null;
      ip: string | null;
      outcome: string;
      detail: Record<string, unknown>;
    }[];
  };

  beforeAll(async () => {
    const { db } = postern.deps;
    await seedMailbox(db, { username: 'dave@example.org', passwordHash: sha256('dave right pw'), active: 0 });
    await seedMailbox(db, {
      username: 'erin@example.org',
      passwordHash: sha256('erin right pw'),
      attributes: { pop3_access: '0' },
    });
    await seedMailbox(db, { username: 'fay@example.org', passwordHash: sha256('fay right pw') });
    await seedTfa(db, { username: 'fay@example.org', authmech: 'totp', active: 1 });
    await seedMailbox(db, { username: 'gus@example.org', passwordHash: sha256('gus right pw') });
  });

  it('records a refused mail login (disabled, service, 2FA rule) with service and IP, once per window', async () => {
    for (let i = 0; i < 3; i++) expect((await login('dave@example.org', 'dave right pw')).status).toBe(401);
    expect((await login('erin@example.org', 'erin right pw', '198.51.100.31', 'pop3')).status).toBe(401);
    expect((await login('fay@example.org', 'fay right pw', '198.51.100.32')).status).toBe(401);
    const entries = await events('mail_login.refused');
    expect(entries.map((entry) => [entry.target, entry.ip, entry.detail])).toEqual([
      ['fay@example.org', '198.51.100.32', { reason: 'tfa_required', service: 'imap' }],
      ['erin@example.org', '198.51.100.31', { reason: 'service_denied', service: 'pop3' }],
      ['dave@example.org', '198.51.100.30', { reason: 'mailbox_inactive', service: 'imap' }],
    ]);
    for (const entry of entries) expect(entry).toMatchObject({ actor_kind: 'mailbox', outcome: 'failure' });
  });

  it('writes no row for ordinary logins, successes or plain wrong passwords', async () => {
    const before = (await get('/audit?limit=500')).body.entries.length;
    expect((await login('gus@example.org', 'gus right pw')).status).toBe(200);
    expect((await login('gus@example.org', 'a wrong pw')).status).toBe(401);
    expect((await login('nobody@example.org', 'whatever')).status).toBe(401);
    await postern.deps.auditWriter.flush();
    expect((await get('/audit?limit=500')).body.entries.length).toBe(before);
  });

  it('records a ban when it is placed, the logins it refuses, and its lifting', async () => {
    for (const password of ['guess 1', 'guess 2', 'guess 3']) {
      expect((await login('gus@example.org', password, '203.0.113.50')).status).toBe(401);
    }
    // Banned now: even the right password is refused from a client that never logged gus in.
    expect((await login('gus@example.org', 'gus right pw', '203.0.113.51')).status).toBe(401);
    const placed = await events('ban.place');
    expect(placed).toEqual([
      expect.objectContaining({
        actor: 'rate-limiter',
        actor_kind: 'system',
        target: 'gus@example.org',
        detail: { scope: 'user', ban_seconds: 1800, limiter: 'mail' },
      }),
    ]);
    const refused = (await events('mail_login.refused')).filter((entry) => entry.detail.reason === 'rate_limited');
    // One row per banned subject per window, however many logins the ban refuses (the earlier
    // test's wrong password counted too, so the third guess already met the ban).
    expect(refused.map((entry) => [entry.target, entry.detail.banned_scope])).toEqual([['gus@example.org', 'user']]);
    expect(['203.0.113.50', '203.0.113.51']).toContain(refused[0]?.ip);
    const lift = await fetch(`${postern.webUrl}/api/v1/bans/user/gus@example.org`, {
      method: 'DELETE',
      headers: { 'x-api-key': API_KEY },
    });
    expect(lift.status).toBe(200);
    expect(await events('ban.lift')).toEqual([
      expect.objectContaining({ actor: 'api:config', actor_kind: 'api_key', target: 'gus@example.org' }),
    ]);
  });

  it('records the bans of the portal, admin sign-in and portal-code limiters too, each named', async () => {
    const { webLoginLimiter, adminLoginLimiter, portalCodeLimiter } = postern.deps;
    const limiters = [
      ['web', webLoginLimiter, 'hal@example.org'],
      ['admin', adminLoginLimiter, 'helpdesk-hal'],
      ['portal_code', portalCodeLimiter, 'ida@example.org'],
    ] as const;
    for (const [, limiter, username] of limiters) {
      for (const password of ['guess 1', 'guess 2', 'guess 3']) {
        await limiter.recordFailure({ ip: '203.0.113.60', username, password });
      }
    }
    const placed = (await events('ban.place')).filter((entry) => entry.detail.limiter !== 'mail');
    expect(placed.map((entry) => [entry.detail.limiter, entry.detail.scope, entry.target]).sort()).toEqual([
      ['admin', 'user', 'helpdesk-hal'],
      ['portal_code', 'user', 'ida@example.org'],
      ['web', 'user', 'hal@example.org'],
    ]);
    for (const entry of placed) expect(entry).toMatchObject({ actor: 'rate-limiter', actor_kind: 'system' });
  });

  it('holds no password that was tried, right or wrong', async () => {
    await postern.deps.auditWriter.flush();
    const table = JSON.stringify(await postern.deps.db.many('SELECT * FROM postern_audit'));
    for (const secret of ['right pw', 'wrong pw', 'guess ', 'whatever', DESK_PASSWORD])
      expect(table).not.toContain(secret);
  });
});
