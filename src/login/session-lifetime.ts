// How long a web session lives: an idle lifetime that use extends, and a cap counted from sign-in.
// Shared by the portal's sessions (http/session.ts) and webmail, which keeps its portal session alive.
import type { Config } from '../config/schema.js';

/** How long a session lives: idle lifetime (extended by use) and a cap counted from sign-in. */
export interface SessionLimits {
  ttlSeconds: number;
  maxSeconds: number;
}

export function sessionLimitsOf(config: Pick<Config, 'sessionTtlSeconds' | 'sessionMaxSeconds'>): SessionLimits {
  return { ttlSeconds: config.sessionTtlSeconds, maxSeconds: config.sessionMaxSeconds };
}

/**
 * A session used now, with `remainingMs` left in Redis: its new lifetime in ms when it should be
 * extended, 0 when it is past its cap and must end, undefined when it is fine as it is. Extended
 * at most once per quarter of the idle lifetime, so most requests write nothing.
 */
export function slidingLifetimeMs(
  limits: SessionLimits,
  createdAt: number,
  remainingMs: number,
  nowMs: number,
): number | undefined {
  const capMs = createdAt + limits.maxSeconds * 1000 - nowMs;
  if (capMs <= 0) return 0;
  const ttlMs = limits.ttlSeconds * 1000;
  if (remainingMs < 0 || remainingMs > ttlMs * 0.75) return undefined;
  const lifetimeMs = Math.min(ttlMs, capMs);
  return lifetimeMs > remainingMs ? lifetimeMs : undefined;
}
