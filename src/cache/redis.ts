// The ioredis client. Commands fail fast while Redis is unreachable (no offline queue), so a
// caller sees a fault at once and can degrade or answer "temporary failure" instead of hanging.
import { Redis } from 'ioredis';

export type { Redis };

export function createRedis(url: string, options: { connectTimeoutMs?: number } = {}): Redis {
  return new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: options.connectTimeoutMs ?? 2000,
    commandTimeout: 2000,
    // Commands issued in the same tick go out in one write: under load, many logins' limiter and
    // cache commands share a round trip instead of a syscall each.
    enableAutoPipelining: true,
    // Keep trying to reconnect for ever, backing off to 2 s: Redis coming back must heal us
    // without a restart.
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
  });
}
