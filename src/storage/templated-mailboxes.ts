// The mailbox rows a template writes, as mailcow writes them: a new mailbox with the rows
// mailcow adds beside it (self alias, quota2, quota2replica, user_acl), an existing one brought
// in line, and user_acl. What the values are is templates/apply-template.ts's business; names
// are matched exactly (BINARY), beside the collation's own comparison so the key is used.
import type { Tx } from './db.js';
import { parseAttributes } from './mailboxes.js';

/**
 * The attributes of a mailbox before any template key applies, in mailcow's "0"/"1" string
 * encoding (mailbox.inc.php's add mailbox with vars.inc.php's MAILBOX_DEFAULT_ATTRIBUTES).
 * test/support/seed.ts writes its mailboxes with these too.
 */
export const DEFAULT_MAILBOX_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze({
  force_pw_update: '0',
  force_tfa: '0',
  tls_enforce_in: '0',
  tls_enforce_out: '0',
  sogo_access: '1',
  imap_access: '1',
  pop3_access: '1',
  smtp_access: '1',
  sieve_access: '1',
  eas_access: '1',
  dav_access: '1',
  mailbox_format: 'maildir:',
  quarantine_notification: 'hourly',
  quarantine_category: 'reject',
});

/** Columns of mailcow's user_acl that a template may set. */
export const ACL_COLUMNS = [
  'spam_alias',
  'tls_policy',
  'spam_score',
  'spam_policy',
  'delimiter_action',
  'syncjobs',
  'eas_reset',
  'sogo_profile_reset',
  'pushover',
  'quarantine',
  'quarantine_attachments',
  'quarantine_notification',
  'quarantine_category',
  'app_passwds',
  'pw_reset',
] as const;

export type AclColumn = (typeof ACL_COLUMNS)[number];

/** Whether the domain exists under exactly this name, and is active (1). */
export async function findDomainActive(tx: Pick<Tx, 'one'>, domain: string): Promise<boolean | undefined> {
  const row = await tx.one<{ active: number }>('SELECT active FROM domain WHERE domain = ? AND BINARY domain = ?', [
    domain,
    domain,
  ]);
  return row ? Number(row.active) === 1 : undefined;
}

/**
 * A mailbox or alias the collation considers equal to `username` (mailcow's utf8mb4_general_ci
 * equates é/e, ı/i…): `exact` when it is this very name.
 */
export async function findNameUnderCollation(
  tx: Pick<Tx, 'one'>,
  username: string,
): Promise<{ username: string; exact: boolean } | undefined> {
  const row = await tx.one<{ username: string; exact: number }>(
    `SELECT username, BINARY username = ? AS exact FROM mailbox WHERE username = ?
     UNION ALL
     SELECT address, BINARY address = ? AS exact FROM alias WHERE address = ? AND BINARY address <> ?
     LIMIT 1`,
    [username, username, username, username, username],
  );
  return row ? { username: row.username, exact: Number(row.exact) === 1 } : undefined;
}

export interface NewMailboxRow {
  username: string;
  name: string;
  localPart: string;
  domain: string;
  quotaBytes: number;
  attributes: Record<string, unknown>;
  authSource: string;
  active: number;
}

/**
 * Insert the mailbox with an empty local password, then (only when it was inserted) its self
 * alias, quota2 and quota2replica rows. `false` when a mailbox of that name already exists.
 */
export async function insertMailboxWithCompanions(tx: Pick<Tx, 'execute'>, row: NewMailboxRow): Promise<boolean> {
  const { affectedRows } = await tx.execute(
    `INSERT IGNORE INTO mailbox (username, password, name, local_part, domain, quota, attributes, kind, authsource, active, created, modified)
     VALUES (?, '', ?, ?, ?, ?, ?, '', ?, ?, NOW(), NOW())`,
    [
      row.username,
      row.name,
      row.localPart,
      row.domain,
      row.quotaBytes,
      JSON.stringify(row.attributes),
      row.authSource,
      row.active,
    ],
  );
  if (affectedRows === 0) return false;
  await tx.execute(
    `INSERT IGNORE INTO alias (address, goto, domain, active, created, modified) VALUES (?, ?, ?, 1, NOW(), NOW())`,
    [row.username, row.username, row.domain],
  );
  await tx.execute('INSERT IGNORE INTO quota2 (username, bytes, messages) VALUES (?, 0, 0)', [row.username]);
  await tx.execute('INSERT IGNORE INTO quota2replica (username, bytes, messages) VALUES (?, 0, 0)', [row.username]);
  return true;
}

/** The user_acl row: the given columns set (insert or update), or a row of defaults when none is given. */
export async function writeUserAcl(
  tx: Pick<Tx, 'execute'>,
  username: string,
  values: Partial<Record<AclColumn, number>>,
): Promise<void> {
  const known = ACL_COLUMNS.filter((column) => values[column] !== undefined);
  if (known.length === 0) {
    await tx.execute('INSERT IGNORE INTO user_acl (username) VALUES (?)', [username]);
    return;
  }
  await tx.execute(
    `INSERT INTO user_acl (username, ${known.join(', ')}) VALUES (?, ${known.map(() => '?').join(', ')})
     ON DUPLICATE KEY UPDATE ${known.map((column) => `${column} = VALUES(${column})`).join(', ')}`,
    [username, ...known.map((column) => values[column] as number)],
  );
}

export interface TemplatedMailbox {
  name: string | null;
  attributes: Record<string, unknown>;
  active: number;
  authsource: string | null;
}

/** Read the mailbox (exact name) and lock its row for the rest of the transaction. */
export async function lockTemplatedMailbox(
  tx: Pick<Tx, 'one'>,
  username: string,
): Promise<TemplatedMailbox | undefined> {
  const row = await tx.one<{ name: string | null; attributes: unknown; active: number; authsource: string | null }>(
    'SELECT name, attributes, active, authsource FROM mailbox WHERE username = ? AND BINARY username = ? FOR UPDATE',
    [username, username],
  );
  return row
    ? {
        name: row.name,
        attributes: parseAttributes(row.attributes),
        active: Number(row.active),
        authsource: row.authsource,
      }
    : undefined;
}

/** Overwrite what a template decides of an existing mailbox (exact name). */
export async function updateTemplatedMailbox(
  tx: Pick<Tx, 'execute'>,
  username: string,
  values: { quotaBytes: number; attributes: Record<string, unknown>; active: number; name: string },
): Promise<void> {
  await tx.execute(
    'UPDATE mailbox SET quota = ?, attributes = ?, active = ?, name = ?, modified = NOW() WHERE username = ? AND BINARY username = ?',
    [values.quotaBytes, JSON.stringify(values.attributes), values.active, values.name, username, username],
  );
}
