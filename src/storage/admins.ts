// mailcow's `admin` and `domain_admins` tables: admin accounts, their role and domain ACL.
// Written the way mailcow writes them (functions.admin.inc.php / functions.domain_admin.inc.php):
// superadmins get superadmin = 1 and a domain_admins row 'ALL'; domain admins superadmin = 0 and
// one row per domain. Password hashes are read only for sign-in and never leave this module's callers.
import type { Db, Tx } from './db.js';
import { parseAttributes } from './mailboxes.js';

export interface AdminAccount {
  username: string;
  superadmin: boolean;
  active: boolean;
  /** The domain ACL of a domain admin (active rows), lower case; [] for superadmins. */
  domains: string[];
  /** mailcow's attributes: force_tfa, force_pw_update (0/1), and postern's tfa_reset_notice. */
  attributes: Record<string, unknown>;
  created: Date;
}

interface AdminRow {
  username: string;
  superadmin: number;
  active: number;
  attributes: unknown;
  created: Date;
  [key: string]: unknown;
}

type Reader = Pick<Db, 'one' | 'many'>;

async function domainsOf(db: Reader, username: string): Promise<string[]> {
  const rows = await db.many<{ domain: string }>(
    "SELECT domain FROM domain_admins WHERE username = ? AND active = 1 AND domain <> 'ALL' ORDER BY domain",
    [username],
  );
  return rows.map((row) => row.domain.toLowerCase());
}

function toAccount(row: AdminRow, domains: string[]): AdminAccount {
  const superadmin = Number(row.superadmin) === 1;
  return {
    username: row.username,
    superadmin,
    active: Number(row.active) === 1,
    domains: superadmin ? [] : domains,
    attributes: parseAttributes(row.attributes),
    created: row.created,
  };
}

export async function findAdmin(db: Reader, username: string): Promise<AdminAccount | undefined> {
  const row = await db.one<AdminRow>(
    'SELECT username, superadmin, active, attributes, created FROM admin WHERE username = ?',
    [username],
  );
  return row ? toAccount(row, await domainsOf(db, row.username)) : undefined;
}

/** The stored `{SCHEME}hash` and whether the account may sign in, for password checks only. */
export async function findAdminCredential(
  db: Reader,
  username: string,
): Promise<{ username: string; passwordHash: string; active: boolean } | undefined> {
  const row = await db.one<{ username: string; password: string; active: number }>(
    'SELECT username, password, active FROM admin WHERE username = ?',
    [username],
  );
  return row ? { username: row.username, passwordHash: row.password, active: Number(row.active) === 1 } : undefined;
}

export async function listAdmins(db: Reader): Promise<AdminAccount[]> {
  const rows = await db.many<AdminRow>(
    'SELECT username, superadmin, active, attributes, created FROM admin ORDER BY username',
  );
  const acl = await db.many<{ username: string; domain: string }>(
    "SELECT username, domain FROM domain_admins WHERE active = 1 AND domain <> 'ALL' ORDER BY domain",
  );
  return rows.map((row) =>
    toAccount(
      row,
      acl.filter((entry) => entry.username === row.username).map((entry) => entry.domain.toLowerCase()),
    ),
  );
}

export async function hasAnyActiveAdmin(db: Reader): Promise<boolean> {
  return (await db.one('SELECT 1 AS found FROM admin WHERE active = 1 LIMIT 1')) !== undefined;
}

/**
 * Active superadmins, row-locked inside a transaction, so two concurrent demotions cannot both
 * see "one other superadmin remains" and leave none.
 */
export async function lockActiveSuperadmins(tx: Tx): Promise<string[]> {
  const rows = await tx.many<{ username: string }>(
    'SELECT username FROM admin WHERE superadmin = 1 AND active = 1 ORDER BY username FOR UPDATE',
  );
  return rows.map((row) => row.username);
}

export async function insertAdmin(
  tx: Tx,
  input: { username: string; passwordHash: string; superadmin: boolean; domains: readonly string[]; active: boolean },
): Promise<void> {
  await tx.execute(
    'INSERT INTO admin (username, password, superadmin, active, attributes, created, modified) VALUES (?, ?, ?, ?, ?, NOW(), NOW())',
    [
      input.username,
      input.passwordHash,
      input.superadmin ? 1 : 0,
      input.active ? 1 : 0,
      JSON.stringify({ force_tfa: 0, force_pw_update: 0 }),
    ],
  );
  await replaceAdminDomains(tx, input.username, input.superadmin ? ['ALL'] : input.domains, input.active);
}

/** The ACL rows of an admin, replaced as mailcow's domain_admin edit does (delete, then insert). */
export async function replaceAdminDomains(
  tx: Tx,
  username: string,
  domains: readonly string[],
  active: boolean,
): Promise<void> {
  await tx.execute('DELETE FROM domain_admins WHERE username = ?', [username]);
  for (const domain of domains) {
    await tx.execute('INSERT INTO domain_admins (username, domain, created, active) VALUES (?, ?, NOW(), ?)', [
      username,
      domain,
      active ? 1 : 0,
    ]);
  }
}

export async function updateAdminFlags(
  tx: Tx,
  username: string,
  flags: { superadmin: boolean; active: boolean },
): Promise<void> {
  await tx.execute('UPDATE admin SET superadmin = ?, active = ?, modified = NOW() WHERE username = ?', [
    flags.superadmin ? 1 : 0,
    flags.active ? 1 : 0,
    username,
  ]);
}

export async function updateAdminPassword(db: Pick<Db, 'execute'>, username: string, passwordHash: string) {
  const result = await db.execute('UPDATE admin SET password = ?, modified = NOW() WHERE username = ?', [
    passwordHash,
    username,
  ]);
  return result.affectedRows === 1;
}

/** Merge keys into the attributes JSON (mailcow's force_tfa etc. stay as they are). */
export async function mergeAdminAttributes(
  db: Pick<Db, 'execute'>,
  username: string,
  patch: Record<string, unknown>,
): Promise<void> {
  await db.execute("UPDATE admin SET attributes = JSON_MERGE_PATCH(COALESCE(attributes, '{}'), ?) WHERE username = ?", [
    JSON.stringify(patch),
    username,
  ]);
}

export async function deleteAdminRows(tx: Tx, username: string): Promise<boolean> {
  await tx.execute('DELETE FROM domain_admins WHERE username = ?', [username]);
  const result = await tx.execute('DELETE FROM admin WHERE username = ?', [username]);
  return result.affectedRows === 1;
}

/** Whether a domain exists in mailcow's domain table (a domain admin's ACL may only name real ones). */
export async function existingDomains(db: Reader, domains: readonly string[]): Promise<string[]> {
  if (domains.length === 0) return [];
  const rows = await db.many<{ domain: string }>(
    `SELECT domain FROM domain WHERE domain IN (${domains.map(() => '?').join(', ')})`,
    [...domains],
  );
  return rows.map((row) => row.domain.toLowerCase());
}
