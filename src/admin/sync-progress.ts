// A sync run's counts while it runs, kept in Redis by the run (any replica, any trigger) so the
// console can show live progress: written after each listing page and at the end, read by the
// sync pages. Best effort: a Redis fault never affects the run, it only leaves the page without
// live counts (the run's row in postern_sync_runs has the final ones).
import { keys } from '../cache/keys.js';
import type { Redis } from '../cache/redis.js';
import { parseJsonRecord } from '../json-record.js';
import type { Logger } from '../log.js';
import type { SyncCounts } from '../sync/sync-report.js';

export const SYNC_PROGRESS_TTL_SECONDS = 3_600;

export type SyncPhase = 'listing' | 'finished';

export interface SyncProgress {
  runId: number;
  phase: SyncPhase;
  counts: Partial<SyncCounts>;
  /** When these counts were written (ISO 8601). */
  at: string;
}

export function createSyncProgressWriter(deps: { redis: Redis; log: Logger; redisPrefix: string }, runId: number) {
  const key = keys.syncProgress({ prefix: deps.redisPrefix }, runId);
  return async (phase: SyncPhase, counts: Readonly<Partial<SyncCounts>>) => {
    const progress: SyncProgress = { runId, phase, counts: { ...counts }, at: new Date().toISOString() };
    await deps.redis
      .set(key, JSON.stringify(progress), 'EX', SYNC_PROGRESS_TTL_SECONDS)
      .catch((error: unknown) => deps.log.warn({ err: error, runId }, 'could not record sync progress'));
  };
}

/** The last counts a run wrote; undefined when it wrote none (yet) or they expired. */
export async function readSyncProgress(
  deps: { redis: Redis; redisPrefix: string },
  runId: number,
): Promise<SyncProgress | undefined> {
  const text = await deps.redis.get(keys.syncProgress({ prefix: deps.redisPrefix }, runId));
  return parseJsonRecord<SyncProgress>(text, (value) => value.runId === runId);
}
