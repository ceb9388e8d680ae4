// The ioredis client. Commands fail fast while Redis is unreachable (no offline queue), so a
// caller sees a fault at once and can degrade or answer "temporary failure" instead of hanging.
// One server (POSTERN_REDIS_URL) or, with POSTERN_REDIS_SENTINELS, whichever server the Redis
// Sentinels name as the master, followed through failovers.
import { Redis, type RedisOptions } from 'ioredis';

export type { Redis };

/** Where the client connects; built from the configuration by redisTargetOf(). */
export interface RedisTarget {
  /** redis:// or rediss:// URL: the server, or with sentinels only its password, user, db and TLS. */
  url: string;
  sentinels?: readonly { host: string; port: number }[];
  /** The master group the Sentinels monitor. */
  sentinelName?: string;
  sentinelPassword?: string;
}

export function redisTargetOf(config: {
  redisUrl: string;
  redisSentinels?: readonly { host: string; port: number }[] | undefined;
  redisSentinelName: string;
  redisSentinelPassword?: string | undefined;
}): RedisTarget {
  if (!config.redisSentinels || config.redisSentinels.length === 0) return { url: config.redisUrl };
  return {
    url: config.redisUrl,
    sentinels: config.redisSentinels,
    sentinelName: config.redisSentinelName,
    ...(config.redisSentinelPassword === undefined ? {} : { sentinelPassword: config.redisSentinelPassword }),
  };
}

const COMMAND_TIMEOUT_MS = 2000;

function sentinelOptions(target: RedisTarget): RedisOptions {
  if (!target.sentinels || target.sentinels.length === 0) return {};
  return {
    sentinels: target.sentinels.map(({ host, port }) => ({ host, port })),
    name: target.sentinelName ?? 'mymaster',
    ...(target.sentinelPassword === undefined ? {} : { sentinelPassword: target.sentinelPassword }),
    // A Sentinel that accepts the connection but never answers must not stall the connect.
    sentinelCommandTimeout: COMMAND_TIMEOUT_MS,
    // Subscribe to the Sentinels' +switch-master and reconnect to the new master at once,
    // instead of only when the old one drops the connection.
    failoverDetector: true,
    // rediss:// means TLS to the master and replicas (the Sentinels themselves speak plain TCP).
    enableTLSForSentinelMode: target.url.startsWith('rediss:'),
    // A demoted master answers writes with READONLY until its connection goes: reconnect, which
    // asks the Sentinels for the new master (the command itself fails; callers degrade).
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
  };
}

export function createRedis(target: string | RedisTarget, options: { connectTimeoutMs?: number } = {}): Redis {
  const resolved = typeof target === 'string' ? { url: target } : target;
  return new Redis(resolved.url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: options.connectTimeoutMs ?? 2000,
    commandTimeout: COMMAND_TIMEOUT_MS,
    // Commands issued in the same tick go out in one write: under load, many logins' limiter and
    // cache commands share a round trip instead of a syscall each.
    enableAutoPipelining: true,
    // Keep trying to reconnect for ever, backing off to 2 s: Redis coming back must heal us
    // without a restart.
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
    ...sentinelOptions(resolved),
  });
}
