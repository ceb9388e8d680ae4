// The role × endpoint matrix over EVERY admin API route, against real MariaDB and Redis. The routes
// are read from the web app itself (hono's route list), so a route added without a row here fails
// the first test. Callers: a superadmin session, a domain admin session of example.org (the
// objects' domain), a domain admin session of other.example (another domain: 404 on example.org's
// objects, worded like a missing object), a read-only superadmin key, a read-write domain admin
// key of example.org, and no credentials. Requests are chosen so an allowed one either changes
// nothing or changes something back to itself; the expected status of an allowed request is the
// route's own answer (e.g. 400 for a body it refuses, 404 for an id that does not exist). Then:
// last-superadmin protection, and no secret in any audit row after everything the suite did.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebApp } from '../src/http/web-app.js';
import { consoleClient } from './e2e/console-client.js';
import {
  APP_PASSWORD,
  adminRouteMatrix,
  CALLERS,
  type Caller,
  NEW_PASSWORD,
  observedStatus,
  seedMatrixObjects,
  servedAdminRoutes,
} from './support/admin-routes.js';
import { startTestPostern, type TestPostern } from './support/env.js';
import { seedAdminAccount } from './support/seed.js';

const API_KEY = 'config-api-key-matrix-0123456789abcdefghij';
const ORIGIN = 'https://admin.example.org';
const ROOT_PASSWORD = 'matrix root passphrase 01';
const DESK_PASSWORD = 'matrix desk passphrase 02';
const OTHER_PASSWORD = 'matrix other passphrase 03';

let postern: TestPostern;
let templateId = 0;
const matrix = () => adminRouteMatrix({ templateId, db: () => postern.deps.db });
const sessions = {} as Record<'superadmin' | 'desk' | 'otherDesk', ReturnType<typeof consoleClient>>;
const keys = {} as Record<'roKey' | 'rwDeskKey', string>;
/** Every response text of the suite, to prove no secret ever left. */
const texts: string[] = [];

