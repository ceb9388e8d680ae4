// mailcow's `sasl_log`: one row per (service, client IP, user), refreshed on every successful
// login. mailcow's UI reads it as "last logins", so labels and REPLACE semantics match mailcow.
import type { Db } from './db.js';

export interface SaslLogEntry {
  username: string;
  realRip: string;
  /** Lower-case Dovecot service, or mailcow's upper-case SOGO / DAV / EAS / SSO labels. */
  service: string;
  /** The app password's id, 0 when the mailbox password was used. */
  appPasswordId: number;
}

export async function recordSaslLogin(db: Db, entry: SaslLogEntry): Promise<void> {
  await db.execute('REPLACE INTO sasl_log (username, real_rip, service, app_password) VALUES (?, ?, ?, ?)', [
    entry.username,
    entry.realRip,
    entry.service,
    entry.appPasswordId,
  ]);
}
