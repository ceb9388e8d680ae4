// Rows of mailcow's `app_passwd` table. Only hashes are stored; the secret is shown once.
import type { Db } from './db.js';

export const APP_PASSWORD_PROTOCOLS = [
  'imap_access',
  'smtp_access',
  'pop3_access',
  'sieve_access',
  'dav_access',
  'eas_access',
] as const;
export type AppPasswordProtocol = (typeof APP_PASSWORD_PROTOCOLS)[number];

export interface AppPasswordRecord {
  id: number;
  name: string;
  mailbox: string;
  passwordHash: string;
  active: boolean;
  protocols: Record<AppPasswordProtocol, boolean>;
  created: Date | null;
}

type AppPasswordRow = Record<AppPasswordProtocol, number> & {
  id: number;
  name: string;
  mailbox: string;
  password: string;
  active: number;
  created: Date | null;
};

const COLUMNS = `id, name, mailbox, password, active, created, ${APP_PASSWORD_PROTOCOLS.join(', ')}`;

function toRecord(row: AppPasswordRow): AppPasswordRecord {
  const protocols = Object.fromEntries(
    APP_PASSWORD_PROTOCOLS.map((column) => [column, Number(row[column]) === 1]),
  ) as Record<AppPasswordProtocol, boolean>;
  return {
    id: Number(row.id),
    name: row.name,
    mailbox: row.mailbox,
    passwordHash: row.password,
    active: Number(row.active) === 1,
    protocols,
    created: row.created,
  };
}

// `mailbox` is compared byte-wise too (see findLoginMailbox): under mailcow's collation rows of
// `érin@…` would otherwise belong to `erin@…`. The plain `=` keeps the mailbox index in use.
const OF_MAILBOX = 'mailbox = ? AND BINARY mailbox = ?';

/** Active app passwords of a mailbox, oldest first (mailcow's "first match wins" order). */
export async function listActiveAppPasswords(db: Db, mailbox: string): Promise<AppPasswordRecord[]> {
  const rows = await db.many<AppPasswordRow>(
    `SELECT ${COLUMNS} FROM app_passwd WHERE ${OF_MAILBOX} AND active = 1 ORDER BY id`,
    [mailbox, mailbox],
  );
  return rows.map(toRecord);
}

export async function listAppPasswords(db: Db, mailbox: string): Promise<AppPasswordRecord[]> {
  const rows = await db.many<AppPasswordRow>(`SELECT ${COLUMNS} FROM app_passwd WHERE ${OF_MAILBOX} ORDER BY id`, [
    mailbox,
    mailbox,
  ]);
  return rows.map(toRecord);
}

export async function insertAppPassword(
  db: Pick<Db, 'execute'>,
  input: {
    mailbox: string;
    domain: string;
    name: string;
    passwordHash: string;
    protocols: readonly AppPasswordProtocol[];
  },
): Promise<number> {
  const flags = APP_PASSWORD_PROTOCOLS.map((column) => (input.protocols.includes(column) ? 1 : 0));
  const { insertId } = await db.execute(
    `INSERT INTO app_passwd (name, mailbox, domain, password, active, created, modified, ${APP_PASSWORD_PROTOCOLS.join(', ')})
     VALUES (?, ?, ?, ?, 1, NOW(), NOW(), ${APP_PASSWORD_PROTOCOLS.map(() => '?').join(', ')})`,
    [input.name, input.mailbox, input.domain, input.passwordHash, ...flags],
  );
  return insertId;
}

/** Delete one app password of one mailbox; false when it does not exist or is someone else's. */
export async function deleteAppPassword(db: Pick<Db, 'execute'>, mailbox: string, id: number): Promise<boolean> {
  const { affectedRows } = await db.execute(`DELETE FROM app_passwd WHERE id = ? AND ${OF_MAILBOX}`, [
    id,
    mailbox,
    mailbox,
  ]);
  return affectedRows === 1;
}
