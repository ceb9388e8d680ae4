// The Redis limiter backend, shared by every replica. The count-and-maybe-ban step is one Lua
// script, so concurrent failures (several replicas, parallel connections) ban exactly once.
import { type KeySpace, keys } from '../cache/keys.js';
import type { Redis } from '../cache/redis.js';
import type { Ban, LimiterStore, Scope, StoreLimits } from './store.js';

/**
 * KEYS: pairs (failures sorted set, ban key), one pair per scope.
 * ARGV: nowMs, windowMs, banMs, fingerprint, then one threshold per pair.
 * Per scope: forget members first seen a window ago, add the fingerprint unless present (its
 * first-seen time stays, so a resent password counts once per window), and if it was new and the
 * set reached the threshold with no ban in place, set the ban and start the count afresh.
 * Returns one 0/1 per pair: whether this call imposed that ban.
 */
const RECORD_FAILURE_LUA = `
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local banMs = tonumber(ARGV[3])
local member = ARGV[4]
local result = {}
for i = 1, #KEYS / 2 do
  local failures = KEYS[2 * i - 1]
  local ban = KEYS[2 * i]
  local threshold = tonumber(ARGV[4 + i])
  redis.call('ZREMRANGEBYSCORE', failures, '-inf', now - window)
  local added = redis.call('ZADD', failures, 'NX', now, member)
  redis.call('PEXPIRE', failures, window)
  result[i] = 0
  if added == 1 and redis.call('ZCARD', failures) >= threshold and redis.call('EXISTS', ban) == 0 then
    redis.call('SET', ban, now, 'PX', banMs)
    redis.call('DEL', failures)
    result[i] = 1
  end
end
return result
`;

const RECORD_FAILURE = 'posternRateLimitRecordFailure';

interface WithRecordFailure {
  [RECORD_FAILURE](numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<number[]>;
}

export function createRedisStore(redis: Redis, keySpace: KeySpace, limits: StoreLimits): LimiterStore {
  // Redefining on a shared client is harmless: ioredis replaces the function, the script is the same.
  redis.defineCommand(RECORD_FAILURE, { lua: RECORD_FAILURE_LUA });
  const recordFailureScript = redis as unknown as WithRecordFailure;
  const banPrefix = keys.rateLimitBan(keySpace, 'ip', '').slice(0, -'ip:'.length);

  return {
    async snapshot(subjects) {
      const pipeline = redis.pipeline();
      pipeline.pttl(keys.rateLimitBan(keySpace, 'user', subjects.user));
      if (subjects.ip !== undefined) {
        pipeline.pttl(keys.rateLimitBan(keySpace, 'ip', subjects.ip));
        pipeline.exists(keys.rateLimitKnownGoodIp(keySpace, subjects.user, subjects.ip));
      }
      const [userBan = 0, ipBan = 0, knownGood = 0] = unwrap(await pipeline.exec()).map(Number);
      return { userBanMs: remainingMs(userBan), ipBanMs: remainingMs(ipBan), isKnownGoodIp: knownGood === 1 };
    },

    async recordFailure(subjects, fingerprint, nowMs) {
      const scopes: [Scope, string, number][] = [['user', subjects.user, limits.userThreshold]];
      if (subjects.ip !== undefined) scopes.unshift(['ip', subjects.ip, limits.ipThreshold]);
      const scriptKeys = scopes.flatMap(([scope, subject]) => [
        keys.rateLimitFailures(keySpace, scope, subject),
        keys.rateLimitBan(keySpace, scope, subject),
      ]);
      const banned = await recordFailureScript[RECORD_FAILURE](
        scriptKeys.length,
        ...scriptKeys,
        nowMs,
        limits.windowMs,
        limits.banMs,
        fingerprint,
        ...scopes.map(([, , threshold]) => threshold),
      );
      return scopes.filter((_, index) => banned[index] === 1).map(([scope]) => scope);
    },

    async recordSuccess(subjects) {
      const transaction = redis.multi().del(keys.rateLimitFailures(keySpace, 'user', subjects.user));
      if (subjects.ip !== undefined) {
        transaction.set(
          keys.rateLimitKnownGoodIp(keySpace, subjects.user, subjects.ip),
          '1',
          'PX',
          limits.knownGoodIpMs,
        );
      }
      unwrap(await transaction.exec());
    },

    async listBans() {
      const listed: Ban[] = [];
      let cursor = '0';
      do {
        // SCAN, never KEYS: KEYS blocks Redis for every other client while it walks the keyspace.
        const [next, found] = await redis.scan(cursor, 'MATCH', keys.rateLimitBanPattern(keySpace), 'COUNT', 500);
        cursor = next;
        if (found.length === 0) continue;
        const pipeline = redis.pipeline();
        for (const key of found) pipeline.pttl(key);
        const ttls = unwrap(await pipeline.exec()).map(Number);
        found.forEach((key, index) => {
          const ms = remainingMs(ttls[index] ?? -2);
          const rest = key.slice(banPrefix.length);
          const cut = rest.indexOf(':');
          const scope = rest.slice(0, cut);
          if (ms > 0 && (scope === 'ip' || scope === 'user')) {
            listed.push({ scope, subject: rest.slice(cut + 1), expiresInSeconds: Math.ceil(ms / 1000) });
          }
        });
      } while (cursor !== '0');
      return listed;
    },

    async liftBan(scope, subject) {
      // The count goes too: lifting a ban gives a fresh budget, not one more try before the next ban.
      const [deleted] = unwrap(
        await redis
          .multi()
          .del(keys.rateLimitBan(keySpace, scope, subject))
          .del(keys.rateLimitFailures(keySpace, scope, subject))
          .exec(),
      );
      return deleted === 1;
    },
  };
}

/** PTTL: -2 = no key, -1 = no expiry (never written by us; treat as not banned rather than for ever). */
function remainingMs(pttl: number): number {
  return Math.max(pttl, 0);
}

/** Pipeline/transaction replies, throwing the first command error. */
function unwrap(replies: [Error | null, unknown][] | null): unknown[] {
  if (!replies) throw new Error('redis transaction aborted');
  return replies.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}
