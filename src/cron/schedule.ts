// Which background job runs when, under which lock: the whole schedule. Every replica runs every
// job; a Redis lock (owner token, renewed while the run lasts, taken over after expiry, see
// sync/sync-lock.ts) makes one replica do the work. The jobs' code lives with their use-cases
// (sync/run-sync.ts, audit/retention.ts), which take the lock themselves, because the admin API's
// "sync now" takes the same one. server.ts starts the schedule and stops it at shutdown.
//
// | job                      | when                  | lock (Redis key)             | then                                   |
// |--------------------------|-----------------------|------------------------------|----------------------------------------|
// | postern-keycloak-sync    | every minute          | `{prefix}sync:lock`          | runs if sync_interval passed (checked under the lock) |
// | postern-audit-retention  | hourly, at minute 17  | `{prefix}audit:prune-lock`   | deletes entries older than POSTERN_AUDIT_RETENTION_DAYS |
import { pruneAudit, type RetentionDeps } from '../audit/retention.js';
import type { SyncDeps } from '../sync/run-sync.js';
import { type CronJob, startCronJob } from './cron-job.js';
import { SYNC_CRON_EXPRESSION, type SyncScheduler, startSyncScheduler } from './keycloak-sync.js';

/** Hourly, off the full hour (when other crons of a mail host tend to run). */
export const AUDIT_RETENTION_CRON = '17 * * * *';

export { SYNC_CRON_EXPRESSION };

export interface Schedule {
  readonly sync: SyncScheduler;
  readonly auditRetention: CronJob<number | undefined>;
  /** Stop every job; resolves when running work has stopped. */
  stop(): Promise<void>;
}

export function startSchedule(deps: SyncDeps & RetentionDeps): Schedule {
  const sync = startSyncScheduler(deps, { cronExpression: SYNC_CRON_EXPRESSION });
  // Its own lock, so it never waits for or delays an IdP sync.
  const auditRetention = startCronJob({
    name: 'postern-audit-retention',
    expression: AUDIT_RETENTION_CRON,
    log: deps.log,
    faultMessage: 'audit retention could not run',
    run: () => pruneAudit(deps),
  });
  return {
    sync,
    auditRetention,
    async stop() {
      await Promise.all([sync.stop(), auditRetention.stop()]);
    },
  };
}
