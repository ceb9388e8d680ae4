// Audit entries written off the request's path: the passdb's refusals, bans the limiter places,
// refused API keys. record() queues and returns at once (never waits, never throws); a timer
// writes the queue in one multi-row INSERT. Bounded twice: a throttle key admits one entry per
// window (a client retrying a disabled account does not write a row per retry), and a full queue
// drops entries, counted and logged, rather than grow while MySQL is away.
import { isLoggedOutage } from '../errors.js';
import type { Logger } from '../log.js';
import { type AuditEntry, recordAuditBatch } from '../storage/audit.js';
import type { Db } from '../storage/db.js';

export interface AuditWriter {
  /**
   * Queue an entry. With a `throttleKey`, entries with the same key within the throttle window
   * after the first are dropped. Returns whether the entry was queued.
   */
  record(entry: AuditEntry, options?: { throttleKey?: string }): boolean;
  /** Write what is queued now (tests, shutdown). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface AuditWriterOptions {
  flushIntervalMs?: number;
  maxQueued?: number;
  throttleMs?: number;
  maxThrottleKeys?: number;
  now?: () => number;
}

export function createAuditWriter(db: Pick<Db, 'execute'>, log: Logger, options: AuditWriterOptions = {}): AuditWriter {
  const flushIntervalMs = options.flushIntervalMs ?? 1000;
  const maxQueued = options.maxQueued ?? 5000;
  const throttleMs = options.throttleMs ?? 10 * 60_000;
  const maxThrottleKeys = options.maxThrottleKeys ?? 50_000;
  const now = options.now ?? Date.now;
  let queue: AuditEntry[] = [];
  const throttled = new Map<string, number>();
  let dropped = 0;
  let flushing: Promise<void> | undefined;
  let isWarned = false;
  let closed = false;

  const admitThrottled = (key: string): boolean => {
    const at = now();
    const until = throttled.get(key);
    if (until !== undefined && until > at) return false;
    if (throttled.size >= maxThrottleKeys) {
      for (const [known, expiry] of throttled) if (expiry <= at) throttled.delete(known);
      // Still full: forget the oldest half (Map keeps insertion order); the queue bound still holds.
      if (throttled.size >= maxThrottleKeys) {
        let excess = Math.ceil(throttled.size / 2);
        for (const known of throttled.keys()) {
          if (excess-- <= 0) break;
          throttled.delete(known);
        }
      }
    }
    throttled.delete(key);
    throttled.set(key, at + throttleMs);
    return true;
  };

  const write = async (batch: AuditEntry[]) => {
    for (let start = 0; start < batch.length; start += 200) {
      await recordAuditBatch(db, batch.slice(start, start + 200));
    }
  };

  const flush = async (): Promise<void> => {
    if (flushing) await flushing;
    if (dropped > 0) {
      log.warn({ dropped }, 'audit: entries dropped, the queue was full');
      dropped = 0;
    }
    if (queue.length === 0) return;
    const batch = queue;
    queue = [];
    flushing = write(batch)
      .then(() => {
        isWarned = false;
      })
      .catch((error: unknown) => {
        // Keep what did not get written, within the bound, for the next try.
        queue = [...batch, ...queue].slice(0, maxQueued);
        if (!isWarned) {
          isWarned = true;
          (isLoggedOutage(error) ? log.info.bind(log) : log.warn.bind(log))(
            { err: error, queued: queue.length },
            'audit: write failed, will retry',
          );
        }
      })
      .finally(() => {
        flushing = undefined;
      });
    await flushing;
  };

  const timer = setInterval(() => void flush(), flushIntervalMs);
  timer.unref();

  return {
    record(entry, recordOptions = {}) {
      if (closed) return false;
      if (recordOptions.throttleKey !== undefined && !admitThrottled(recordOptions.throttleKey)) return false;
      if (queue.length >= maxQueued) {
        dropped += 1;
        return false;
      }
      queue.push(entry);
      return true;
    },
    flush,
    async close() {
      closed = true;
      clearInterval(timer);
      await flush();
    },
  };
}
