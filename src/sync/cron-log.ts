// mailcow's cron-task log: JSON entries LPUSHed to the Redis list CRON_LOG (no prefix: mailcow's
// UI reads exactly that key, System → Information → Logs → Crontasks). Entry format and message
// wording follow mailcow's keycloak-sync.php (reference/mailcow-compat.md §6). Writing the log
// never fails a sync: Redis problems are logged and dropped.
import type { Redis } from '../cache/redis.js';
import type { Logger } from '../log.js';

export const CRON_LOG_KEY = 'CRON_LOG';

export type CronLogPriority = 'info' | 'warning' | 'err';

export interface CronLogEntry {
  time: number;
  priority: CronLogPriority;
  task: string;
  message: string;
}

export interface CronLog {
  /** Queue an entry; `perUser` entries count against the per-run cap. */
  add(priority: CronLogPriority, message: string, options?: { perUser?: boolean }): void;
  /** How many per-user entries were dropped by the cap. */
  readonly omitted: number;
  /** LPUSH what is queued (one command); call per page and at the end. */
  flush(): Promise<void>;
}

export interface CronLogOptions {
  key?: string;
  task?: string;
  /**
   * mailcow writes a line per user per run and trims the list to 9,999 elsewhere; a 50,000-user
   * realm would flood it every interval, so a run writes at most this many per-user lines.
   */
  maxPerUserEntries?: number;
  now?: () => number;
  log?: Logger;
}

export function createCronLog(redis: Redis, options: CronLogOptions = {}): CronLog {
  const key = options.key ?? CRON_LOG_KEY;
  const task = options.task ?? 'Keycloak Sync';
  const cap = options.maxPerUserEntries ?? 1_000;
  const now = options.now ?? Date.now;
  let pending: string[] = [];
  let perUser = 0;
  let omitted = 0;
  return {
    add(priority, message, opts = {}) {
      if (opts.perUser) {
        if (perUser >= cap) {
          omitted++;
          return;
        }
        perUser++;
      }
      const entry: CronLogEntry = { time: Math.floor(now() / 1000), priority, task, message };
      pending.push(JSON.stringify(entry));
    },
    get omitted() {
      return omitted;
    },
    async flush() {
      if (pending.length === 0) return;
      const batch = pending;
      pending = [];
      // One LPUSH with many values pushes them in order, the same list as one LPUSH each.
      await redis.lpush(key, ...batch).catch((error: unknown) => {
        options.log?.warn({ err: (error as Error).message, entries: batch.length }, 'CRON_LOG write failed');
      });
    },
  };
}
