// What the admin API reads and writes beyond the login path: a mailbox as an admin sees it, its
// auth source, and the raw identity_provider rows behind mailcow's "authsource_in_use" rules.
// Password hashes are never selected here: the admin API only learns whether one is set.
import { foldAddress } from '../address.js';
import { type Db, escapeLike, type Tx } from './db.js';
import { type MailboxAuthSource, parseAttributes } from './mailboxes.js';

export interface AdminMailbox {
  username: string;
  name: string;
  domain: string;
  /** 1 = active, 2 = receives mail but no login, 0 = inactive. */
  active: number;
  /** NULL in mailcow means "never logs in". */
  authsource: MailboxAuthSource | null;
  /** Bytes; 0 = unlimited. */
  quota: number;
  kind: string;
  attributes: Record<string, unknown>;
  /** A local `{SCHEME}hash` is stored (IdP-created mailboxes have ''). */
  hasLocalPassword: boolean;
}

interface AdminMailboxRow {
  username: string;
  name: string | null;
  domain: string;
  active: number;
  authsource: string | null;
  quota: number | string;
  kind: string;
  attributes: unknown;
  has_local_password: number;
  [key: string]: unknown;
}

const AUTH_SOURCES: readonly MailboxAuthSource[] = ['mailcow', 'keycloak', 'generic-oidc', 'ldap'];

export async function findAdminMailbox(db: Pick<Db, 'one'>, username: string): Promise<AdminMailbox | undefined> {
  const row = await db.one<AdminMailboxRow>(
    `SELECT username, name, domain, active, authsource, quota, kind, attributes, password <> '' AS has_local_password
       FROM mailbox WHERE username = ? AND BINARY username = ?`,
    [foldAddress(username), foldAddress(username)],
  );
  if (!row) return undefined;
  return {
    username: row.username,
    name: row.name ?? '',
    domain: row.domain,
    active: Number(row.active),
    authsource: AUTH_SOURCES.find((source) => source === row.authsource) ?? null,
    quota: Number(row.quota),
    kind: row.kind,
    attributes: parseAttributes(row.attributes),
    hasLocalPassword: Number(row.has_local_password) === 1,
  };
}

/**
 * Change only the auth source column. The password column is deliberately left alone: mailcow
 * keeps the local hash while a mailbox belongs to an IdP, so switching back restores it.
 */
export async function setMailboxAuthSource(
  db: Pick<Db, 'execute'>,
  username: string,
  authsource: MailboxAuthSource,
): Promise<boolean> {
  const { affectedRows } = await db.execute(
    'UPDATE mailbox SET authsource = ?, modified = NOW() WHERE username = ? AND BINARY username = ?',
    [authsource, username, username],
  );
  return affectedRows === 1;
}

/** Mailboxes per external auth source (anything but `mailcow` and NULL), e.g. `{ keycloak: 3 }`. */
export async function countExternalMailboxes(db: Pick<Db, 'many'>): Promise<Record<string, number>> {
  const rows = await db.many<{ authsource: string; mailboxes: number | string }>(
    `SELECT authsource, COUNT(*) AS mailboxes FROM mailbox
      WHERE authsource IS NOT NULL AND authsource <> 'mailcow' GROUP BY authsource ORDER BY authsource`,
  );
  return Object.fromEntries(rows.map((row) => [row.authsource, Number(row.mailboxes)]));
}

export interface MailboxListRow {
  username: string;
  name: string;
  domain: string;
  active: number;
  authsource: MailboxAuthSource | null;
  /** Bytes; 0 = unlimited. */
  quota: number;
  /** Bytes in use, from Dovecot's quota2 row (0 when Dovecot has not written one). */
  usedBytes: number;
}

/** The list's columns, for the plain list and the search (`m` the mailbox, `q` its quota2 row). */
export const MAILBOX_LIST_SELECT = `SELECT m.username, m.name, m.domain, m.active, m.authsource, m.quota, q.bytes AS used
       FROM mailbox m LEFT JOIN quota2 q ON q.username = m.username`;

export type MailboxListDbRow = {
  username: string;
  name: string | null;
  domain: string;
  active: number;
  authsource: string | null;
  quota: number | string;
  used: number | string | null;
};

export function toMailboxListRow(row: MailboxListDbRow): MailboxListRow {
  return {
    username: row.username,
    name: row.name ?? '',
    domain: row.domain,
    active: Number(row.active),
    authsource: AUTH_SOURCES.find((source) => source === row.authsource) ?? null,
    quota: Number(row.quota),
    usedBytes: Number(row.used ?? 0),
  };
}

export interface MailboxListQuery {
  /** Only mailboxes of these domains (a domain admin's ACL); undefined = all. */
  only?: readonly string[];
  /** Only this domain (the `domain` key). */
  domain?: string;
  /** Addresses starting with this text (a range of the primary key). */
  prefix?: string;
  /** Keyset paging: addresses after this one. */
  after?: string;
  limit: number;
}

/**
 * Mailboxes by address, keyset-paged: every filter is a range of an index (the primary key
 * `username`, or `domain`, whose entries carry the key in order), so the first page of 50,000
 * costs what the page costs. Counting is left out on purpose: COUNT(*) would read every row.
 */
