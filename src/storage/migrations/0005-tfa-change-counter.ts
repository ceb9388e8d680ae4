// Triggers on mailcow's `tfa` table that bump the change counter of migration 0003: since mailcow's
// 2FA rule (an active authenticator refuses Dovecot logins with the mailbox password) is part of a
// mail login's data, adding, switching or deleting an authenticator must invalidate the cached
// copies too. Triggers are postern's own objects beside the table; no mailcow column is touched.
import { changeTriggerName } from './0003-change-counter.js';
import type { Migration } from './migration.js';

export const TFA_WATCHED_TABLES = ['tfa'] as const;

export const tfaChangeCounter: Migration = {
  id: 5,
  name: 'tfa-change-counter',
  statements: TFA_WATCHED_TABLES.flatMap((table) =>
    (['INSERT', 'UPDATE', 'DELETE'] as const).map(
      (event) =>
        `CREATE TRIGGER IF NOT EXISTS ${changeTriggerName(table, event)} AFTER ${event} ON ${table}
       FOR EACH ROW UPDATE postern_change_counter SET changes = changes + 1 WHERE id = 1`,
    ),
  ),
};
