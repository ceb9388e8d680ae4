// postern_audit: one row per security event and per change made by an admin (who, in which role,
// from where, to what, with which outcome, the changed fields before and after). Append-only from
// the application's point of view: retention (audit/retention.ts) is the only thing that deletes.
// Every writer goes through recordAudit (or recordAuditBatch), which also strips secret values.
import type { Db } from './db.js';

/**
 * Who did it. `admin`: an admin account (session or CLI on its behalf); `api_key`: an API key
 * (`api:config` = POSTERN_API_KEY, `api:mailcow-api` = a row of mailcow's `api` table,
 * `api-key:<id>` = a key of postern_api_keys); `mailbox`: a mailbox user (portal, mail login);
 * `system`: postern itself or an operator's tool (`cli`, `scheduler`, `sogo-sso`, `internal-token`).
 */
export type AuditActorKind = 'admin' | 'api_key' | 'mailbox' | 'system';

export interface AuditActorRef {
  kind: AuditActorKind;
  /** An admin's username, a key's audit name, a mailbox address, or the system part's name. */
  name: string;
  /** Admin accounts and keys: the role they acted with. */
  role?: 'superadmin' | 'domainadmin';
}

/** Every writer states the actor's kind (and an admin's or key's role); a bare name is refused. */
export type AuditActor = AuditActorRef;

export type AuditOutcome = 'success' | 'failure';

export interface AuditEntry {
  actor: AuditActor;
  /** Dotted verb, e.g. `identity_provider.update`, `api_key.create`, `mail_login.refused`. */
  action: string;
  /** Default: `failure` for actions ending in `.failed`, `.refused` or `.denied`, else `success`. */
  outcome?: AuditOutcome;
  /** What the event is about: a mailbox username, an admin, `template:3`, `api-key:7`. */
  target?: string;
  /** The domain the target belongs to (a domain admin sees these); default: an address target's domain. */
  domain?: string;
  /** JSON-serialisable, secret-free detail (reason, service, counts). */
  detail?: Record<string, unknown>;
  /** The changed fields' values before and after the change (only those that changed). */
  before?: Record<string, unknown>;
  after?: Record<string, unknown>;
  /** The client address the request came from. */
  ip?: string;
}

/** The system side of postern as an actor (`cli`, `scheduler`, `internal-token`, …). */
export function systemActor(name: string): AuditActorRef {
  return { kind: 'system', name };
}

/** A mailbox user as the actor (portal, webmail, SSO); `anonymous` when nobody is identified yet. */
export function mailboxActor(name: string): AuditActorRef {
  return { kind: 'mailbox', name };
}

/** Only the fields whose values differ, as the audit's before/after pair. */
export function changedFields(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
): { before: Record<string, unknown>; after: Record<string, unknown> } {
  const changed = { before: {} as Record<string, unknown>, after: {} as Record<string, unknown> };
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (JSON.stringify(before[key]) === JSON.stringify(after[key])) continue;
    changed.before[key] = before[key] ?? null;
    changed.after[key] = after[key] ?? null;
  }
  return changed;
}

/**
 * Key names whose values are secrets: their values never reach the table, whatever a caller
 * passes (booleans, numbers and null stay: `password_changed: true`, `recovery_codes_left: 4`).
 */
const SECRET_KEY =
  /pass(word|wd|phrase)?|secret|token|api_?key$|^key$|cookie|authorization|^code$|otp$|recovery_code$/i;
const REDACTED = '[redacted]';
/** Words that say what happened to a secret without being one (`client_secret: 'replaced'`). */
const SECRET_MARKERS = new Set(['set', 'unset', 'kept', 'replaced', 'removed', 'changed', 'none']);

/** Secret-named values replaced, recursively (arrays and nested objects included). */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (depth > 8) return REDACTED;
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item, depth + 1));
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return value.toISOString();
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const keepsShape =
      item === null ||
      typeof item === 'boolean' ||
      typeof item === 'number' ||
      (typeof item === 'string' && SECRET_MARKERS.has(item));
    out[key] = SECRET_KEY.test(key) && !keepsShape ? REDACTED : redactSecrets(item, depth + 1);
  }
  return out;
}

const FAILURE_SUFFIX = /\.(failed|refused|denied)$/;

export function outcomeOf(entry: Pick<AuditEntry, 'action' | 'outcome'>): AuditOutcome {
  return entry.outcome ?? (FAILURE_SUFFIX.test(entry.action) ? 'failure' : 'success');
}

