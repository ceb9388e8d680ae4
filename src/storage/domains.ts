// mailcow's `domain` and `alias_domain` tables, read and written the way mailcow's
// functions.mailbox.inc.php does (add/edit/delete 'domain' and 'alias_domain'). Domain limits are
// mailcow's columns as mailcow means them: `mailboxes` and `aliases` are the most a domain may
// hold, `defquota`/`maxquota` a new mailbox's default and largest quota, `quota` the whole
// domain's, all three in MiB (mailbox.quota is bytes).
import { type Db, escapeLike, type SqlValue, type Tx } from './db.js';

export interface DomainRecord {
  domain: string;
  description: string;
  /** 1 = active, 0 = inactive. */
  active: number;
  /** Most aliases (not counting mailboxes' own addresses). */
  aliases: number;
  /** Most mailboxes. */
  mailboxes: number;
  /** MiB: a new mailbox's default quota. */
  defquota: number;
  /** MiB: the largest quota of one mailbox. */
  maxquota: number;
  /** MiB: the sum of all mailboxes' quotas. */
  quota: number;
  backupmx: number;
  gal: number;
  created: Date;
}

/** What a domain holds now, to check new limits against (mailcow's edit does the same sums). */
export interface DomainUsage {
  mailboxCount: number;
  aliasCount: number;
  /** MiB, rounded like mailcow's ROUND(quota/1048576). */
  biggestMailboxMiB: number;
  quotaSumMiB: number;
}

export interface AliasDomainRecord {
  aliasDomain: string;
  targetDomain: string;
  active: number;
  created: Date;
}

type Reader = Pick<Db, 'one' | 'many'>;

interface DomainRow {
  domain: string;
  description: string | null;
  active: number;
  aliases: number | string;
  mailboxes: number | string;
  defquota: number | string;
  maxquota: number | string;
  quota: number | string;
  backupmx: number;
  gal: number;
  created: Date;
  [key: string]: unknown;
}

const DOMAIN_COLUMNS =
  'domain, description, active, aliases, mailboxes, defquota, maxquota, quota, backupmx, gal, created';

function toDomain(row: DomainRow): DomainRecord {
  return {
    domain: row.domain,
    description: row.description ?? '',
    active: Number(row.active),
    aliases: Number(row.aliases),
    mailboxes: Number(row.mailboxes),
    defquota: Number(row.defquota),
    maxquota: Number(row.maxquota),
    quota: Number(row.quota),
    backupmx: Number(row.backupmx),
    gal: Number(row.gal),
    created: row.created,
  };
}

export interface DomainListQuery {
  /** Only these domains (a domain admin's ACL); undefined = all. */
  only?: readonly string[];
  /** Names containing this text. */
  search?: string;
  /** Keyset paging: names after this one. */
  after?: string;
  limit: number;
}

export interface DomainListRow extends DomainRecord {
  mailboxCount: number;
  aliasDomainCount: number;
}

/** Domains by name, keyset-paged, each with its mailbox and alias-domain counts (indexed lookups). */
export async function listDomains(db: Reader, query: DomainListQuery): Promise<DomainListRow[]> {
  const where: string[] = [];
  const params: SqlValue[] = [];
  if (query.only) {
    if (query.only.length === 0) return [];
    where.push(`d.domain IN (${query.only.map(() => '?').join(', ')})`);
    params.push(...query.only);
  }
  if (query.search) {
    where.push("d.domain LIKE CONCAT('%', ?, '%') ESCAPE '!'");
    params.push(escapeLike(query.search));
  }
  if (query.after !== undefined) {
    where.push('d.domain > ?');
    params.push(query.after);
  }
  const rows = await db.many<DomainRow & { mailbox_count: number | string; alias_domain_count: number | string }>(
    `SELECT ${DOMAIN_COLUMNS.split(', ')
      .map((column) => `d.${column}`)
      .join(', ')},
            (SELECT COUNT(*) FROM mailbox m WHERE m.domain = d.domain) AS mailbox_count,
            (SELECT COUNT(*) FROM alias_domain a WHERE a.target_domain = d.domain) AS alias_domain_count
       FROM domain d ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY d.domain LIMIT ${Math.floor(query.limit)}`,
    params,
  );
  return rows.map((row) => ({
    ...toDomain(row),
    mailboxCount: Number(row.mailbox_count),
    aliasDomainCount: Number(row.alias_domain_count),
  }));
}

