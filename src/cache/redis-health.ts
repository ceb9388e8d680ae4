// How a Redis user that degrades instead of failing (credential cache, limiter) tracks Redis:
// after an error it stays away for a moment, so a sick Redis costs one timeout rather than one
// per login, and the log shows each transition once rather than each request.
import type { Logger } from '../log.js';
import type { Redis } from './redis.js';

const BACKOFF_MS = 1000;

export interface RedisHealth {
  /** Connected and not within the backoff after an error. */
  isUsable(): boolean;
  noteDown(error: unknown): void;
  noteUp(): void;
}

/**
 * @param subject names the user in log lines, e.g. "rate limiter".
 * @param fallback what the user does meanwhile, e.g. "counting and banning in process".
 */
export function createRedisHealth(
  redis: Redis,
  log: Logger,
  subject: string,
  fallback: string,
  now: () => number = Date.now,
): RedisHealth {
  let isHealthy = true;
  let backoffUntilMs = 0;
  const noteDown = (error: unknown) => {
    backoffUntilMs = now() + BACKOFF_MS;
    if (!isHealthy) return;
    isHealthy = false;
    log.warn(
      { err: error instanceof Error ? error.message : String(error) },
      `${subject}: redis unavailable, ${fallback}`,
    );
  };
  return {
    isUsable() {
      if (redis.status !== 'ready') {
        noteDown(`redis is ${redis.status}`);
        return false;
      }
      return now() >= backoffUntilMs;
    },
    noteDown,
    noteUp() {
      if (isHealthy) return;
      isHealthy = true;
      log.info(`${subject}: redis available again`);
    },
  };
}
