// A fresh install has no admin: say once, at start-up, how to create the first one.
import type { Logger } from '../log.js';
import { hasAnyActiveAdmin } from '../storage/admins.js';
import type { Db } from '../storage/db.js';

export const FIRST_ADMIN_HINT =
  'no admin account exists yet; create the first one with: postern admin create <username> --superadmin ' +
  '(in a container: docker compose exec postern postern admin create <username> --superadmin); ' +
  'the password is prompted for or read from stdin';

export async function announceFirstAdmin(db: Db, log: Logger): Promise<void> {
  try {
    if (await hasAnyActiveAdmin(db)) log.debug('admin accounts exist');
    else log.warn(FIRST_ADMIN_HINT);
  } catch (error) {
    // With POSTERN_MIGRATE=off the table may be missing; a hint is not worth failing start-up.
    log.debug({ err: error }, 'could not look for admin accounts');
  }
}
