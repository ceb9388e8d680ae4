// The Keycloak sync's node-cron job. Every minute (mailcow's Ofelia schedule for its sync crons)
// each replica asks runSync whether a sync is due; the Redis lock and the interval check under it
// make one replica run it once per sync_interval. cron/schedule.ts is the table of jobs; this
// file lives under src/ because the build compiles src/ only. Never imports hono.
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../log.js';
import { type RunSyncOptions, type RunSyncResult, runSync, type SyncDeps } from './run-sync.js';

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
  const shutdown = new AbortController();
  let inFlight: Promise<RunSyncResult | undefined> | undefined;

  const tick = (): Promise<RunSyncResult | undefined> => {
    if (shutdown.signal.aborted) return Promise.resolve(undefined);
    // One tick at a time per process; a long sync simply makes the next minutes no-ops.
    inFlight ??= runSync(deps, {
      ...options.runOptions,
      triggeredBy: 'cron',
      onlyIfDue: true,
      signal: shutdown.signal,
      ...(options.lockTtlMs ? { lockTtlMs: options.lockTtlMs } : {}),
    })
      .then((result) => {
        if (result.state === 'ran')
          log.info({ runId: result.report.runId, status: result.report.status }, 'scheduled sync ran');
        else log.debug({ state: result.state }, 'scheduled sync skipped');
        return result;
      })
      .catch((error: unknown) => {
        // MySQL/Redis away: try again next minute.
        log.warn({ err: error }, 'scheduled sync could not start');
        return undefined;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };

  const task: ScheduledTask = cron.createTask(options.cronExpression ?? SYNC_CRON_EXPRESSION, () => tick(), {
    name: 'postern-keycloak-sync',
    noOverlap: true,
  });
  void task.start();

  return {
    tick,
    async stop() {
      shutdown.abort(new Error('postern is shutting down'));
      await task.destroy();
      await inFlight;
    },
  };
}