async function call(caller: Caller, method: string, path: string, body?: unknown) {
  if (caller === 'superadmin' || caller === 'desk' || caller === 'otherDesk') {
    const reply = await sessions[caller].api(method, path, body);
    texts.push(reply.text);
    return { status: reply.status, text: reply.text };
  }
  const headers: Record<string, string> = {};
  if (caller !== 'none') headers['x-api-key'] = keys[caller];
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${postern.webUrl}/api/v1${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  texts.push(text);
  return { status: response.status, text };
}

async function createKey(body: Record<string, unknown>): Promise<string> {
  const response = await fetch(`${postern.webUrl}/api/v1/api-keys`, {
    method: 'POST',
    headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
    body: JSON.stringify({ allow_from: ['127.0.0.1'], ...body }),
  });
  const created = (await response.json()) as { key: string };
  if (response.status !== 201) throw new Error(`key not created: ${JSON.stringify(created)}`);
  return created.key;
}

beforeAll(async () => {
  postern = await startTestPostern('admin_matrix', {
    POSTERN_API_KEY: API_KEY,
    POSTERN_PUBLIC_URL: ORIGIN,
    POSTERN_BCRYPT_COST: '4',
    POSTERN_ADMIN_WEBMAIL: 'on',
  });
  const { db } = postern.deps;
  await seedMatrixObjects(db);
  await seedAdminAccount(postern, { username: 'root', password: ROOT_PASSWORD, superadmin: true });
  await seedAdminAccount(postern, {
    username: 'desk',
    password: DESK_PASSWORD,
    superadmin: false,
    domains: ['example.org'],
  });
  await seedAdminAccount(postern, {
    username: 'otherdesk',
    password: OTHER_PASSWORD,
    superadmin: false,
    domains: ['other.example'],
  });
  for (const [caller, username, password] of [
    ['superadmin', 'root', ROOT_PASSWORD],
    ['desk', 'desk', DESK_PASSWORD],
    ['otherDesk', 'otherdesk', OTHER_PASSWORD],
  ] as const) {
    sessions[caller] = consoleClient(() => postern, ORIGIN);
    await sessions[caller].signIn(username, password);
  }
  keys.roKey = await createKey({ name: 'matrix ro', role: 'superadmin', access: 'ro' });
  keys.rwDeskKey = await createKey({
    name: 'matrix rw desk',
    role: 'domainadmin',
    domains: ['example.org'],
    access: 'rw',
  });
  const template = await db.one<{ id: number }>(
    "SELECT id FROM templates WHERE template = 'Default' AND type = 'mailbox'",
  );
  templateId = Number(template?.id);
});

afterAll(async () => {
  await postern?.destroy();
});

describe('the role × endpoint matrix', () => {
  it('has exactly one row for every admin API route the web app serves', () => {
    const served = new Set(servedAdminRoutes(createWebApp(postern.deps)));
    const rows = matrix().map((entry) => entry.route);
    expect(new Set(rows).size, 'a route has two rows').toBe(rows.length);
    expect([...served].sort()).toEqual([...rows].sort());
    // No admin API handler hides behind a wildcard method the list above would not show.
    const wildcards = createWebApp(postern.deps)
      .routes.filter((route) => route.method === 'ALL' && route.path.startsWith('/api/v1'))
      .map((route) => route.path)
      .filter((path) => !path.endsWith('*'));
    expect(wildcards).toEqual([]);
  });

  it.each(matrix().map((entry) => [entry.route, entry] as const))('%s', async (_route, entry) => {
    // Built again here: templateId is known only after beforeAll.
    const current = matrix().find((candidate) => candidate.route === entry.route) ?? entry;
    const got: Record<string, unknown> = {};
    for (const caller of CALLERS) {
      got[caller] = await observedStatus(
        current,
        current.expect[caller],
        (method, path, body) => call(caller, method, path, body),
        (method, path, body) => call('superadmin', method, path, body),
      );
    }
    expect(got).toEqual(current.expect);
  });

  it('refuses every write to the read-only key with the read-only message', async () => {
    for (const entry of matrix()) {
      const method = entry.route.split(' ')[0] as string;
      if (method === 'GET') continue;
      const reply = await call('roKey', method, entry.path, entry.body);
      expect(reply.status, entry.route).toBe(403);
      expect(reply.text, entry.route).toMatch(/read-only/);
    }
  });
});

describe('last active superadmin', () => {
  const patch = (username: string, body: unknown) => call('superadmin', 'PATCH', `/admins/${username}`, body);

  it('cannot be demoted, disabled or deleted, by a session or by a key', async () => {
    for (const body of [{ superadmin: false, domains: ['example.org'] }, { active: false }]) {
      const reply = await patch('root', body);
      expect(reply.status).toBe(409);
      expect(reply.text).toMatch(/last active superadmin/);
    }
    const byKey = await fetch(`${postern.webUrl}/api/v1/admins/root`, {
      method: 'DELETE',
      headers: { 'x-api-key': API_KEY },
    });
    expect(byKey.status).toBe(409);
    expect((await call('superadmin', 'DELETE', '/admins/root')).status).toBe(409);
  });

  it('can be demoted once another active superadmin exists, and is protected again after', async () => {
    const created = await call('superadmin', 'POST', '/admins', {
      username: 'second',
      password: NEW_PASSWORD,
      superadmin: true,
    });
    expect(created.status).toBe(201);
    expect((await patch('second', { active: false })).status).toBe(200);
    expect((await patch('root', { active: false })).status).toBe(409);
    expect((await patch('second', { active: true })).status).toBe(200);
    expect((await patch('second', { superadmin: false, domains: ['other.example'] })).status).toBe(200);
    expect((await call('superadmin', 'DELETE', '/admins/root')).status).toBe(409);
    expect((await call('superadmin', 'DELETE', '/admins/second')).status).toBe(200);
  });
});

describe('the audit trail after the suite', () => {
  it('holds the changes the suite made, by named actors with their roles', async () => {
    await postern.deps.auditWriter.flush();
    const rows = await postern.deps.db.many<{
      actor: string;
      actor_kind: string | null;
      actor_role: string | null;
      action: string;
    }>('SELECT actor, actor_kind, actor_role, action FROM postern_audit');
    expect(rows).toEqual(
      expect.arrayContaining([
        { action: 'api_key.create', actor: 'api:config', actor_kind: 'api_key', actor_role: 'superadmin' },
        { action: 'admin.create', actor: 'root', actor_kind: 'admin', actor_role: 'superadmin' },
        { action: 'admin.delete', actor: 'root', actor_kind: 'admin', actor_role: 'superadmin' },
        // The first PATCH changed the description; the same PATCH again changes nothing and is not a row.
        { action: 'domain.update', actor: 'root', actor_kind: 'admin', actor_role: 'superadmin' },
        { action: 'admin.update', actor: 'root', actor_kind: 'admin', actor_role: 'superadmin' },
      ]),
    );
  });

  it('holds no secret in any row: passwords, keys, their digests, hashes', async () => {
    await postern.deps.auditWriter.flush();
    const table = JSON.stringify(await postern.deps.db.many('SELECT * FROM postern_audit'));
    const secrets = [
      API_KEY,
      ROOT_PASSWORD,
      DESK_PASSWORD,
      OTHER_PASSWORD,
      APP_PASSWORD,
      NEW_PASSWORD,
      keys.roKey,
      keys.rwDeskKey,
      createHash('sha256').update(keys.roKey).digest('hex'),
      createHash('sha256').update(keys.rwDeskKey).digest('hex'),
      '{SHA256}',
      '{BLF-CRYPT}',
      '$2y$',
    ];
    for (const secret of secrets) expect(table, secret.slice(0, 12)).not.toContain(secret);
    for (const secret of secrets) {
      expect(
        texts.some((text) => text.includes(secret)),
        `a response held ${secret.slice(0, 12)}`,
      ).toBe(false);
    }
  });
});
