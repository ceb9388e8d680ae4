// The admin mailbox list's search: mailboxes whose address (so its local part or its domain) or
// full name contains the text, case-insensitively (mailcow's utf8mb4_general_ci), in address
// order and keyset-paged like the plain list. mailcow's `mailbox` table has no index that serves
// "contains" (postern never alters mailcow's tables), so the scan walks the primary key in
// order and stops at the page's last match: a common text costs a few pages of rows. Where
// matches are rare, the walk is bounded: at most SEARCH_SCAN_ROWS rows per request, after
// which the answer says where it stopped (`scannedTo`) so the next request goes on from there.
import { type Db, escapeLike } from './db.js';
import { MAILBOX_LIST_SELECT, type MailboxListDbRow, type MailboxListRow, toMailboxListRow } from './mailbox-admin.js';

/** Rows one search request reads at most (measured: see README, "Mailboxes"). */
export const SEARCH_SCAN_ROWS = 50_000;

export interface MailboxSearchQuery {
  /** The text looked for in the address and the name (1–255 characters). */
  text: string;
  /** Only mailboxes of these domains (a domain admin's ACL); undefined = all. */
  only?: readonly string[];
  /** Only this domain. */
  domain?: string;
  /** Keyset paging: addresses after this one. */
  after?: string;
  limit: number;
  /** Rows read at most (default SEARCH_SCAN_ROWS). */
  scanRows?: number;
}

export interface MailboxSearchResult {
  rows: MailboxListRow[];
  /**
   * Set when the walk stopped at its bound before the page was full: the last address read.
   * There may be more matches after it; search again with `after` = this.
   */
  scannedTo?: string;
}

function scope(query: MailboxSearchQuery): { where: string[]; params: string[] } {
  const where: string[] = [];
  const params: string[] = [];
  if (query.only) {
    where.push(`domain IN (${query.only.map(() => '?').join(', ')})`);
    params.push(...query.only);
  }
  if (query.domain !== undefined) {
    where.push('domain = ?');
    params.push(query.domain);
  }
  if (query.after !== undefined) {
    where.push('username > ?');
    params.push(query.after);
  }
  return { where, params };
}

export async function searchAdminMailboxes(
  db: Pick<Db, 'many'>,
  query: MailboxSearchQuery,
): Promise<MailboxSearchResult> {
  if (query.only?.length === 0 || query.text === '') return { rows: [] };
  const scanRows = Math.floor(query.scanRows ?? SEARCH_SCAN_ROWS);
  const { where, params } = scope(query);
  // Where the bounded walk ends: the scanRows-th address in scope, and whether any follows it
  // (none: the walk reaches the end of the list and needs no bound).
  const edge = await db.many<{ username: string }>(
    `SELECT username FROM mailbox ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY username LIMIT 2 OFFSET ${scanRows - 1}`,
    params,
  );
  const bound = edge.length === 2 ? edge[0] : undefined;
  const pattern = `%${escapeLike(query.text)}%`;
  const rows = await db.many<MailboxListDbRow>(
    `${MAILBOX_LIST_SELECT}
      WHERE ${[...where.map((condition) => `m.${condition}`), ...(bound ? ['m.username <= ?'] : [])].join(' AND ')}
            ${where.length || bound ? 'AND' : ''} (m.username LIKE ? ESCAPE '!' OR m.name LIKE ? ESCAPE '!')
      ORDER BY m.username LIMIT ${Math.floor(query.limit)}`,
    [...params, ...(bound ? [bound.username] : []), pattern, pattern],
  );
  return {
    rows: rows.map(toMailboxListRow),
    ...(bound && rows.length < query.limit ? { scannedTo: bound.username } : {}),
  };
}