export async function listAdminMailboxes(db: Pick<Db, 'many'>, query: MailboxListQuery): Promise<MailboxListRow[]> {
  const where: string[] = [];
  const params: (string | number)[] = [];
  if (query.only) {
    if (query.only.length === 0) return [];
    where.push(`m.domain IN (${query.only.map(() => '?').join(', ')})`);
    params.push(...query.only);
  }
  if (query.domain !== undefined) {
    where.push('m.domain = ?');
    params.push(query.domain);
  }
  if (query.prefix) {
    where.push("m.username LIKE CONCAT(?, '%') ESCAPE '!'");
    params.push(escapeLike(query.prefix));
  }
  if (query.after !== undefined) {
    where.push('m.username > ?');
    params.push(query.after);
  }
  const rows = await db.many<MailboxListDbRow>(
    `${MAILBOX_LIST_SELECT}
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY m.username LIMIT ${Math.floor(query.limit)}`,
    params,
  );
  return rows.map(toMailboxListRow);
}

/** The columns an admin edits; attributes is the whole JSON object, written back as is. */
export async function updateMailboxFields(
  db: Pick<Tx, 'execute'>,
  username: string,
  fields: { name: string; quota: number; active: number; attributes: Record<string, unknown> },
): Promise<void> {
  await db.execute(
    'UPDATE mailbox SET name = ?, quota = ?, active = ?, attributes = ?, modified = NOW() WHERE username = ? AND BINARY username = ?',
    [fields.name, fields.quota, fields.active, JSON.stringify(fields.attributes), username, username],
  );
}

/** A new local `{SCHEME}hash`. */
/** Locks the mailbox's row for the rest of the transaction; false when there is no such mailbox. */
export async function lockMailbox(tx: Pick<Tx, 'one'>, username: string): Promise<boolean> {
  const row = await tx.one<{ username: string }>('SELECT username FROM mailbox WHERE username = ? FOR UPDATE', [
    username,
  ]);
  return row !== undefined;
}

/** The password, quota (bytes) and state a new mailbox gets after its template made the rows. */
export async function setNewMailboxCredentials(
  tx: Pick<Tx, 'execute'>,
  username: string,
  fields: { hash: string; quotaBytes: number; active: number },
): Promise<void> {
  await tx.execute(
    'UPDATE mailbox SET password = ?, quota = ?, active = ? WHERE username = ? AND BINARY username = ?',
    [fields.hash, fields.quotaBytes, fields.active, username, username],
  );
}

export async function setMailboxPassword(db: Pick<Tx, 'execute'>, username: string, hash: string): Promise<boolean> {
  const { affectedRows } = await db.execute(
    'UPDATE mailbox SET password = ?, modified = NOW() WHERE username = ? AND BINARY username = ?',
    [hash, username, username],
  );
  return affectedRows === 1;
}

/**
 * mailcow's mailbox delete in the tables postern knows: the mailbox (app_passwd and user_acl
 * follow by foreign key), aliases that only forward to it, its address taken out of other
 * aliases' goto lists, quota2/quota2replica and its tfa rows. The maildir is Dovecot's.
 */
export async function deleteMailboxRows(db: Pick<Tx, 'execute' | 'many'>, username: string): Promise<boolean> {
  const { affectedRows } = await db.execute('DELETE FROM mailbox WHERE username = ? AND BINARY username = ?', [
    username,
    username,
  ]);
  if (affectedRows === 0) return false;
  await db.execute('DELETE FROM user_acl WHERE username = ?', [username]);
  await db.execute('DELETE FROM alias WHERE goto = ?', [username]);
  await db.execute('DELETE FROM quota2 WHERE username = ?', [username]);
  await db.execute('DELETE FROM quota2replica WHERE username = ?', [username]);
  await db.execute('DELETE FROM tfa WHERE username = ?', [username]);
  const forwarding = await db.many<{ id: number; goto: string }>(
    "SELECT id, goto FROM alias WHERE CONCAT(',', goto, ',') LIKE CONCAT('%,', ?, ',%')",
    [username],
  );
  for (const alias of forwarding) {
    const rest = alias.goto
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part && part !== username);
    if (rest.length)
      await db.execute('UPDATE alias SET goto = ?, modified = NOW() WHERE id = ?', [rest.join(','), alias.id]);
    else await db.execute('DELETE FROM alias WHERE id = ?', [alias.id]);
  }
  return true;
}

export interface LastLogin {
  service: string;
  ip: string;
  at: Date;
  /** The app password's id when one was used. */
  appPassword: number | null;
}

/** mailcow's sasl_log: one row per (service, client IP), newest first (KEY username). */
export async function lastLogins(db: Pick<Db, 'many'>, username: string, limit = 20): Promise<LastLogin[]> {
  const rows = await db.many<{ service: string; real_rip: string; datetime: Date; app_password: number | null }>(
    `SELECT service, real_rip, datetime, app_password FROM sasl_log WHERE username = ?
      ORDER BY datetime DESC LIMIT ${Math.floor(limit)}`,
    [username],
  );
  return rows.map((row) => ({
    service: row.service,
    ip: row.real_rip,
    at: row.datetime,
    appPassword: row.app_password === null ? null : Number(row.app_password),
  }));
}
export { deleteIdpRows, readIdpRows } from './identity-provider.js';
