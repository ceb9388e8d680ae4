// What `postern check` asks MySQL about itself: who we are, which migrations ran, whether the
// user may create triggers. Read-only; information_schema shows a user its own grants.
import type { Db } from './db.js';

/** The server's version and the account MySQL matched us to (`user@host`). */
export async function readServerIdentity(db: Pick<Db, 'one'>): Promise<{ version: string; user: string } | undefined> {
  return db.one<{ version: string; user: string }>('SELECT VERSION() AS version, CURRENT_USER() AS user');
}

/** The ids recorded in postern_migrations, or undefined when that ledger table does not exist yet. */
export async function readAppliedMigrationIds(db: Pick<Db, 'one' | 'many'>): Promise<Set<number> | undefined> {
  const ledger = await db.one<{ n: number }>(
    "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'postern_migrations'",
  );
  if (Number(ledger?.n) === 0) return undefined;
  const rows = await db.many<{ id: number }>('SELECT id FROM postern_migrations');
  return new Set(rows.map((row) => Number(row.id)));
}

/**
 * Whether `grantee` ('user'@'host', as information_schema writes it) holds TRIGGER globally, on
 * this database, or on every one of `tables` in it.
 */
export async function holdsTriggerPrivilege(
  db: Pick<Db, 'one'>,
  grantee: string,
  tables: readonly string[],
): Promise<boolean> {
  const held = await db.one<{ n: number }>(
    `SELECT
       (SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES
         WHERE GRANTEE = ? AND PRIVILEGE_TYPE = 'TRIGGER')
     + (SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES
         WHERE GRANTEE = ? AND PRIVILEGE_TYPE = 'TRIGGER' AND DATABASE() LIKE TABLE_SCHEMA)
     + (SELECT IF(COUNT(DISTINCT TABLE_NAME) = ?, 1, 0) FROM information_schema.TABLE_PRIVILEGES
         WHERE GRANTEE = ? AND PRIVILEGE_TYPE = 'TRIGGER' AND TABLE_SCHEMA = DATABASE()
           AND TABLE_NAME IN (${tables.map(() => '?').join(', ')})) AS n`,
    [grantee, grantee, tables.length, grantee, ...tables],
  );
  return Number(held?.n) > 0;
}
