// The Keycloak sync as a cron job: at each tick (schedule.ts: every minute, mailcow's Ofelia
// schedule for its sync crons) each replica asks runSync whether a sync is due; the Redis lock
// and the interval check under it make one replica run it once per sync_interval.
import { auditSyncRun, SCHEDULER_ACTOR } from '../audit/sync-audit.js';
import type { Logger } from '../log.js';
import { type RunSyncOptions, type RunSyncResult, runSync, type SyncDeps } from '../sync/run-sync.js';
import { startCronJob } from './cron-job.js';

/** mailcow runs its sync crons every minute and gates them by sync_interval; so do we. */
export const SYNC_CRON_EXPRESSION = '* * * * *';

export interface SyncScheduler {
  /** One scheduler tick now (what the cron does each minute); resolves when it is done. */
  tick(): Promise<RunSyncResult | undefined>;
  /** Stop the cron and abort a running sync between pages; resolves when it has stopped. */
  stop(): Promise<void>;
}

export interface SyncSchedulerOptions {
  /** node-cron expression; default every minute. */
  cronExpression?: string;
  lockTtlMs?: number;
  /** Passed through to runSync (tests: cron log key, fake client). */
  runOptions?: Partial<Omit<RunSyncOptions, 'triggeredBy' | 'onlyIfDue' | 'signal'>>;
}

export function startSyncScheduler(deps: SyncDeps, options: SyncSchedulerOptions = {}): SyncScheduler {
  const log: Logger = deps.log.child({ job: 'keycloak-sync' });
  return startCronJob({
    name: 'postern-keycloak-sync',
    expression: options.cronExpression ?? SYNC_CRON_EXPRESSION,
    log,
    // MySQL/Redis away: try again next minute.
    faultMessage: 'scheduled sync could not start',
    run: async (signal) => {
      const result = await runSync(deps, {
        ...options.runOptions,
        triggeredBy: 'cron',
        onlyIfDue: true,
        signal,
        ...(options.lockTtlMs ? { lockTtlMs: options.lockTtlMs } : {}),
      });
      if (result.state === 'ran') {
        log.info({ runId: result.report.runId, status: result.report.status }, 'scheduled sync ran');
        await auditSyncRun(deps.db, { actor: SCHEDULER_ACTOR, report: result.report }).catch((error: unknown) =>
          log.warn({ err: error }, 'audit write failed'),
        );
      } else log.debug({ state: result.state }, 'scheduled sync skipped');
      return result;
    },
  });
}
