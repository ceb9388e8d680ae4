// What the admin API reads and writes beyond the login path: a mailbox as an admin sees it, its
// auth source, and the raw identity_provider rows behind mailcow's "authsource_in_use" rules.
// Password hashes are never selected here: the admin API only learns whether one is set.
import { foldAddress } from '../address.js';
import type { Db } from './db.js';
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

export { deleteIdpRows, readIdpRows } from './identity-provider.js';
