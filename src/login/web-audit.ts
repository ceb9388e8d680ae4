// Audit rows for browser actions (sign-in, SSO, webmail, portal changes), written through
// storage/audit.ts. The actor is the person (a mailbox or an admin), never a secret.
import { type AuditEntry, recordAudit } from '../storage/audit.js';
import type { Db } from '../storage/db.js';

export type WebAuditEntry = AuditEntry;

/** Actor and target are cut to the columns' 255 characters: an address typed at a form may be longer. */
export function recordWebAudit(db: Pick<Db, 'execute'>, entry: WebAuditEntry): Promise<void> {
  return recordAudit(db, {
    ...entry,
    actor: entry.actor.slice(0, 255),
    ...(entry.target !== undefined ? { target: entry.target.slice(0, 255) } : {}),
  });
}
