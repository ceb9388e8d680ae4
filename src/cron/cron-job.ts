// One node-cron job as postern runs its background work: at most one run in flight per process
// (a long run makes the next ticks no-ops), a fault logged and retried at the next tick, and a
// stop that aborts the running work (between its steps) and waits for it. Which job runs when,
// under which lock, is decided in schedule.ts; what a run does lives with its use-case.
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../log.js';

export interface CronJob<T> {
  /** One tick now (what the cron does at its times); resolves when that run is done. */
  tick(): Promise<T | undefined>;
  /** Stop the cron and abort a running run; resolves when it has stopped. Safe to call twice. */
  stop(): Promise<void>;
}

export interface CronJobOptions<T> {
  /** node-cron's task name. */
  name: string;
  /** node-cron expression. */
  expression: string;
  log: Logger;
  /** One run; `signal` aborts at shutdown. A throw is logged as `faultMessage` and swallowed. */
  run: (signal: AbortSignal) => Promise<T>;
  faultMessage: string;
}

export function startCronJob<T>(options: CronJobOptions<T>): CronJob<T> {
  const shutdown = new AbortController();
  let inFlight: Promise<T | undefined> | undefined;

  const tick = (): Promise<T | undefined> => {
    if (shutdown.signal.aborted) return Promise.resolve(undefined);
    inFlight ??= options
      .run(shutdown.signal)
      .catch((error: unknown) => {
        options.log.warn({ err: error }, options.faultMessage);
        return undefined;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };

  const task: ScheduledTask = cron.createTask(options.expression, () => tick(), {
    name: options.name,
    noOverlap: true,
  });
  void task.start();

  // Once: a second stop (a test that stopped the jobs, then the shutdown) waits for the first.
  let stopped: Promise<void> | undefined;
  return {
    tick,
    stop() {
      stopped ??= (async () => {
        shutdown.abort(new Error('postern is shutting down'));
        await task.destroy();
        await inFlight;
      })();
      return stopped;
    },
  };
}
