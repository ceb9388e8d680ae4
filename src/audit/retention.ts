// Audit retention: entries older than POSTERN_AUDIT_RETENTION_DAYS are deleted, hourly (the
// schedule is cron/schedule.ts), by one replica at a time (a Redis lock of its own, so it never
// waits for or delays an IdP sync), in small batches so the table is never locked for long. The
// only deleter of audit rows.
import { keys } from '../cache/keys.js';
import type { Redis } from '../cache/redis.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { deleteAuditOlderThan } from '../storage/audit.js';
import type { Db } from '../storage/db.js';
import { acquireSyncLock } from '../sync/sync-lock.js';

export interface RetentionDeps {
  db: Db;
  redis: Redis;
  log: Logger;
  config: Pick<Config, 'redisPrefix' | 'auditRetentionDays'>;
}

const BATCH = 5_000;
const LOCK_TTL_MS = 60_000;

/** One pass: `undefined` when another replica holds the lock, else how many entries went. */
export async function pruneAudit(deps: RetentionDeps): Promise<number | undefined> {
  const lock = await acquireSyncLock(deps.redis, keys.auditPruneLock({ prefix: deps.config.redisPrefix }), {
    ttlMs: LOCK_TTL_MS,
    log: deps.log,
  });
  if (!lock) return undefined;
  let total = 0;
  try {
    for (;;) {
      if (lock.signal.aborted) break;
      const deleted = await deleteAuditOlderThan(deps.db, deps.config.auditRetentionDays, BATCH);
      total += deleted;
      if (deleted < BATCH) break;
    }
  } finally {
    await lock.release();
  }
  if (total > 0) deps.log.info({ deleted: total, days: deps.config.auditRetentionDays }, 'audit entries pruned');
  return total;
}
