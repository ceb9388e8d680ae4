// The cross-replica sync lock in Redis: SET key token NX PX ttl, renewed while the holder runs
// (compare-and-pexpire), released with compare-and-delete, so only the owner can extend or free
// it. A replica that dies stops renewing; the key expires and another replica takes over.
import { randomBytes } from 'node:crypto';
import type { Redis } from '../cache/redis.js';
import type { Logger } from '../log.js';

// Both scripts act only while the key still holds our token: a lock that expired and was taken
// over by another replica is never extended or deleted by the old owner.
const RENEW_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export interface SyncLock {
  readonly token: string;
  /** Aborted when the lock is lost (taken over, or not renewable for a whole TTL). */
  readonly signal: AbortSignal;
  release(): Promise<void>;
}

export interface SyncLockOptions {
  ttlMs: number;
  /** Default ttl / 3, so two renewals may fail before the lock lapses. */
  renewEveryMs?: number;
  log?: Logger;
}

export class SyncLockLostError extends Error {
  constructor() {
    super('the sync lock was lost (another replica took over); stopping this run');
    this.name = 'SyncLockLostError';
  }
}

/** Take the lock, or undefined when another holder has it. Throws only if Redis is unreachable. */
export async function acquireSyncLock(
  redis: Redis,
  key: string,
  options: SyncLockOptions,
): Promise<SyncLock | undefined> {
  const token = randomBytes(16).toString('hex');
  const taken = await redis.set(key, token, 'PX', options.ttlMs, 'NX');
  if (taken !== 'OK') return undefined;

  const controller = new AbortController();
  let lastRenewedAt = Date.now();
  let released = false;
  const lose = () => {
    clearInterval(timer);
    if (!controller.signal.aborted) controller.abort(new SyncLockLostError());
  };
  const timer = setInterval(
    () => {
      redis
        .eval(RENEW_SCRIPT, 1, key, token, String(options.ttlMs))
        .then((renewed) => {
          if (released) return;
          if (Number(renewed) === 1) lastRenewedAt = Date.now();
          else {
            options.log?.warn({ key }, 'sync lock lost to another holder');
            lose();
          }
        })
        .catch((error: unknown) => {
          // Redis away for a moment: keep trying until the lock would have expired anyway.
          if (!released && Date.now() - lastRenewedAt >= options.ttlMs) {
            options.log?.warn({ err: (error as Error).message, key }, 'sync lock could not be renewed for a whole TTL');
            lose();
          }
        });
    },
    options.renewEveryMs ?? Math.max(50, Math.floor(options.ttlMs / 3)),
  );
  timer.unref();

  return {
    token,
    signal: controller.signal,
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      await redis.eval(RELEASE_SCRIPT, 1, key, token).catch((error: unknown) => {
        // It expires on its own; the next holder just waits one TTL longer.
        options.log?.warn({ err: (error as Error).message, key }, 'sync lock release failed');
      });
    },
  };
}
