// postern_api_keys (migration 7) and the read of mailcow's `api` table. Only digests of postern's
// keys are stored; mailcow's keys are in clear in its own table, as mailcow keeps them.
import type { Db } from './db.js';

type Reader = Pick<Db, 'one' | 'many'>;

export interface ApiKeyRecord {
  id: number;
  name: string;
  /** The first characters of the key's random part, to tell keys apart in a list (not a secret). */
  hint: string;
  role: 'superadmin' | 'domainadmin';
  /** A domain admin key's domains, lower case; empty for a superadmin key. */
  domains: string[];
  access: 'ro' | 'rw';
  /** IPs and CIDR networks, comma-separated, as mailcow's allow_from. */
  allowFrom: string;
  expiresAt: Date | null;
  created: Date;
  createdBy: string;
  lastUsedAt: Date | null;
  lastUsedIp: string | null;
  revokedAt: Date | null;
  revokedBy: string | null;
}

interface ApiKeyRow {
  [column: string]: unknown;
  id: number | string;
  name: string;
  hint: string;
  role: string;
  domains: unknown;
  access: string;
  allow_from: string;
  expires_at: Date | null;
  created: Date;
  created_by: string;
  last_used_at: Date | null;
  last_used_ip: string | null;
  revoked_at: Date | null;
  revoked_by: string | null;
}

const COLUMNS =
  'id, name, hint, role, domains, access, allow_from, expires_at, created, created_by, last_used_at, last_used_ip, revoked_at, revoked_by';

function toRecord(row: ApiKeyRow): ApiKeyRecord {
  const domains = typeof row.domains === 'string' ? (JSON.parse(row.domains) as unknown) : row.domains;
  return {
    id: Number(row.id),
    name: row.name,
    hint: row.hint,
    role: row.role === 'superadmin' ? 'superadmin' : 'domainadmin',
    domains: Array.isArray(domains) ? domains.filter((d): d is string => typeof d === 'string') : [],
    access: row.access === 'rw' ? 'rw' : 'ro',
    allowFrom: row.allow_from,
    expiresAt: row.expires_at,
    created: row.created,
    createdBy: row.created_by,
    lastUsedAt: row.last_used_at,
    lastUsedIp: row.last_used_ip,
    revokedAt: row.revoked_at,
    revokedBy: row.revoked_by,
  };
}

export interface NewApiKeyRow {
  name: string;
  keyHash: string;
  hint: string;
  role: 'superadmin' | 'domainadmin';
  domains: readonly string[];
  access: 'ro' | 'rw';
  allowFrom: string;
  expiresAt: Date | undefined;
  createdBy: string;
}

export async function insertApiKey(db: Pick<Db, 'execute'>, key: NewApiKeyRow): Promise<number> {
  const result = await db.execute(
    `INSERT INTO postern_api_keys (name, key_hash, hint, role, domains, access, allow_from, expires_at, created_by)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      key.name,
      key.keyHash,
      key.hint,
      key.role,
      JSON.stringify(key.domains),
      key.access,
      key.allowFrom,
      key.expiresAt ?? null,
      key.createdBy.slice(0, 255),
    ],
  );
  return result.insertId;
}

export async function findApiKey(db: Reader, id: number): Promise<ApiKeyRecord | undefined> {
  const row = await db.one<ApiKeyRow>(`SELECT ${COLUMNS} FROM postern_api_keys WHERE id = ?`, [id]);
  return row ? toRecord(row) : undefined;
}

/** The key whose digest this is, with its digest (for the caller's constant-time comparison). */
export async function findApiKeyByHash(
  db: Reader,
  keyHash: string,
): Promise<(ApiKeyRecord & { keyHash: string }) | undefined> {
  const row = await db.one<ApiKeyRow & { key_hash: string }>(
    `SELECT ${COLUMNS}, key_hash FROM postern_api_keys WHERE key_hash = ?`,
    [keyHash],
  );
  return row ? { ...toRecord(row), keyHash: row.key_hash } : undefined;
}

/** Newest first; revoked keys included (they are history), never a digest. */
export async function listApiKeys(db: Reader): Promise<ApiKeyRecord[]> {
  const rows = await db.many<ApiKeyRow>(`SELECT ${COLUMNS} FROM postern_api_keys ORDER BY id DESC`);
  return rows.map(toRecord);
}

/** Marks a live key revoked; false when there is none (unknown or already revoked). */
export async function revokeApiKeyRow(db: Pick<Db, 'execute'>, id: number, revokedBy: string): Promise<boolean> {
  const result = await db.execute(
    'UPDATE postern_api_keys SET revoked_at = NOW(0), revoked_by = ? WHERE id = ? AND revoked_at IS NULL',
    [revokedBy.slice(0, 255), id],
  );
  return result.affectedRows === 1;
}

/**
 * Records a use, at most once per `minSeconds` per key across all replicas (the WHERE clause),
 * so a busy script does not turn every API call into a write.
 */
export async function touchApiKey(
  db: Pick<Db, 'execute'>,
  id: number,
  ip: string | undefined,
  minSeconds: number,
): Promise<boolean> {
  const result = await db.execute(
    `UPDATE postern_api_keys SET last_used_at = NOW(0), last_used_ip = ?
      WHERE id = ? AND (last_used_at IS NULL OR last_used_at < NOW(0) - INTERVAL ? SECOND)`,
    [ip?.slice(0, 64) ?? null, id, Math.floor(minSeconds)],
  );
  return result.affectedRows === 1;
}

export interface MailcowApiKeyRow {
  [column: string]: unknown;
  api_key: string;
  allow_from: string;
  skip_ip_check: number | string;
  access: string;
}

/** mailcow's active `api` rows (it keeps at most one per access mode). */
export async function listActiveMailcowApiKeys(db: Reader): Promise<MailcowApiKeyRow[]> {
  return db.many<MailcowApiKeyRow>('SELECT api_key, allow_from, skip_ip_check, access FROM api WHERE active = 1');
}
