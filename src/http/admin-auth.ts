// Guards the admin JSON API: an API key in X-API-Key (POSTERN_API_KEY, the bootstrap key; a key
// of postern_api_keys, with its role, domains, access, networks and expiry; or an active key of
// mailcow's `api` table whose allow_from admits the client), or a complete admin session from
// /admin/login (its writes must be same-origin and carry the session's X-CSRF-Token). Keys are
// compared in constant time; a failed check says nothing about which part failed. Read-only
// keys are refused on every method but GET/HEAD, before any route runs.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import {
  apiKeyAuditName,
  checkApiKey,
  createLastUsedRecorder,
  isAllowedFrom,
  looksLikePosternKey,
} from '../admin/api-keys.js';
import type { Actor } from '../admin/roles.js';
import type { AuditWriter } from '../audit/audit-writer.js';
import type { Deps } from '../deps.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { findAdmin } from '../storage/admins.js';
import { listActiveMailcowApiKeys } from '../storage/api-keys.js';
import type { AuditActorRef } from '../storage/audit.js';
import type { Db } from '../storage/db.js';
import { auditAdminRefusal } from './admin-refusal-audit.js';
import { type AdminSessionStore, isValidAdminCsrf } from './admin-session.js';
import { clientIp } from './client-ip.js';
import { isSameOrigin } from './session.js';

export { isAllowedFrom };

export interface AdminPrincipal {
  /**
   * What admitted the caller: the `config` key (POSTERN_API_KEY), a `mailcow-api` key, a postern
   * `api-key` (never the key itself), or an admin `session`.
   */
  via: 'config' | 'mailcow-api' | 'api-key' | 'session';
  /** Read-only keys may only GET. */
  access: 'ro' | 'rw';
  /** Role and domain ACL that routes check with can(); config and mailcow keys act as superadmin. */
  actor: Actor;
  /** A postern key's id. */
  keyId?: number;
}

/** The caller as the API's actor: {kind, name, role, domains, readOnly}. */
export function actorOf(principal: AdminPrincipal) {
  return {
    kind: principal.via === 'session' ? ('admin' as const) : ('api_key' as const),
    name: principal.actor.name,
    role: principal.actor.role,
    domains: principal.actor.domains,
    readOnly: principal.access === 'ro',
  };
}

/** The audit trail's view of the caller: an admin account or a key, and the role it acted with. */
export function auditActorOf(principal: AdminPrincipal): AuditActorRef {
  const actor = actorOf(principal);
  return { kind: actor.kind, name: actor.name, role: actor.role };
}

/** POSTERN_API_KEY and mailcow's `api` rows are superadmin keys (mailcow's api table has no role). */
function keyActor(via: 'config' | 'mailcow-api', access: 'ro' | 'rw'): Actor {
  return { name: `api:${via}`, role: 'superadmin', domains: [], access };
}

declare module 'hono' {
  interface ContextVariableMap {
    admin: AdminPrincipal;
  }
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** The guard every admin API app mounts, from the composition root's objects. */
export function requireAdminOf(
  deps: Pick<Deps, 'db' | 'config' | 'log'> & { auditWriter?: AuditWriter },
  sessions?: AdminSessionStore,
): MiddlewareHandler {
  return requireAdmin({
    db: deps.db,
    apiKey: deps.config.apiKey,
    publicUrl: deps.config.publicUrl,
    log: deps.log,
    ...(deps.auditWriter ? { auditWriter: deps.auditWriter } : {}),
    ...(sessions ? { sessions } : {}),
  });
}

export function requireAdmin(deps: {
  db: Db;
  apiKey: string | undefined;
  /** Admin sessions; with them, a signed-in admin's browser may call the API. */
  sessions?: AdminSessionStore;
  publicUrl?: string;
  log: Logger;
  /** Where refusals of a real postern key (revoked, expired, wrong network) and of admins let in are audited. */
  auditWriter?: AuditWriter;
}): MiddlewareHandler {
  const configured = deps.apiKey ? digest(deps.apiKey) : undefined;
  const lastUsed = createLastUsedRecorder(deps.db, (error) =>
    deps.log.warn({ err: error }, 'API key: last use not recorded'),
  );
  return async (c, next) => {
    const presented = c.req.header('x-api-key') ?? '';
    if (!presented && deps.sessions) {
      const principal = await sessionPrincipal(c, deps.db, deps.sessions, deps.publicUrl);
      if (principal) {
        c.set('admin', principal);
        await next();
        return auditAdminRefusal(c, auditActorOf(principal), deps.auditWriter);
      }
    }
    if (!presented || presented.length > 512) throw new AppError('unauthorized', 'a valid X-API-Key is required');
    const presentedDigest = digest(presented);
    const ip = clientIp(c);
    let principal: AdminPrincipal | undefined;
    if (configured && timingSafeEqual(presentedDigest, configured)) {
      principal = { via: 'config', access: 'rw', actor: keyActor('config', 'rw') };
    } else if (looksLikePosternKey(presented)) {
      const check = await checkApiKey(deps.db, presented, ip);
      if (check.ok) {
        principal = { via: 'api-key', access: check.record.access, actor: check.actor, keyId: check.record.id };
        lastUsed.record(check.record.id, ip);
      } else if (check.reason !== 'unknown' && check.record) {
        deps.auditWriter?.record(
          {
            actor: { kind: 'api_key', name: apiKeyAuditName(check.record.id), role: check.record.role },
            action: 'api_key.refused',
            target: apiKeyAuditName(check.record.id),
            detail: { reason: check.reason, method: c.req.method },
            ...(ip ? { ip } : {}),
          },
          { throttleKey: `api_key:${check.record.id}:${check.reason}:${ip ?? ''}` },
        );
      }
    } else {
      principal = await findMailcowApiKey(deps.db, presented, presentedDigest, ip);
    }
    if (!principal) throw new AppError('unauthorized', 'a valid X-API-Key is required');
    if (principal.access === 'ro' && c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      throw new AppError('forbidden', 'this API key is read-only');
    }
    c.set('admin', principal);
    await next();
    auditAdminRefusal(c, auditActorOf(principal), deps.auditWriter);
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
  const rows = await listActiveMailcowApiKeys(db);
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
