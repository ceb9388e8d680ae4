// The audit's actor for a name that outlives the request it came from (an admin link, a web
// session opened by one): an admin account or an API key, with the role it holds now.
import { findAdmin } from './admins.js';
import { findApiKey } from './api-keys.js';
import type { AuditActorRef } from './audit.js';
import type { Db } from './db.js';

type Reader = Pick<Db, 'one' | 'many'>;

/** An admin account as the actor, with its current role (none once the account is gone). */
export async function adminAuditActor(db: Reader, username: string): Promise<AuditActorRef> {
  const account = await findAdmin(db, username);
  if (!account) return { kind: 'admin', name: username };
  return { kind: 'admin', name: account.username, role: account.superadmin ? 'superadmin' : 'domainadmin' };
}

/**
 * An admin API caller's audit name as the actor: `api:config` and `api:mailcow-api` are superadmin
 * keys, `api-key:<id>` a key of postern_api_keys; anything else is an admin account (admin
 * usernames never contain a colon).
 */
export async function callerAuditActor(db: Reader, name: string): Promise<AuditActorRef> {
  if (name.startsWith('api:')) return { kind: 'api_key', name, role: 'superadmin' };
  const keyId = /^api-key:(\d+)$/.exec(name)?.[1];
  if (keyId !== undefined) {
    const key = await findApiKey(db, Number(keyId));
    return key ? { kind: 'api_key', name, role: key.role } : { kind: 'api_key', name };
  }
  return adminAuditActor(db, name);
}
