// What a mail login reads from MySQL (the mailbox, via alias domains, its active app passwords
// and whether it has an active two-factor authenticator), either straight from the database or from an in-process copy that is used only
// while the change counter proves nothing changed since it was read.
import { type AppPasswordRecord, listActiveAppPasswords } from '../storage/app-passwords.js';
import type { ChangeCounter } from '../storage/change-counter.js';
import type { Db } from '../storage/db.js';
import { findLoginMailbox, type LoginMailbox } from '../storage/mailboxes.js';
import { hasActiveTfa } from '../storage/tfa.js';

export interface LoginData {
  mailbox: LoginMailbox | undefined;
  appPasswords: AppPasswordRecord[];
  /**
   * The mailbox has an active row in mailcow's `tfa` table: its password alone no longer opens
   * mail (mailcow's rule); app passwords still do. False when there is no mailbox.
   */
  hasActiveTfa: boolean;
}

export interface LoginDataSource {
  /** @param loginName login name after foldAddress. Throws AppError on MySQL faults. */
  load(loginName: string): Promise<LoginData>;
}

async function query(db: Db, loginName: string): Promise<LoginData> {
  const mailbox = await findLoginMailbox(db, loginName);
  if (!mailbox) return { mailbox, appPasswords: [], hasActiveTfa: false };
  const [appPasswords, tfa] = await Promise.all([
    listActiveAppPasswords(db, mailbox.username),
    hasActiveTfa(db, mailbox.username),
  ]);
  return { mailbox, appPasswords, hasActiveTfa: tfa };
}

export function createDirectLoginData(db: Db): LoginDataSource {
  return { load: (loginName) => query(db, loginName) };
}

/**
 * Keeps the last read of each login name with the counter value read *before* it. A request
 * reads the counter (shared with concurrent requests, always read after it arrived); an equal
 * value means no watched row changed since the copy was made, so the copy is exact. Any change
 * anywhere makes every copy stale, which is rare next to logins. Unknown names are kept too,
 * so guessing at mailboxes that do not exist costs no query.
 */
export function createCachedLoginData(db: Db, counter: ChangeCounter, maxEntries: number): LoginDataSource {
  const copies = new Map<string, { changes: number; data: LoginData }>();
  return {
    async load(loginName) {
      const changes = await counter.read();
      const copy = copies.get(loginName);
      if (copy && copy.changes === changes) {
        // Map order is insertion order: re-inserting makes this the most recently used.
        copies.delete(loginName);
        copies.set(loginName, copy);
        return copy.data;
      }
      const data = await query(db, loginName);
      copies.delete(loginName);
      copies.set(loginName, { changes, data });
      if (copies.size > maxEntries) {
        const oldest = copies.keys().next().value;
        if (oldest !== undefined) copies.delete(oldest);
      }
      return data;
    },
  };
}
