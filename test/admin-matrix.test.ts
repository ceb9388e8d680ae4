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
import { startTestPostern, type TestPostern } from './support/env.js';
import { seedAdminAccount, seedAliasDomain, seedAppPassword, seedDomain, seedMailbox } from './support/seed.js';

const API_KEY = 'config-api-key-matrix-0123456789abcdefghij';
const ORIGIN = 'https://admin.example.org';
const ROOT_PASSWORD = 'matrix root passphrase 01';
const DESK_PASSWORD = 'matrix desk passphrase 02';
const OTHER_PASSWORD = 'matrix other passphrase 03';
const APP_PASSWORD = 'matrix app password 04';
const NEW_PASSWORD = 'matrix changed passphrase 05';

const CALLERS = ['superadmin', 'desk', 'otherDesk', 'roKey', 'rwDeskKey', 'none'] as const;
type Caller = (typeof CALLERS)[number];
/** An expected status, or `hidden`: 404 worded exactly like the same request for a missing object. */
type Expected = number | 'hidden';

interface Row {
  /** The route as hono lists it: method and pattern under /api/v1. */
  route: string;
  /** The concrete path (after /api/v1) and body sent. */
  path: string;
  body?: unknown;
  /** The same request for an object that does not exist, for `hidden`. */
  missing?: string;
  /** Run before each caller's request (puts back what an allowed request removed). */
  reset?: () => Promise<void>;
  expect: Record<Caller, Expected>;
}

// Columns: superadmin session, domain admin of example.org, domain admin of other.example,
// read-only superadmin key, read-write domain admin key of example.org, no credentials.
const row = (
  route: string,
  path: string,
  statuses: [Expected, Expected, Expected, Expected, Expected, Expected],
  extra: { body?: unknown; missing?: string; reset?: () => Promise<void> } = {},
): Row => ({
  route,
  path,
  ...extra,
  expect: Object.fromEntries(CALLERS.map((caller, index) => [caller, statuses[index]])) as Record<Caller, Expected>,
});

let templateId = 0;
const ALICE = 'alice@example.org';
const GHOST = 'ghost@example.org';
/** Deleted by every caller allowed to, and put back before the next one asks. */
const VICTIM = 'victim@example.org';

async function seedVictim(): Promise<void> {
  const exists = await postern.deps.db.one('SELECT username FROM mailbox WHERE username = ?', [VICTIM]);
  if (!exists) await seedMailbox(postern.deps.db, { username: VICTIM, passwordHash: '{SHA256}unused' });
}