/** `example.org` for `alice@example.org`; undefined for anything that is not an address. */
function domainOfTarget(target: string | undefined): string | undefined {
  if (!target) return undefined;
  const at = target.lastIndexOf('@');
  if (at <= 0 || at === target.length - 1) return undefined;
  return target.slice(at + 1).toLowerCase();
}

const COLUMNS =
  '(actor, actor_kind, actor_role, action, outcome, target, domain, detail, before_values, after_values, ip)';
const PLACEHOLDERS = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';

function rowValues(entry: AuditEntry): (string | null)[] {
  const actor = entry.actor;
  const json = (value: Record<string, unknown> | undefined) =>
    value === undefined ? null : JSON.stringify(redactSecrets(value));
  const domain = entry.domain?.toLowerCase() ?? domainOfTarget(entry.target);
  return [
    actor.name.slice(0, 255),
    actor.kind,
    actor.role ?? null,
    entry.action.slice(0, 64),
    outcomeOf(entry),
    entry.target?.slice(0, 255) ?? null,
    domain?.slice(0, 255) ?? null,
    json(entry.detail),
    json(entry.before),
    json(entry.after),
    entry.ip?.slice(0, 64) ?? null,
  ];
}

/** The one writer of audit rows: every entry, alone or batched, goes through this INSERT. */
export async function recordAudit(db: Pick<Db, 'execute'>, entry: AuditEntry): Promise<void> {
  await recordAuditBatch(db, [entry]);
}

/** Several entries in one statement (the asynchronous writer's batches). */
export async function recordAuditBatch(db: Pick<Db, 'execute'>, entries: readonly AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await db.execute(
    `INSERT INTO postern_audit ${COLUMNS} VALUES ${entries.map(() => PLACEHOLDERS).join(', ')}`,
    entries.flatMap(rowValues),
  );
}

export interface AuditQuery {
  actor?: string;
  target?: string;
  /** An exact action, or a prefix ending in `.` (e.g. `tfa.`). */
  action?: string;
  ip?: string;
  since?: Date;
  until?: Date;
  outcome?: AuditOutcome;
  /** Only entries about one of these domains (a domain admin's view). */
  domains?: readonly string[];
  /** Keyset paging: entries older than this id. */
  beforeId?: number;
  limit: number;
}

export interface AuditRow {
  id: number;
  at: Date;
  actor: string;
  actorKind: AuditActorKind | null;
  actorRole: string | null;
  action: string;
  outcome: AuditOutcome;
  target: string | null;
  domain: string | null;
  detail: unknown;
  before: unknown;
  after: unknown;
  ip: string | null;
}

// Rows written without the columns (older writers) are judged as the migration judged old rows.
const OUTCOME_EXPR =
  "COALESCE(outcome, IF(action LIKE '%.failed' OR action LIKE '%.refused' OR action LIKE '%.denied', 'failure', 'success'))";
const DOMAIN_EXPR = "COALESCE(domain, IF(target LIKE '_%@_%', SUBSTRING_INDEX(target, '@', -1), NULL))";

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
    where.push(`${OUTCOME_EXPR} = ?`);
    params.push(query.outcome);
  }
  if (query.domains) {
    if (query.domains.length === 0) return [];
    // Compared like mailcow compares domains (general_ci: case-insensitive).
    where.push(`${DOMAIN_EXPR} IN (${query.domains.map(() => '?').join(', ')})`);
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
    actor_kind: AuditActorKind | null;
    actor_role: string | null;
    action: string;
    outcome: AuditOutcome;
    target: string | null;
    domain: string | null;
    detail: unknown;
    before_values: unknown;
    after_values: unknown;
    ip: string | null;
  }>(
    `SELECT id, at, actor, actor_kind, actor_role, action, ${OUTCOME_EXPR} AS outcome, target,
            ${DOMAIN_EXPR} AS domain, detail, before_values, after_values, ip
       FROM postern_audit
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${Math.floor(query.limit)}`,
    params,
  );
  return rows.map((row) => ({
    id: Number(row.id),
    at: row.at,
    actor: row.actor,
    actorKind: row.actor_kind,
    actorRole: row.actor_role,
    action: row.action,
    outcome: row.outcome,
    target: row.target,
    domain: row.domain,
    detail: parseJson(row.detail),
    before: parseJson(row.before_values),
    after: parseJson(row.after_values),
    ip: row.ip,
  }));
}

function parseJson(value: unknown): unknown {
  if (typeof value !== 'string') return value ?? null;
  try {
    return JSON.parse(value);
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
