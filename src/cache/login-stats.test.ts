// The dashboard's hourly counters against real Redis: counts are written in one pipeline off the
// caller's path, keyed by service (known ones, else `other`) and UTC hour, with an 8-day TTL; a
// failed write is counted, never thrown.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL } from '../../test/support/env.js';
import { createLogger } from '../log.js';
import { KNOWN_SERVICES } from '../login/services.js';
import { keys } from './keys.js';
import { createLoginStats, readHourlyStats, STATS_TTL_SECONDS, statsHour, statsServices } from './login-stats.js';
import { createRedis, type Redis } from './redis.js';

const log = createLogger('silent');
let redis: Redis;
let prefix: string;

beforeAll(async () => {
  redis = createRedis(REDIS_URL);
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
  prefix = `postern_test_stats_${randomBytes(4).toString('hex')}:`;
});

afterAll(async () => {
  const stale = await redis.keys(`${prefix}*`);
  if (stale.length) await redis.del(...stale);
  redis.disconnect();
});

describe('login stats', () => {
  it('counts refusals per service and bans per UTC hour, made-up services as other, with an 8-day TTL', async () => {
    const at = Date.UTC(2026, 11, 3, 13, 30);
    let now = at - 3_600_000;
    const stats = createLoginStats({
      redis,
      prefix,
      services: KNOWN_SERVICES,
      log,
      flushIntervalMs: 60_000,
      now: () => now,
    });
    stats.recordFailure('imap');
    now = at;
    stats.recordFailure('imap');
    stats.recordFailure('imap');
    stats.recordFailure('smtp');
    stats.recordFailure('made-up-service');
    stats.recordBan();
    // Nothing is written until the flush: the caller never waits for Redis.
    expect(await redis.exists(keys.statsFailures({ prefix }, 'imap', '2026120313'))).toBe(0);
    await stats.close();
    expect(await redis.get(keys.statsFailures({ prefix }, 'imap', '2026120313'))).toBe('2');
    expect(await redis.get(keys.statsFailures({ prefix }, 'imap', '2026120312'))).toBe('1');
    expect(await redis.get(keys.statsFailures({ prefix }, 'other', '2026120313'))).toBe('1');
    expect(await redis.exists(keys.statsFailures({ prefix }, 'made-up-service', '2026120313'))).toBe(0);
    const ttl = await redis.ttl(keys.statsBans({ prefix }, '2026120313'));
    expect(ttl).toBeGreaterThan(STATS_TTL_SECONDS - 60);
    expect(ttl).toBeLessThanOrEqual(STATS_TTL_SECONDS);

    const read = await readHourlyStats(redis, prefix, statsServices(KNOWN_SERVICES), 3, at);
    expect(read.hours).toEqual(['2026120311', '2026120312', '2026120313']);
    expect(read.failures).toEqual({ imap: [0, 1, 2], smtp: [0, 0, 1], other: [0, 0, 1] });
    expect(read.bans).toEqual([0, 0, 1]);
    expect(statsHour(at)).toBe('2026120313');
  });

  it('counts a failed write and does not throw when Redis refuses', async () => {
    const broken = createRedis('redis://127.0.0.1:1');
    broken.on('error', () => undefined);
    const stats = createLoginStats({ redis: broken, prefix, services: KNOWN_SERVICES, log, flushIntervalMs: 60_000 });
    stats.recordFailure('imap');
    stats.recordBan();
    await expect(stats.close()).resolves.toBeUndefined();
    expect(stats.failedWrites).toBe(1);
    broken.disconnect();
  });
});