function matrix(): Row[] {
  const t = String(templateId);
  return [
    // Identity provider: superadmins only.
    row('GET /identity-provider', '/identity-provider', [200, 403, 403, 200, 403, 401]),
    row('PUT /identity-provider', '/identity-provider', [400, 403, 403, 403, 403, 401], {
      body: { authsource: 'keycloak' },
    }),
    row('DELETE /identity-provider', '/identity-provider', [404, 403, 403, 403, 403, 401]),
    row('POST /identity-provider/test', '/identity-provider/test', [400, 403, 403, 403, 403, 401], {
      body: { authsource: 'keycloak' },
    }),
    // Templates: everyone reads, superadmins write.
    row('GET /templates', '/templates', [200, 200, 200, 200, 200, 401]),
    row('GET /templates/:id', `/templates/${t}`, [200, 200, 200, 200, 200, 401]),
    row('POST /templates', '/templates', [400, 403, 403, 403, 403, 401], { body: { template: 'X' } }),
    row('PUT /templates/:id', `/templates/${t}`, [409, 403, 403, 403, 403, 401], { body: { name: 'Renamed' } }),
    row('DELETE /templates/:id', `/templates/${t}`, [409, 403, 403, 403, 403, 401]),
    // A mailbox of example.org: its domain's admins; another domain's admin sees no such mailbox.
    row('GET /mailboxes/:username', `/mailboxes/${ALICE}`, [200, 200, 'hidden', 200, 200, 401], {
      missing: `/mailboxes/${GHOST}`,
    }),
    row('PUT /mailboxes/:username/authsource', `/mailboxes/${ALICE}/authsource`, [200, 200, 'hidden', 403, 200, 401], {
      body: { authsource: 'mailcow' },
      missing: `/mailboxes/${GHOST}/authsource`,
    }),
    row(
      'GET /mailboxes/:username/app-passwords',
      `/mailboxes/${ALICE}/app-passwords`,
      [200, 200, 'hidden', 200, 200, 401],
      { missing: `/mailboxes/${GHOST}/app-passwords` },
    ),
    row(
      'DELETE /mailboxes/:username/app-passwords/:id',
      `/mailboxes/${ALICE}/app-passwords/999999`,
      [404, 404, 'hidden', 403, 404, 401],
      { missing: `/mailboxes/${GHOST}/app-passwords/999999` },
    ),
    row(
      'POST /mailboxes/:username/webmail-link',
      `/mailboxes/${ALICE}/webmail-link`,
      [200, 200, 'hidden', 403, 200, 401],
      { missing: `/mailboxes/${GHOST}/webmail-link` },
    ),
    row('GET /mailboxes', '/mailboxes', [200, 200, 200, 200, 200, 401]),
    // Refused for its template only after the domain check: 400 inside the ACL, 404 outside.
    row('POST /mailboxes', '/mailboxes', [400, 400, 404, 403, 400, 401], {
      body: { local_part: 'matrix', domain: 'example.org', password: NEW_PASSWORD, template: 'No such template' },
    }),
    row('PATCH /mailboxes/:username', `/mailboxes/${ALICE}`, [200, 200, 'hidden', 403, 200, 401], {
      body: { name: 'Alice' },
      missing: `/mailboxes/${GHOST}`,
    }),
    row('PUT /mailboxes/:username/password', `/mailboxes/${ALICE}/password`, [200, 200, 'hidden', 403, 200, 401], {
      body: { password: NEW_PASSWORD },
      missing: `/mailboxes/${GHOST}/password`,
    }),
    row('DELETE /mailboxes/:username', `/mailboxes/${VICTIM}`, [200, 200, 'hidden', 403, 200, 401], {
      missing: `/mailboxes/${GHOST}`,
      reset: seedVictim,
    }),
    row('DELETE /mailboxes/:username/tfa', `/mailboxes/${ALICE}/tfa`, [200, 200, 'hidden', 403, 200, 401], {
      missing: `/mailboxes/${GHOST}/tfa`,
    }),
    row('GET /mailboxes/:username/logins', `/mailboxes/${ALICE}/logins`, [200, 200, 'hidden', 200, 200, 401], {
      missing: `/mailboxes/${GHOST}/logins`,
    }),
    // Bans, admins, API keys, the 2FA policy, sync: superadmins only.
    row('GET /bans', '/bans', [200, 403, 403, 200, 403, 401]),
    row('DELETE /bans/:scope/:subject', `/bans/user/${GHOST}`, [404, 403, 403, 403, 403, 401]),
    row('GET /admins', '/admins', [200, 403, 403, 200, 403, 401]),
    row('POST /admins', '/admins', [400, 403, 403, 403, 403, 401], { body: { username: 'x' } }),
    row('GET /admins/:username', '/admins/root', [200, 403, 403, 200, 403, 401]),
    row('PATCH /admins/:username', '/admins/ghost', [404, 403, 403, 403, 403, 401], { body: { active: true } }),
    row('PUT /admins/:username/password', '/admins/ghost/password', [404, 403, 403, 403, 403, 401], {
      body: { password: NEW_PASSWORD },
    }),
    row('DELETE /admins/:username/tfa', '/admins/ghost/tfa', [404, 403, 403, 403, 403, 401]),
    row('DELETE /admins/:username', '/admins/ghost', [404, 403, 403, 403, 403, 401]),
    row('GET /api-keys', '/api-keys', [200, 403, 403, 200, 403, 401]),
    row('POST /api-keys', '/api-keys', [400, 403, 403, 403, 403, 401], { body: {} }),
    row('GET /api-keys/:id', '/api-keys/999999', [404, 403, 403, 404, 403, 401]),
    row('DELETE /api-keys/:id', '/api-keys/999999', [404, 403, 403, 403, 403, 401]),
    row('GET /two-factor-policy', '/two-factor-policy', [200, 403, 403, 200, 403, 401]),
    row('PUT /two-factor-policy', '/two-factor-policy', [400, 403, 403, 403, 403, 401], { body: {} }),
    row('POST /sync/runs', '/sync/runs', [409, 403, 403, 403, 403, 401], { body: { dry_run: true } }),
    row('GET /sync/runs', '/sync/runs', [200, 403, 403, 200, 403, 401]),
    row('GET /sync/runs/:id', '/sync/runs/999999', [404, 403, 403, 404, 403, 401]),
    // The audit trail: everyone reads (domain admins only their domains' entries).
    row('GET /audit', '/audit', [200, 200, 200, 200, 200, 401]),
    // Domains: domain admins see and change their own; creating and deleting is the superadmin's.
    row('GET /domains', '/domains', [200, 200, 200, 200, 200, 401]),
    row('POST /domains', '/domains', [400, 403, 403, 403, 403, 401], { body: { domain: 'not a domain' } }),
    row('GET /domains/:domain', '/domains/example.org', [200, 200, 'hidden', 200, 200, 401], {
      missing: '/domains/missing.example',
    }),
    row('PATCH /domains/:domain', '/domains/example.org', [200, 200, 'hidden', 403, 200, 401], {
      body: { description: 'Example' },
      missing: '/domains/missing.example',
    }),
    row('DELETE /domains/:domain', '/domains/example.org', [409, 403, 'hidden', 403, 403, 401], {
      missing: '/domains/missing.example',
    }),
    row('GET /alias-domains', '/alias-domains', [200, 200, 200, 200, 200, 401]),
    row('POST /alias-domains', '/alias-domains', [409, 409, 404, 403, 409, 401], {
      body: { alias_domain: 'alias.example', target_domain: 'example.org' },
    }),
    row('GET /alias-domains/:name', '/alias-domains/alias.example', [200, 200, 'hidden', 200, 200, 401], {
      missing: '/alias-domains/missing.example',
    }),
    row('PATCH /alias-domains/:name', '/alias-domains/alias.example', [200, 200, 'hidden', 403, 200, 401], {
      body: { active: true },
      missing: '/alias-domains/missing.example',
    }),
    row('DELETE /alias-domains/:name', '/alias-domains/missing.example', [404, 404, 404, 403, 404, 401]),
  ];
}

