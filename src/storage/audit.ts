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

export interface AuditQuery {
  actor?: string;
  target?: string;
  /** An exact action, or a prefix ending in `.` (e.g. `tfa.`). */
  action?: string;
  ip?: string;
  since?: Date;
  until?: Date;
  /** `failure`: actions ending in `.failed` or `.refused`; `success`: every other. */
  outcome?: 'success' | 'failure';
  /** Only entries whose target is an address in one of these domains (a domain admin's view). */
  domains?: readonly string[];
  /** Keyset paging: entries older than this id. */
  beforeId?: number;
  limit: number;
}

export interface AuditRow {
  id: number;
  at: Date;
  actor: string;
  action: string;
  target: string | null;
  detail: unknown;
  ip: string | null;
}

/** Newest first, keyset-paged by id (stable while rows are appended). */
export async function queryAudit(db: Pick<Db, 'many'>, query: AuditQuery): Promise<AuditRow[]> {
  const where: string[] = [];
  const params: (string | number | Date)[] = [];
  if (query.actor !== undefined) {
    where.push('actor = ?');
    params.push(query.actor);
  }
  if (query.target !== undefined) {
    where.push('target = ?');
    params.push(query.target);
  }
  if (query.action !== undefined) {
    if (query.action.endsWith('.')) {
      where.push(
        "action LIKE CONCAT(REPLACE(REPLACE(REPLACE(?, '\\\\', '\\\\\\\\'), '%', '\\\\%'), '_', '\\\\_'), '%')",
      );
    } else where.push('action = ?');
    params.push(query.action);
  }
  if (query.ip !== undefined) {
    where.push('ip = ?');
    params.push(query.ip);
  }
  if (query.since) {
    where.push('at >= ?');
    params.push(query.since);
  }
  if (query.until) {
    where.push('at < ?');
    params.push(query.until);
  }
  if (query.outcome) {
    const failure = "(action LIKE '%.failed' OR action LIKE '%.refused')";
    where.push(query.outcome === 'failure' ? failure : `NOT ${failure}`);
  }
  if (query.domains) {
    if (query.domains.length === 0) return [];
    // The domain part after the last @, compared like mailcow compares domains (general_ci).
    where.push(
      `SUBSTRING_INDEX(target, '@', -1) IN (${query.domains.map(() => '?').join(', ')}) AND target LIKE '%@%'`,
    );
    params.push(...query.domains);
  }
  if (query.beforeId !== undefined) {
    where.push('id < ?');
    params.push(query.beforeId);
  }
  const rows = await db.many<{
    id: number | string;
    at: Date;
    actor: string;
    action: string;
    target: string | null;
    detail: unknown;
    ip: string | null;
  }>(
    `SELECT id, at, actor, action, target, detail, ip FROM postern_audit
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${Math.floor(query.limit)}`,
    params,
  );
  return rows.map((row) => ({
    ...row,
    id: Number(row.id),
    detail: typeof row.detail === 'string' ? safeJson(row.detail) : row.detail,
  }));
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Delete one batch of entries older than `days`; returns how many went (0 = nothing left). */
export async function deleteAuditOlderThan(db: Pick<Db, 'execute'>, days: number, batch: number): Promise<number> {
  const result = await db.execute(
    `DELETE FROM postern_audit WHERE at < NOW(3) - INTERVAL ? DAY ORDER BY id LIMIT ${Math.floor(batch)}`,
    [days],
  );
  return result.affectedRows;
}
