// A counter that every change to the tables a mail login reads bumps, through triggers. It lets
// the passdb keep login data in process and still see any change, by postern or by mailcow's
// own UI, on the very next request: one shared read of this counter replaces per-login queries.
import type { Migration } from './migration.js';

/** Tables whose rows decide a mail login; a change to any of them invalidates cached logins. */
export const WATCHED_TABLES = ['mailbox', 'app_passwd', 'domain', 'alias_domain'] as const;
const EVENTS = ['INSERT', 'UPDATE', 'DELETE'] as const;

export function changeTriggerName(table: string, event: string): string {
  return `postern_${table}_${event.toLowerCase()}_count`;
}

const counter = `CREATE TABLE IF NOT EXISTS postern_change_counter (
  id TINYINT UNSIGNED NOT NULL,
  changes BIGINT UNSIGNED NOT NULL DEFAULT 0,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`;

// Triggers add behaviour to mailcow's tables without touching a column; MariaDB allows several
// triggers per table and event, so mailcow's own (if any) keep working.
export const changeTriggers = WATCHED_TABLES.flatMap((table) =>
  EVENTS.map(
    (event) =>
      `CREATE TRIGGER IF NOT EXISTS ${changeTriggerName(table, event)} AFTER ${event} ON ${table}
       FOR EACH ROW UPDATE postern_change_counter SET changes = changes + 1 WHERE id = 1`,
  ),
);

export const changeCounter: Migration = {
  id: 3,
  name: 'change-counter',
  statements: [
    counter,
    'INSERT INTO postern_change_counter (id, changes) SELECT 1, 0 FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM postern_change_counter WHERE id = 1)',
    ...changeTriggers,
  ],
};