let postern: TestPostern;
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
  await seedDomain(db, 'example.org');
  await seedDomain(db, 'other.example');
  await seedAliasDomain(db, 'alias.example', 'example.org');
  const hash = `{SHA256}${createHash('sha256').update(APP_PASSWORD).digest('base64')}`;
  await seedMailbox(db, { username: ALICE, passwordHash: hash });
  await seedMailbox(db, { username: 'bob@other.example', passwordHash: hash });
  await seedAppPassword(db, { mailbox: ALICE, passwordHash: hash, protocols: ['imap_access'] });
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
    const served = new Set(
      createWebApp(postern.deps)
        .routes.filter((route) => route.method !== 'ALL' && route.path.startsWith('/api/v1/'))
        .map((route) => `${route.method} ${route.path.slice('/api/v1'.length)}`),
    );
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
    const method = entry.route.split(' ')[0] as string;
    // Built again here: templateId is known only after beforeAll.
    const current = matrix().find((candidate) => candidate.route === entry.route) as Row;
    const got: Record<string, unknown> = {};
    for (const caller of CALLERS) {
      await current.reset?.();
      const reply = await call(caller, method, current.path, current.body);
      got[caller] = reply.status;
      if (current.expect[caller] === 'hidden' && reply.status === 404 && current.missing) {
        // Outside the ACL reads exactly like an object that does not exist (no existence leak).
        const missing = await call('superadmin', method, current.missing, current.body);
        const name = (path: string) => decodeURIComponent(path.split('/')[2] ?? '');
        const outside = reply.text.replaceAll(name(current.path), 'X');
        const absent = missing.text.replaceAll(name(current.missing), 'X');
        got[caller] =
          missing.status === 404 && outside === absent ? 'hidden' : `404 unlike missing: ${outside} vs ${absent}`;
      }
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
