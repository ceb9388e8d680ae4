// The admin API's route matrix, shared by test/admin-matrix.test.ts (every route × six callers)
// and test/e2e/admin-done-when.test.ts (a CLI-made admin's domain admin against every route):
// one concrete request per route, the status each caller gets, the objects those requests are
// about, and how a `hidden` answer (404 worded like a missing object) is told from a plain 404.
import { createHash } from 'node:crypto';
import type { Hono } from 'hono';
import type { Db } from '../../src/storage/db.js';
import { seedAliasDomain, seedAppPassword, seedDomain, seedMailbox } from './seed.js';

export const APP_PASSWORD = 'matrix app password 04';
export const NEW_PASSWORD = 'matrix changed passphrase 05';

export const CALLERS = ['superadmin', 'desk', 'otherDesk', 'roKey', 'rwDeskKey', 'none'] as const;
export type Caller = (typeof CALLERS)[number];
/** An expected status, or `hidden`: 404 worded exactly like the same request for a missing object. */
export type Expected = number | 'hidden';

export interface MatrixRow {
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
): MatrixRow => ({
  route,
  path,
  ...extra,
  expect: Object.fromEntries(CALLERS.map((caller, index) => [caller, statuses[index]])) as Record<Caller, Expected>,
});

export const ALICE = 'alice@example.org';
export const GHOST = 'ghost@example.org';
/** Deleted by every caller allowed to, and put back before the next one asks. */
export const VICTIM = 'victim@example.org';

/** Puts back the mailbox the DELETE row removes (before each caller's request). */
export async function seedVictim(db: Db): Promise<void> {
  const exists = await db.one('SELECT username FROM mailbox WHERE username = ?', [VICTIM]);
  if (!exists) await seedMailbox(db, { username: VICTIM, passwordHash: '{SHA256}unused' });
}

/**
 * Every admin API route with one concrete request and the status each caller gets. The objects
 * are example.org's (seedMatrixObjects); `templateId` is the Default mailbox template's id; `db`
 * is read only when a request runs (the rows are listed before the test's database exists).
 */
export function adminRouteMatrix(context: { templateId: number; db: () => Db }): MatrixRow[] {
  const t = String(context.templateId);
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
      reset: () => seedVictim(context.db()),
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

/** Every admin API route the web app serves, as `METHOD /path` under /api/v1. */
export function servedAdminRoutes(app: Pick<Hono, 'routes'>): string[] {
  return app.routes
    .filter((route) => route.method !== 'ALL' && route.path.startsWith('/api/v1/'))
    .map((route) => `${route.method} ${route.path.slice('/api/v1'.length)}`);
}

/** The objects the matrix's requests are about: example.org's, and other.example with one mailbox. */
export async function seedMatrixObjects(db: Db): Promise<void> {
  await seedDomain(db, 'example.org');
  await seedDomain(db, 'other.example');
  await seedAliasDomain(db, 'alias.example', 'example.org');
  const hash = `{SHA256}${createHash('sha256').update(APP_PASSWORD).digest('base64')}`;
  await seedMailbox(db, { username: ALICE, passwordHash: hash });
  await seedMailbox(db, { username: 'bob@other.example', passwordHash: hash });
  await seedAppPassword(db, { mailbox: ALICE, passwordHash: hash, protocols: ['imap_access'] });
}

export type MatrixCall = (method: string, path: string, body?: unknown) => Promise<{ status: number; text: string }>;

/**
 * What one caller got for a row: its status, or `hidden` when the answer was a 404 worded exactly
 * like the same request for a missing object (asked by `superadmin`), so existence does not leak.
 */
export async function observedStatus(
  entry: MatrixRow,
  expected: Expected,
  caller: MatrixCall,
  superadmin: MatrixCall,
): Promise<Expected | string> {
  const method = entry.route.split(' ')[0] as string;
  await entry.reset?.();
  const reply = await caller(method, entry.path, entry.body);
  if (expected !== 'hidden' || reply.status !== 404 || !entry.missing) return reply.status;
  const missing = await superadmin(method, entry.missing, entry.body);
  const name = (path: string) => decodeURIComponent(path.split('/')[2] ?? '');
  const outside = reply.text.replaceAll(name(entry.path), 'X');
  const absent = missing.text.replaceAll(name(entry.missing), 'X');
  return missing.status === 404 && outside === absent ? 'hidden' : `404 unlike missing: ${outside} vs ${absent}`;
}
