// /api/v1/api-keys against real MariaDB and Redis: a superadmin creates keys with a role, access,
// networks and expiry; the key is answered once and only its SHA-256 is stored; keys act with
// their role and domains on every admin route, read-only keys never write, networks are checked
// against the client address POSTERN_TRUSTED_PROXIES resolves, expired and revoked keys are
// refused (and audited), last use is recorded at most once a minute. mailcow's `api` keys and
// POSTERN_API_KEY keep working as superadmin keys.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from './support/env.js';
import { seedDomain, seedMailbox } from './support/seed.js';

const API_KEY = 'config-api-key-0123456789abcdefghijklmnop';
const MAILCOW_RW_KEY = 'MAILCOW-RW-KEY-FEDCBA-654321';
const MAILCOW_RO_KEY = 'MAILCOW-RO-KEY-FEDCBA-654321';
let postern: TestPostern;
/** Every key the API handed out, to prove none is stored or audited. */
const issued: string[] = [];
const texts: string[] = [];

async function api(method: string, path: string, options: { key?: string | null; body?: unknown; from?: string } = {}) {
  const headers: Record<string, string> = {};
  const key = options.key === undefined ? API_KEY : options.key;
  if (key !== null) headers['x-api-key'] = key;
  if (options.from) headers['x-forwarded-for'] = options.from;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${postern.webUrl}/api/v1${path}`, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  texts.push(text);
  // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
  return { status: response.status, headers: response.headers, body: JSON.parse(text) as any };
}

async function createKey(body: Record<string, unknown>, key: string = API_KEY) {
  const response = await api('POST', '/api-keys', { key, body });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  issued.push(response.body.key);
  return response.body as { id: number; key: string; [field: string]: unknown };
}

beforeAll(async () => {
  postern = await startTestPostern('api_keys', { POSTERN_API_KEY: API_KEY, POSTERN_BCRYPT_COST: '4' });
  const { db } = postern.deps;
  await seedDomain(db, 'example.org');
  await seedDomain(db, 'other.example');
  await seedMailbox(db, { username: 'alice@example.org', passwordHash: '{PLAIN}unused' });
  await seedMailbox(db, { username: 'bob@other.example', passwordHash: '{PLAIN}unused' });
  for (const [key, access] of [
    [MAILCOW_RW_KEY, 'rw'],
    [MAILCOW_RO_KEY, 'ro'],
  ] as const) {
    await db.execute("INSERT INTO api (api_key, allow_from, access, active) VALUES (?, '127.0.0.1', ?, 1)", [
      key,
      access,
    ]);
  }
});

afterAll(async () => {
  await postern?.destroy();
});

describe('creating and listing keys', () => {
  it('answers the key once, stores only its SHA-256, and lists keys without it', async () => {
    const created = await createKey({
      name: 'helpdesk script',
      role: 'domainadmin',
      domains: ['Example.ORG'],
      access: 'rw',
      allow_from: ['127.0.0.1', '192.0.2.0/24'],
    });
    expect(created).toMatchObject({
      name: 'helpdesk script',
      role: 'domainadmin',
      domains: ['example.org'],
      access: 'rw',
      allow_from: ['127.0.0.1', '192.0.2.0/24'],
      expires_at: null,
      state: 'active',
      created_by: 'api:config',
      last_used_at: null,
    });
    expect(created.key).toMatch(/^postern_[A-Za-z0-9_-]{43}$/);
    expect(created.hint).toBe(`${created.key.slice(0, 12)}…`);

    const row = await postern.deps.db.one<Record<string, unknown>>('SELECT * FROM postern_api_keys WHERE id = ?', [
      created.id,
    ]);
    expect(row?.key_hash).toBe(createHash('sha256').update(created.key).digest('hex'));
    expect(JSON.stringify(row)).not.toContain(created.key.slice(8));

    const list = await api('GET', '/api-keys');
    expect(list.status).toBe(200);
    expect(list.body.api_keys.map((key: { id: number }) => key.id)).toContain(created.id);
    const one = await api('GET', `/api-keys/${created.id}`);
    expect(one.body).toMatchObject({ id: created.id, name: 'helpdesk script' });
    for (const text of [JSON.stringify(list.body), JSON.stringify(one.body)]) {
      expect(text).not.toContain(created.key.slice(8));
      expect(text).not.toContain('key_hash');
    }
  });

  it.each([
    [{ name: 'x', role: 'superadmin', allow_from: ['10.0.0.0/33'] }, /not an IP address or CIDR network/],
    [{ name: 'x', role: 'superadmin', allow_from: ['example.org'] }, /not an IP address or CIDR network/],
    [{ name: 'x', role: 'superadmin', allow_from: [] }, /allow_from/],
    [{ name: 'x', role: 'superadmin' }, /allow_from/],
    [{ name: 'x', role: 'domainadmin', allow_from: ['::/0'] }, /domains/],
    [{ name: 'x', role: 'domainadmin', domains: ['nowhere.example'], allow_from: ['::/0'] }, /no such domain/],
    [{ name: 'x', role: 'superadmin', domains: ['example.org'], allow_from: ['::/0'] }, /only a domainadmin/],
    [
      { name: 'x', role: 'superadmin', allow_from: ['::/0'], expires_at: '2001-01-01T00:00:00Z' },
      /must be in the future/,
    ],
    [{ name: 'x', role: 'root', allow_from: ['::/0'] }, /role/],
    [{ name: 'x', role: 'superadmin', allow_from: ['::/0'], access: 'admin' }, /access/],
    [{ name: '', role: 'superadmin', allow_from: ['::/0'] }, /name/],
    [{ name: 'x', role: 'superadmin', allow_from: ['::/0'], key: 'chosen' }, /key/],
  ])('refuses %j with 400', async (body, message) => {
    const response = await api('POST', '/api-keys', { body });
    expect(response.status).toBe(400);
    expect(response.body.error.message).toMatch(message);
  });
});

describe('using keys', () => {
  it('acts as a domain admin of its domains: 404 outside them, 403 for what the role never reaches', async () => {
    const { key } = await createKey({
      name: 'desk rw',
      role: 'domainadmin',
      domains: ['example.org'],
      access: 'rw',
      allow_from: ['127.0.0.0/8'],
    });
    expect((await api('GET', '/mailboxes/alice@example.org', { key })).status).toBe(200);
    expect((await api('GET', '/mailboxes/bob@other.example', { key })).status).toBe(404);
    expect((await api('GET', '/mailboxes/nobody@other.example', { key })).status).toBe(404);
    expect((await api('GET', '/admins', { key })).status).toBe(403);
    expect((await api('GET', '/api-keys', { key })).status).toBe(403);
    expect((await api('GET', '/bans', { key })).status).toBe(403);
    const write = await api('PUT', '/mailboxes/alice@example.org/authsource', {
      key,
      body: { authsource: 'mailcow' },
    });
    expect(write.status).toBe(200);
  });

  it('refuses every write to a read-only key, also a superadmin one', async () => {
    const { key } = await createKey({
      name: 'reporting',
      role: 'superadmin',
      access: 'ro',
      allow_from: ['::/0', '0.0.0.0/0'],
    });
    expect((await api('GET', '/admins', { key })).status).toBe(200);
    for (const [method, path] of [
      ['POST', '/api-keys'],
      ['DELETE', '/api-keys/1'],
      ['PUT', '/mailboxes/alice@example.org/authsource'],
      ['POST', '/admins'],
    ] as const) {
      const response = await api(method, path, { key, body: {} });
      expect(response.status, `${method} ${path}`).toBe(403);
      expect(response.body.error.message).toMatch(/read-only/);
    }
  });

  it('checks allow_from against the client address the trusted proxy forwarded', async () => {
    const { key } = await createKey({
      name: 'from docs net',
      role: 'superadmin',
      allow_from: ['192.0.2.0/24', '2001:db8::/32'],
    });
    // The test client is 127.0.0.1, a trusted proxy by default: the forwarded address counts.
    expect((await api('GET', '/admins', { key })).status).toBe(401);
    expect((await api('GET', '/admins', { key, from: '192.0.2.44' })).status).toBe(200);
    expect((await api('GET', '/admins', { key, from: '2001:db8::7' })).status).toBe(200);
    expect((await api('GET', '/admins', { key, from: '198.51.100.1' })).status).toBe(401);
  });

  it('refuses an expired key like an unknown one, and audits the refusal once per window', async () => {
    const created = await createKey({
      name: 'short-lived',
      role: 'superadmin',
      allow_from: ['127.0.0.1'],
      expires_at: new Date(Date.now() + 3_600_000).toISOString(),
    });
    expect((await api('GET', '/admins', { key: created.key })).status).toBe(200);
    await postern.deps.db.execute('UPDATE postern_api_keys SET expires_at = NOW() - INTERVAL 1 SECOND WHERE id = ?', [
      created.id,
    ]);
    const unknown = await api('GET', '/admins', { key: `postern_${'A'.repeat(43)}` });
    const expired = await api('GET', '/admins', { key: created.key });
    expect(expired.status).toBe(401);
    expect(expired.body).toEqual(unknown.body);
    expect((await api('GET', '/admins', { key: created.key })).status).toBe(401);
    await postern.deps.auditWriter.flush();
    const rows = await postern.deps.db.many<{ actor: string; actor_kind: string; outcome: string; detail: unknown }>(
      "SELECT actor, actor_kind, outcome, detail FROM postern_audit WHERE action = 'api_key.refused' AND target = ?",
      [`api-key:${created.id}`],
    );
    expect(
      rows.map((row) => ({ ...row, detail: typeof row.detail === 'string' ? JSON.parse(row.detail) : row.detail })),
    ).toEqual([
      {
        actor: `api-key:${created.id}`,
        actor_kind: 'api_key',
        outcome: 'failure',
        detail: { reason: 'expired', method: 'GET' },
      },
    ]);
    expect((await api('GET', `/api-keys/${created.id}`)).body.state).toBe('expired');
  });

  it('records the last use, at most once a minute', async () => {
    const created = await createKey({ name: 'busy script', role: 'superadmin', allow_from: ['127.0.0.1'] });
    expect((await api('GET', '/admins', { key: created.key })).status).toBe(200);
    const lastUsed = async () => {
      for (let attempt = 0; attempt < 50; attempt++) {
        const row = await postern.deps.db.one<{ at: string | null; ip: string | null }>(
          'SELECT DATE_FORMAT(last_used_at, "%Y-%m-%d %H:%i:%s") AS at, last_used_ip AS ip FROM postern_api_keys WHERE id = ?',
          [created.id],
        );
        if (row?.at) return row;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return undefined;
    };
    expect((await lastUsed())?.ip).toBe('127.0.0.1');
    await postern.deps.db.execute("UPDATE postern_api_keys SET last_used_at = '2001-01-01 00:00:00' WHERE id = ?", [
      created.id,
    ]);
    for (let i = 0; i < 5; i++) expect((await api('GET', '/admins', { key: created.key })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await lastUsed())?.at).toBe('2001-01-01 00:00:00');
  });

  it('revokes with DELETE: the key stops working at once and stays listed as revoked', async () => {
    const created = await createKey({ name: 'to revoke', role: 'superadmin', access: 'rw', allow_from: ['127.0.0.1'] });
    expect((await api('GET', '/admins', { key: created.key })).status).toBe(200);
    expect((await api('DELETE', `/api-keys/${created.id}`)).body).toEqual({ success: true });
    expect((await api('GET', '/admins', { key: created.key })).status).toBe(401);
    expect((await api('DELETE', `/api-keys/${created.id}`)).status).toBe(404);
    expect((await api('DELETE', '/api-keys/999999')).status).toBe(404);
    expect((await api('DELETE', '/api-keys/abc')).status).toBe(400);
    expect((await api('GET', `/api-keys/${created.id}`)).body).toMatchObject({
      state: 'revoked',
      revoked_by: 'api:config',
    });
  });

  it('lets a superadmin key create keys, as an audited actor of its own', async () => {
    const parent = await createKey({ name: 'automation', role: 'superadmin', access: 'rw', allow_from: ['127.0.0.1'] });
    const child = await createKey(
      { name: 'made by automation', role: 'domainadmin', domains: ['other.example'], allow_from: ['127.0.0.1'] },
      parent.key,
    );
    expect(child).toMatchObject({ created_by: `api-key:${parent.id}`, access: 'ro' });
    const row = await postern.deps.db.one<{ actor_kind: string; actor_role: string }>(
      "SELECT actor_kind, actor_role FROM postern_audit WHERE action = 'api_key.create' AND target = ?",
      [`api-key:${child.id}`],
    );
    expect(row).toEqual({ actor_kind: 'api_key', actor_role: 'superadmin' });
  });
});

describe('older keys', () => {
  it("keeps mailcow's api keys as superadmin keys (ro reads only) and POSTERN_API_KEY as the bootstrap key", async () => {
    expect((await api('GET', '/api-keys', { key: MAILCOW_RW_KEY })).status).toBe(200);
    expect((await api('GET', '/api-keys', { key: MAILCOW_RO_KEY })).status).toBe(200);
    const refused = await api('POST', '/api-keys', {
      key: MAILCOW_RO_KEY,
      body: { name: 'x', role: 'superadmin', allow_from: ['::/0'] },
    });
    expect(refused.status).toBe(403);
    const made = await createKey(
      { name: 'via mailcow', role: 'superadmin', allow_from: ['127.0.0.1'] },
      MAILCOW_RW_KEY,
    );
    expect(made.created_by).toBe('api:mailcow-api');
  });

  it('answers 401 to no key, a wrong key and a key-shaped guess', async () => {
    expect((await api('GET', '/api-keys', { key: null })).status).toBe(401);
    expect((await api('GET', '/api-keys', { key: 'wrong' })).status).toBe(401);
    expect((await api('GET', '/api-keys', { key: `postern_${'x'.repeat(43)}` })).status).toBe(401);
  });
});

describe('the audit trail of keys', () => {
  it('records create and revoke with the fields, and never a key, in any row or response', async () => {
    const rows = await postern.deps.db.many<{ action: string; actor: string; after_values: unknown }>(
      "SELECT action, actor, after_values FROM postern_audit WHERE action IN ('api_key.create', 'api_key.revoke') ORDER BY id",
    );
    expect(rows.filter((row) => row.action === 'api_key.create').length).toBe(issued.length);
    expect(rows.filter((row) => row.action === 'api_key.revoke').length).toBe(1);
    const table = JSON.stringify(await postern.deps.db.many('SELECT * FROM postern_audit'));
    expect(table).toContain('helpdesk script');
    for (const key of issued) {
      expect(table).not.toContain(key.slice(8));
      expect(table).not.toContain(createHash('sha256').update(key).digest('hex'));
    }
    // The only response that held a key is its own creation's.
    for (const key of issued) expect(texts.filter((text) => text.includes(key.slice(8))).length).toBe(1);
  });
});
