// Reads of mailcow's `tfa` table (one row per authenticator of a user). postern only asks whether
// a user has an active one; the authenticators themselves belong to mailcow's UI.
import type { Db } from './db.js';

/**
 * Whether `username` has an active authenticator, as mailcow's get_tfa() asks it
 * (`WHERE username = :username AND active = '1'`, data/web/inc/functions.inc.php).
 */
export async function hasActiveTfa(db: Pick<Db, 'one'>, username: string): Promise<boolean> {
  const row = await db.one<{ found: number }>('SELECT 1 AS found FROM tfa WHERE username = ? AND active = 1 LIMIT 1', [
    username,
  ]);
  return row !== undefined;
}