export async function findDomain(db: Pick<Db, 'one'>, domain: string): Promise<DomainRecord | undefined> {
  const row = await db.one<DomainRow>(`SELECT ${DOMAIN_COLUMNS} FROM domain WHERE domain = ?`, [domain]);
  return row ? toDomain(row) : undefined;
}

/** mailcow counts mailboxes of kind '' (not resources) and aliases that are not a mailbox's own address. */
export async function domainUsage(db: Pick<Db, 'one'>, domain: string): Promise<DomainUsage> {
  const mailboxes = await db.one<{ count: number | string; biggest: number | string | null; total: number | string }>(
    `SELECT COUNT(*) AS count, MAX(COALESCE(ROUND(quota / 1048576), 0)) AS biggest,
            COALESCE(ROUND(SUM(quota) / 1048576), 0) AS total
       FROM mailbox WHERE kind = '' AND domain = ?`,
    [domain],
  );
  const aliases = await db.one<{ count: number | string }>(
    'SELECT COUNT(*) AS count FROM alias WHERE domain = ? AND address NOT IN (SELECT username FROM mailbox)',
    [domain],
  );
  return {
    mailboxCount: Number(mailboxes?.count ?? 0),
    aliasCount: Number(aliases?.count ?? 0),
    biggestMailboxMiB: Number(mailboxes?.biggest ?? 0),
    quotaSumMiB: Number(mailboxes?.total ?? 0),
  };
}

/** Any mailbox at all (of any kind) keeps a domain from being deleted, as in mailcow. */
export async function countDomainMailboxes(db: Pick<Db, 'one'>, domain: string): Promise<number> {
  const row = await db.one<{ count: number | string }>('SELECT COUNT(*) AS count FROM mailbox WHERE domain = ?', [
    domain,
  ]);
  return Number(row?.count ?? 0);
}

/** Whether the name is taken by a domain or an alias domain (mailcow refuses both on add). */
export async function isDomainNameTaken(db: Pick<Db, 'one'>, name: string): Promise<boolean> {
  const row = await db.one<{ name: string }>(
    'SELECT domain AS name FROM domain WHERE domain = ? UNION ALL SELECT alias_domain FROM alias_domain WHERE alias_domain = ? LIMIT 1',
    [name, name],
  );
  return row !== undefined;
}

/** Locks the domain's row for the rest of the transaction; false when there is no such domain. */
export async function lockDomain(tx: Pick<Tx, 'one'>, domain: string): Promise<boolean> {
  const row = await tx.one<{ domain: string }>('SELECT domain FROM domain WHERE domain = ? FOR UPDATE', [domain]);
  return row !== undefined;
}

export type DomainFields = Omit<DomainRecord, 'domain' | 'created'>;

export async function insertDomain(db: Pick<Tx, 'execute'>, domain: string, fields: DomainFields): Promise<void> {
  await db.execute(
    `INSERT INTO domain (domain, description, aliases, mailboxes, defquota, maxquota, quota, backupmx, gal, active,
                         relay_unknown_only, relay_all_recipients, created, modified)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, NOW(), NOW())`,
    [
      domain,
      fields.description,
      fields.aliases,
      fields.mailboxes,
      fields.defquota,
      fields.maxquota,
      fields.quota,
      fields.backupmx,
      fields.gal,
      fields.active,
    ],
  );
}

