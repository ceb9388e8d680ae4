// Applies pending migrations once, even with several replicas starting together (a MySQL
// named lock serialises them). Recorded in postern_migrations; never touches applied ones.
import type { Logger } from '../log.js';
import type { Db } from './db.js';
import { migrations as allMigrations, type Migration } from './migrations/index.js';

const LOCK_NAME = 'postern_migrations';
const LOCK_TIMEOUT_SECONDS = 60;

export async function applyMigrations(
  db: Db,
  log: Logger,
  migrations: readonly Migration[] = allMigrations,
): Promise<number[]> {
  return db.transaction(async (tx) => {
    // GET_LOCK is per connection, and the transaction pins us to one connection.
    const lock = await tx.one<{ got: number | null }>('SELECT GET_LOCK(?, ?) AS got', [
      LOCK_NAME,
      LOCK_TIMEOUT_SECONDS,
    ]);
    if (lock?.got !== 1) throw new Error('could not take the migration lock within 60 s');
    try {
      await tx.execute(
        `CREATE TABLE IF NOT EXISTS postern_migrations (
           id INT NOT NULL PRIMARY KEY,
           name VARCHAR(255) NOT NULL,
           applied_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
      );
      const done = new Set((await tx.many<{ id: number }>('SELECT id FROM postern_migrations')).map((row) => row.id));
      const applied: number[] = [];
      for (const migration of migrations) {
        if (done.has(migration.id)) continue;
        // DDL commits implicitly in MySQL; statements are written to be re-runnable instead.
        for (const statement of migration.statements) await tx.execute(statement);
        await tx.execute('INSERT INTO postern_migrations (id, name) VALUES (?, ?)', [migration.id, migration.name]);
        log.info({ migration: migration.id, name: migration.name }, 'migration applied');
        applied.push(migration.id);
      }
      return applied;
    } finally {
      await tx.one('SELECT RELEASE_LOCK(?) AS released', [LOCK_NAME]);
    }
  });
}
