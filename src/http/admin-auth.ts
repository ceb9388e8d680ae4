// Guards the admin JSON API: an API key (X-API-Key: POSTERN_API_KEY, or an active key of mailcow's
// `api` table whose allow_from admits the client), or a complete admin session from /admin/login
// (its writes must be same-origin and carry the session's X-CSRF-Token). Keys are compared in
// constant time; a failed check says nothing about which part failed.
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { Context, MiddlewareHandler } from 'hono';
import type { Actor } from '../admin/roles.js';
import type { Deps } from '../deps.js';
import { AppError } from '../errors.js';
import { findAdmin } from '../storage/admins.js';
import type { AuditActorRef } from '../storage/audit.js';
import type { Db } from '../storage/db.js';
import { type AdminSessionStore, isValidAdminCsrf } from './admin-session.js';
import { clientIp } from './client-ip.js';
import { isSameOrigin } from './session.js';

export interface AdminPrincipal {
  /** What admitted the caller: `config` or `mailcow-api` key (never the key itself), or an admin `session`. */
  via: 'config' | 'mailcow-api' | 'session';
  /** Read-only keys may only GET. */
  access: 'ro' | 'rw';
  /** Role and domain ACL that routes check with can(); both kinds of key act as superadmin. */
  actor: Actor;
}

/** POSTERN_API_KEY and mailcow's `api` rows are superadmin keys (mailcow's api table has no role). */
function keyActor(via: 'config' | 'mailcow-api', access: 'ro' | 'rw'): Actor {
  return { name: `api:${via}`, role: 'superadmin', domains: [], access };
}

/** The audit trail's view of the caller: an admin account or a key, and the role it acted with. */
export function auditActorOf(principal: AdminPrincipal): AuditActorRef {
  return {
    kind: principal.via === 'session' ? 'admin' : 'api_key',
    name: principal.actor.name,
    role: principal.actor.role,
  };
}

declare module 'hono' {
  interface ContextVariableMap {
    admin: AdminPrincipal;
  }
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** The guard every admin API app mounts, from the composition root's objects. */
export function requireAdminOf(deps: Pick<Deps, 'db' | 'config'>, sessions?: AdminSessionStore): MiddlewareHandler {
  return requireAdmin({
    db: deps.db,
    apiKey: deps.config.apiKey,
    publicUrl: deps.config.publicUrl,
    ...(sessions ? { sessions } : {}),
  });
}

export function requireAdmin(deps: {
  db: Db;
  apiKey: string | undefined;
  /** Admin sessions; with them, a signed-in admin's browser may call the API. */
  sessions?: AdminSessionStore;
  publicUrl?: string;
}): MiddlewareHandler {
  const configured = deps.apiKey ? digest(deps.apiKey) : undefined;
  return async (c, next) => {
    const presented = c.req.header('x-api-key') ?? '';
    if (!presented && deps.sessions) {
      const principal = await sessionPrincipal(c, deps.db, deps.sessions, deps.publicUrl);
      if (principal) {
        c.set('admin', principal);
        return next();
      }
    }
    if (!presented || presented.length > 512) throw new AppError('unauthorized', 'a valid X-API-Key is required');
    const presentedDigest = digest(presented);
    let principal: AdminPrincipal | undefined;
    if (configured && timingSafeEqual(presentedDigest, configured)) {
      principal = { via: 'config', access: 'rw', actor: keyActor('config', 'rw') };
    } else {
      principal = await findMailcowApiKey(deps.db, presented, presentedDigest, clientIp(c));
    }
    if (!principal) throw new AppError('unauthorized', 'a valid X-API-Key is required');
    if (principal.access === 'ro' && c.req.method !== 'GET') {
      throw new AppError('forbidden', 'this API key is read-only');
    }
    c.set('admin', principal);
    await next();
  };
}

/** A complete, live admin session: role and domains read fresh from the database on every call. */
async function sessionPrincipal(
  c: Context,
  db: Db,
  sessions: AdminSessionStore,
  publicUrl: string | undefined,
): Promise<AdminPrincipal | undefined> {
  const session = await sessions.read(c);
  if (session?.stage !== 'full') return undefined;
  const account = await findAdmin(db, session.username);
  if (!account?.active) return undefined;
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
    // SameSite=Strict already keeps other sites' requests cookieless; this is the second lock.
    const token = c.req.header('x-csrf-token') ?? '';
    if (!publicUrl || !isSameOrigin(c, publicUrl) || !isValidAdminCsrf(session, token)) {
      throw new AppError('forbidden', 'a cookie-authenticated change must be same-origin and carry X-CSRF-Token');
    }
  }
  return {
    via: 'session',
    access: 'rw',
    actor: {
      name: account.username,
      role: account.superadmin ? 'superadmin' : 'domainadmin',
      domains: account.domains,
      access: 'rw',
    },
  };
}

async function findMailcowApiKey(
  db: Db,
  presented: string,
  presentedDigest: Buffer,
  address: string | undefined,
): Promise<AdminPrincipal | undefined> {
  const rows = await db.many<{ api_key: string; allow_from: string; skip_ip_check: number; access: 'ro' | 'rw' }>(
    'SELECT api_key, allow_from, skip_ip_check, access FROM api WHERE active = 1',
  );
  // Compare against every key, in constant time, so timing does not reveal a partial match.
  let match: (typeof rows)[number] | undefined;
  for (const row of rows) {
    if (timingSafeEqual(digest(row.api_key), presentedDigest) && row.api_key === presented) match = row;
  }
  if (!match) return undefined;
  if (Number(match.skip_ip_check) !== 1 && !isAllowedFrom(address, match.allow_from)) return undefined;
  const access = match.access === 'ro' ? 'ro' : 'rw';
  return { via: 'mailcow-api', access, actor: keyActor('mailcow-api', access) };
}

/** mailcow's allow_from: comma-separated IPs or CIDR networks. */
export function isAllowedFrom(address: string | undefined, allowFrom: string): boolean {
  if (!address) return false;
  const normalised = address.replace(/^::ffff:/, '');
  return allowFrom
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .some((entry) => matchesNetwork(normalised, entry));
}

function matchesNetwork(address: string, entry: string): boolean {
  const [network, bitsText] = entry.split('/');
  if (!network || isIP(network) === 0) return false;
  const family = isIP(address);
  if (family === 0 || family !== isIP(network)) return false;
  const bits = bitsText === undefined ? (family === 4 ? 32 : 128) : Number(bitsText);
  const a = toBigInt(address, family);
  const b = toBigInt(network, family);
  const width = family === 4 ? 32 : 128;
  if (!Number.isInteger(bits) || bits < 0 || bits > width) return false;
  const shift = BigInt(width - bits);
  return a >> shift === b >> shift;
}

function toBigInt(address: string, family: number): bigint {
  if (family === 4) return address.split('.').reduce((acc, part) => (acc << 8n) + BigInt(Number(part)), 0n);
  const [head = '', tail = ''] = address.split('::');
  const headParts = head ? head.split(':') : [];
  const tailParts = tail ? tail.split(':') : [];
  const missing = 8 - headParts.length - tailParts.length;
  const parts = address.includes('::') ? [...headParts, ...Array(missing).fill('0'), ...tailParts] : headParts;
  return parts.reduce((acc, part) => (acc << 16n) + BigInt(Number.parseInt(part || '0', 16)), 0n);
}