export async function updateDomain(db: Pick<Tx, 'execute'>, domain: string, fields: DomainFields): Promise<void> {
  await db.execute(
    `UPDATE domain SET description = ?, aliases = ?, mailboxes = ?, defquota = ?, maxquota = ?, quota = ?,
                       backupmx = ?, gal = ?, active = ?, modified = NOW()
      WHERE domain = ?`,
    [
      fields.description,
      fields.aliases,
      fields.mailboxes,
      fields.defquota,
      fields.maxquota,
      fields.quota,
      fields.backupmx,
      fields.gal,
      fields.active,
      domain,
    ],
  );
}

/**
 * Delete an empty domain with what mailcow deletes alongside it in the tables postern knows:
 * its aliases, the alias domains pointing at it and its domain_admins rows.
 */
export async function deleteDomainRows(db: Pick<Tx, 'execute'>, domain: string): Promise<boolean> {
  const { affectedRows } = await db.execute('DELETE FROM domain WHERE domain = ?', [domain]);
  if (affectedRows === 0) return false;
  await db.execute('DELETE FROM domain_admins WHERE domain = ?', [domain]);
  await db.execute('DELETE FROM alias WHERE domain = ?', [domain]);
  await db.execute('DELETE FROM alias_domain WHERE target_domain = ?', [domain]);
  return true;
}

interface AliasDomainRow {
  alias_domain: string;
  target_domain: string;
  active: number;
  created: Date;
  [key: string]: unknown;
}

const toAliasDomain = (row: AliasDomainRow): AliasDomainRecord => ({
  aliasDomain: row.alias_domain,
  targetDomain: row.target_domain,
  active: Number(row.active),
  created: row.created,
});

/** Alias domains by name; `only` narrows to those whose target is in the list (a domain admin's ACL). */
export async function listAliasDomains(
  db: Pick<Db, 'many'>,
  query: { only?: readonly string[]; target?: string; limit: number },
): Promise<AliasDomainRecord[]> {
  const where: string[] = [];
  const params: SqlValue[] = [];
  if (query.only) {
    if (query.only.length === 0) return [];
    where.push(`target_domain IN (${query.only.map(() => '?').join(', ')})`);
    params.push(...query.only);
  }
  if (query.target !== undefined) {
    where.push('target_domain = ?');
    params.push(query.target);
  }
  const rows = await db.many<AliasDomainRow>(
    `SELECT alias_domain, target_domain, active, created FROM alias_domain
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY alias_domain LIMIT ${Math.floor(query.limit)}`,
    params,
  );
  return rows.map(toAliasDomain);
}

export async function findAliasDomain(db: Pick<Db, 'one'>, name: string): Promise<AliasDomainRecord | undefined> {
  const row = await db.one<AliasDomainRow>(
    'SELECT alias_domain, target_domain, active, created FROM alias_domain WHERE alias_domain = ?',
    [name],
  );
  return row ? toAliasDomain(row) : undefined;
}

export async function insertAliasDomain(
  db: Pick<Tx, 'execute'>,
  input: { aliasDomain: string; targetDomain: string; active: number },
): Promise<void> {
  await db.execute(
    'INSERT INTO alias_domain (alias_domain, target_domain, active, created, modified) VALUES (?, ?, ?, NOW(), NOW())',
    [input.aliasDomain, input.targetDomain, input.active],
  );
}

export async function setAliasDomainActive(db: Pick<Tx, 'execute'>, name: string, active: number): Promise<boolean> {
  const { affectedRows } = await db.execute(
    'UPDATE alias_domain SET active = ?, modified = NOW() WHERE alias_domain = ?',
    [active, name],
  );
  return affectedRows === 1;
}

/** mailcow's delete: the alias domain and the aliases written under its name. */
export async function deleteAliasDomainRows(db: Pick<Tx, 'execute'>, name: string): Promise<boolean> {
  const { affectedRows } = await db.execute('DELETE FROM alias_domain WHERE alias_domain = ?', [name]);
  if (affectedRows === 0) return false;
  await db.execute('DELETE FROM alias WHERE domain = ?', [name]);
  return true;
}
