// The mailbox and domain rows a directory sync reads and writes. Reads match names exactly:
// an IN list matches under the column's collation (mailcow's utf8mb4_general_ci equates é with
// e), so rows whose name is not exactly one of those asked for are dropped here.
import type { Db, Tx } from './db.js';
import { parseAttributes } from './mailboxes.js';

/** One mailbox as sync sees it: the columns it plans and writes from, attributes parsed. */
export interface SyncMailboxRow {
  username: string;
  name: string | null;
  active: number;
  authsource: string | null;
  attributes: Record<string, unknown>;
}

interface MailboxRow {
  username: string;
  name: string | null;
  active: number;
  authsource: string | null;
  attributes: unknown;
  [key: string]: unknown;
}

const MAILBOX_COLUMNS = 'username, name, active, authsource, attributes';

function toSyncMailbox(row: MailboxRow): SyncMailboxRow {
  return {
    username: row.username,
    name: row.name,
    active: Number(row.active),
    authsource: row.authsource ?? null,
    attributes: parseAttributes(row.attributes),
  };
}

/** The mailboxes named exactly as one of `names` (already folded). */
export async function findSyncMailboxes(db: Pick<Db, 'many'>, names: readonly string[]): Promise<SyncMailboxRow[]> {
  if (names.length === 0) return [];
  const rows = await db.many<MailboxRow>(
    `SELECT ${MAILBOX_COLUMNS} FROM mailbox WHERE username IN (${names.map(() => '?').join(', ')})`,
    [...names],
  );
  const wanted = new Set(names);
  return rows.filter((row) => wanted.has(row.username)).map(toSyncMailbox);
}

/** Whether each of `domains` that exists (exact name) is active; unknown domains are absent. */
export async function findDomainStates(
  db: Pick<Db, 'many'>,
  domains: readonly string[],
): Promise<{ domain: string; active: boolean }[]> {
  if (domains.length === 0) return [];
  const rows = await db.many<{ domain: string; active: number }>(
    `SELECT domain, active FROM domain WHERE domain IN (${domains.map(() => '?').join(', ')})`,
    [...domains],
  );
  const asked = new Set(domains);
  return rows
    .filter((row) => asked.has(row.domain))
    .map((row) => ({ domain: row.domain, active: Number(row.active) === 1 }));
}

/** One keyset batch of the mailboxes of `authSource`, by name, after `after` ('' = from the start). */
export async function listSourceMailboxesAfter(
  db: Pick<Db, 'many'>,
  authSource: string,
  after: string,
  limit: number,
): Promise<SyncMailboxRow[]> {
  const rows = await db.many<MailboxRow>(
    `SELECT ${MAILBOX_COLUMNS} FROM mailbox WHERE authsource = ? AND username > ? ORDER BY username LIMIT ${Math.floor(limit)}`,
    [authSource, after],
  );
  return rows.map(toSyncMailbox);
}

/** Read one mailbox (exact name) and lock its row for the rest of the transaction. */
export async function lockSyncMailbox(tx: Pick<Tx, 'one'>, username: string): Promise<SyncMailboxRow | undefined> {
  const row = await tx.one<MailboxRow>(
    `SELECT ${MAILBOX_COLUMNS} FROM mailbox WHERE username = ? AND BINARY username = ? FOR UPDATE`,
    [username, username],
  );
  return row ? toSyncMailbox(row) : undefined;
}

/** Set a mailbox's active state and attributes (exact name). */
export async function writeMailboxState(
  tx: Pick<Tx, 'execute'>,
  username: string,
  active: number,
  attributes: Record<string, unknown>,
): Promise<void> {
  await tx.execute(
    'UPDATE mailbox SET active = ?, attributes = ?, modified = NOW() WHERE username = ? AND BINARY username = ?',
    [active, JSON.stringify(attributes), username, username],
  );
}
