// The Redis limiter backend, shared by every replica. The count-and-maybe-ban step is one Lua
// script, so concurrent failures (several replicas, parallel connections) ban exactly once.
// Every ban and lift is published on the key space's event channel in the same step as the
// change itself, so each replica's ban mirror sees the changes in the order Redis made them.
import { type KeySpace, keys } from '../cache/keys.js';
import type { Redis } from '../cache/redis.js';
import { encodeLiftEvent, type MirroredBan } from './ban-mirror.js';
import type { Ban, LimiterStore, Scope, StoreLimits } from './store.js';

/**
 * KEYS: pairs (failures sorted set, ban key), one pair per scope.
 * ARGV: nowMs, windowMs, banMs, fingerprint, event channel, then (threshold, scope, subject) per pair.
 * Per scope: forget members first seen a window ago, add the fingerprint unless present (its
 * first-seen time stays, so a resent password counts once per window), and if it was new and the
 * set reached the threshold with no ban in place, set the ban, start the count afresh and publish
 * the ban event. Returns one 0/1 per pair: whether this call imposed that ban.
 */
const RECORD_FAILURE_LUA = `
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local banMs = tonumber(ARGV[3])
local member = ARGV[4]
local channel = ARGV[5]
local result = {}
for i = 1, #KEYS / 2 do
  local failures = KEYS[2 * i - 1]
  local ban = KEYS[2 * i]
  local threshold = tonumber(ARGV[3 + 3 * i])
  redis.call('ZREMRANGEBYSCORE', failures, '-inf', now - window)
  local added = redis.call('ZADD', failures, 'NX', now, member)
  redis.call('PEXPIRE', failures, window)
  result[i] = 0
  if added == 1 and redis.call('ZCARD', failures) >= threshold and redis.call('EXISTS', ban) == 0 then
    redis.call('SET', ban, now, 'PX', banMs)
    redis.call('DEL', failures)
    redis.call('PUBLISH', channel, cjson.encode({
      op = 'ban', scope = ARGV[4 + 3 * i], subject = ARGV[5 + 3 * i], expiresAtMs = now + banMs, ttlMs = banMs
    }))
    result[i] = 1
  end
end
return result
`;

const RECORD_FAILURE = 'posternRateLimitRecordFailure';

interface WithRecordFailure {
  [RECORD_FAILURE](numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<number[]>;
}

export interface RedisLimiterStore extends LimiterStore {
  /** Every live ban with its remaining time in ms, by SCAN (never KEYS). */
  scanBans(): Promise<MirroredBan[]>;
}

export function createRedisStore(redis: Redis, keySpace: KeySpace, limits: StoreLimits): RedisLimiterStore {
  // Redefining on a shared client is harmless: ioredis replaces the function, the script is the same.
  redis.defineCommand(RECORD_FAILURE, { lua: RECORD_FAILURE_LUA });
  const recordFailureScript = redis as unknown as WithRecordFailure;
  const banPrefix = keys.rateLimitBan(keySpace, 'ip', '').slice(0, -'ip:'.length);
  const channel = keys.rateLimitEvents(keySpace);

  async function scanBans(): Promise<MirroredBan[]> {
    const found: MirroredBan[] = [];
    let cursor = '0';
    do {
      // SCAN, never KEYS: KEYS blocks Redis for every other client while it walks the keyspace.
      const [next, batch] = await redis.scan(cursor, 'MATCH', keys.rateLimitBanPattern(keySpace), 'COUNT', 500);
      cursor = next;
      if (batch.length === 0) continue;
      const pipeline = redis.pipeline();
      for (const key of batch) pipeline.pttl(key);
      const ttls = unwrap(await pipeline.exec()).map(Number);
      batch.forEach((key, index) => {
        const ms = remainingMs(ttls[index] ?? -2);
        const rest = key.slice(banPrefix.length);
        const cut = rest.indexOf(':');
        const scope = rest.slice(0, cut);
        if (ms > 0 && (scope === 'ip' || scope === 'user')) {
          found.push({ scope, subject: rest.slice(cut + 1), remainingMs: ms });
        }
      });
    } while (cursor !== '0');
    return found;
  }

  return {
    scanBans,

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
        channel,
        ...scopes.flatMap(([scope, subject, threshold]) => [threshold, scope, subject]),
      );
      return scopes.filter((_, index) => banned[index] === 1).map(([scope]) => scope);
    },

    async recordSuccess(subjects) {
      // Only the known-good mark: a success no longer clears the user's failure count (an attacker
      // interleaving with the real user's frequent successes would otherwise guess for ever).
      if (subjects.ip === undefined) return;
      await redis.set(keys.rateLimitKnownGoodIp(keySpace, subjects.user, subjects.ip), '1', 'PX', limits.knownGoodIpMs);
    },

    async listBans(): Promise<Ban[]> {
      return (await scanBans()).map(({ scope, subject, remainingMs: ms }) => ({
        scope,
        subject,
        expiresInSeconds: Math.ceil(ms / 1000),
      }));
    },

    async liftBan(scope, subject) {
      // The count goes too: lifting a ban gives a fresh budget, not one more try before the next ban.
      // The event goes out in the same transaction, so it cannot overtake a later ban's event.
      const [deleted] = unwrap(
        await redis
          .multi()
          .del(keys.rateLimitBan(keySpace, scope, subject))
          .del(keys.rateLimitFailures(keySpace, scope, subject))
          .publish(channel, encodeLiftEvent(scope, subject))
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
