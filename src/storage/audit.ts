// postern_audit: one row per change made through the admin API (who, what, on which target).
// Callers pass only non-secret detail: names of changed keys, never their secret values.
import type { Db } from './db.js';

/** Who made a change: an admin's username, `api:config` (POSTERN_API_KEY), `api:mailcow-api` (mailcow's api table). */
export type AuditActor = string;

export interface AuditEntry {
  actor: AuditActor;
  /** Dotted verb, e.g. `identity_provider.update`, `template.delete`, `mailbox.authsource`. */
  action: string;
  /** What was changed: a mailbox username, a template id, `identity_provider`. */
  target?: string;
  /** JSON-serialisable, secret-free detail (changed key names, from/to values). */
  detail?: Record<string, unknown>;
  /** The client address the request came from. */
  ip?: string;
}

export async function recordAudit(db: Pick<Db, 'execute'>, entry: AuditEntry): Promise<void> {
  await db.execute('INSERT INTO postern_audit (actor, action, target, detail, ip) VALUES (?, ?, ?, ?, ?)', [
    entry.actor,
    entry.action,
    entry.target ?? null,
    entry.detail === undefined ? null : JSON.stringify(entry.detail),
    entry.ip?.slice(0, 64) ?? null,
  ]);
}
