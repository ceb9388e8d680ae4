// /api/v1/admins against real MariaDB: a superadmin key creates, lists, changes and deletes
// admin accounts; the last active superadmin is protected; every change is audited with
// before/after of the changed fields and no password or hash ever appears in a response or row.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from './support/env.js';
import { seedDomain } from './support/seed.js';

const API_KEY = 'config-api-key-0123456789abcdefghijklmnop';
const PASSWORD = 'first-superadmin-passphrase';
const HELPDESK_PASSWORD = 'helpdesk-passphrase-1234';
let postern: TestPostern;
const texts: string[] = [];

async function api(method: string, path: string, body?: unknown, key: string | null = API_KEY) {
  const headers: Record<string, string> = {};
  if (key) headers['x-api-key'] = key;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${postern.webUrl}/api/v1${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  texts.push(text);
  // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
  return { status: response.status, body: JSON.parse(text) as any };
}

beforeAll(async () => {
  postern = await startTestPostern('admins_api', { POSTERN_API_KEY: API_KEY, POSTERN_BCRYPT_COST: '4' });
  await seedDomain(postern.deps.db, 'example.org');
  await seedDomain(postern.deps.db, 'other.example');
});

afterAll(async () => {
  await postern?.destroy();
});

describe('/api/v1/admins', () => {
  it('refuses callers without a key', async () => {
    expect((await api('GET', '/admins', undefined, null)).status).toBe(401);
  });

  it('creates a superadmin and a domain admin, and lists them without any hash', async () => {
    const root = await api('POST', '/admins', { username: 'root', password: PASSWORD, superadmin: true });
    expect(root).toEqual({
      status: 201,
      body: expect.objectContaining({ username: 'root', role: 'superadmin', active: true, domains: [] }),
    });
    const desk = await api('POST', '/admins', {
      username: 'helpdesk',
      password: HELPDESK_PASSWORD,
      domains: ['example.org'],
    });
    expect(desk.body).toMatchObject({ username: 'helpdesk', role: 'domainadmin', domains: ['example.org'] });
    const list = await api('GET', '/admins');
    expect(list.body.admins.map((admin: { username: string }) => admin.username)).toEqual(['helpdesk', 'root']);
    expect(JSON.stringify(list.body)).not.toMatch(/BLF-CRYPT|password/i);
  });

  it.each([
    ['an unknown domain', { username: 'x', password: PASSWORD, domains: ['nowhere.example'] }, 400, /no such domain/],
    ['no domains and no superadmin flag', { username: 'x', password: PASSWORD }, 400, /domains/],
    ['a short password', { username: 'x', password: 'short', superadmin: true }, 400, /at least 12/],
    ['an existing name', { username: 'ROOT', password: PASSWORD, superadmin: true }, 409, /already exists/],
    ['an unknown field', { username: 'x', password: PASSWORD, superadmin: true, role: 'god' }, 400, /role/],
  ])('refuses %s', async (_title, body, status, message) => {
    const response = await api('POST', '/admins', body);
    expect(response.status).toBe(status);
    expect(response.body.error?.message ?? JSON.stringify(response.body)).toMatch(message);
  });

  it('refuses to demote, disable or delete the last active superadmin, with a clear error', async () => {
    for (const [method, body] of [
      ['PATCH', { superadmin: false, domains: ['example.org'] }],
      ['PATCH', { active: false }],
      ['DELETE', undefined],
    ] as const) {
      const response = await api(method, '/admins/root', body);
      expect(response.status).toBe(409);
      expect(JSON.stringify(response.body)).toMatch(/last active superadmin/);
    }
    expect((await api('GET', '/admins/root')).body).toMatchObject({ role: 'superadmin', active: true });
  });

  it('changes a domain admin and audits before and after', async () => {
    const changed = await api('PATCH', '/admins/helpdesk', { domains: ['other.example', 'example.org'] });
    expect(changed.body).toMatchObject({ domains: ['example.org', 'other.example'] });
    const [row] = await postern.deps.db.many<{
      actor: string;
      actor_kind: string;
      actor_role: string;
      target: string;
      before_values: unknown;
      after_values: unknown;
    }>(
      "SELECT actor, actor_kind, actor_role, target, before_values, after_values FROM postern_audit WHERE action = 'admin.update' ORDER BY id",
    );
    expect(row).toMatchObject({
      actor: 'api:config',
      actor_kind: 'api_key',
      actor_role: 'superadmin',
      target: 'helpdesk',
    });
    // Only the changed field, before and after.
    const json = (value: unknown) => (typeof value === 'string' ? JSON.parse(value) : value);
    expect(json(row?.before_values)).toEqual({ domains: ['example.org'] });
    expect(json(row?.after_values)).toEqual({ domains: ['example.org', 'other.example'] });
  });

  it('sets a password and deletes an account; 404 for an unknown one', async () => {
    expect((await api('PUT', '/admins/helpdesk/password', { password: 'another-long-passphrase' })).status).toBe(200);
    expect((await api('DELETE', '/admins/helpdesk')).status).toBe(200);
    expect((await api('GET', '/admins/helpdesk')).status).toBe(404);
    expect((await api('PATCH', '/admins/ghost', { active: true })).status).toBe(404);
  });

  it('never wrote a password or hash into a response or the audit trail', async () => {
    const audit = JSON.stringify(await postern.deps.db.many('SELECT * FROM postern_audit'));
    expect(audit).toMatch(/admin\.create/);
    for (const secret of [PASSWORD, HELPDESK_PASSWORD, 'another-long-passphrase', '{BLF-CRYPT}']) {
      expect(audit).not.toContain(secret);
      for (const text of texts) expect(text).not.toContain(secret);
    }
  });
});
