import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REDIS_URL } from '../../test/support/env.js';
import { startTcpProxy } from '../../test/support/tcp-proxy.js';
import { createRedis, type Redis } from '../cache/redis.js';
import { createLogger, type Logger } from '../log.js';
import { createRateLimiter, type LimiterOptions, type RateLimiter } from './limiter.js';

const ALICE = 'alice@example.org';
const BOB = 'bob@example.org';
const POLL = { timeout: 5000, interval: 20 };
const ATTACKER = '198.51.100.66';
const HOME = '203.0.113.10';

function captureLog(): { log: Logger; messages: () => string[] } {
  const written: string[] = [];
  const log = createLogger('info', { write: (line: string) => void written.push(line) });
  return { log, messages: () => written.map((line) => (JSON.parse(line) as { msg: string }).msg) };
}

async function readyRedis(url = REDIS_URL): Promise<Redis> {
  const redis = createRedis(url);
  redis.on('error', () => undefined);
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
  return redis;
}

async function scanKeys(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    found.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

let redis: Redis;
let prefix: string;
const cleanups: (() => unknown)[] = [];

beforeEach(async () => {
  redis = await readyRedis();
  prefix = `postern_test_rl_${randomBytes(4).toString('hex')}:`;
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  const leftovers = await scanKeys(redis, prefix);
  if (leftovers.length > 0) await redis.del(...leftovers);
  redis.disconnect();
});

interface Backend {
  name: string;
  /** A client for the limiter and a way to let time pass that both Redis and the clock see. */
  start(): Promise<{ client: Redis; now?: () => number; advance(ms: number): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'Redis',
    async start() {
      return { client: redis, advance: (ms) => sleep(ms) };
    },
  },
  {
    name: 'the in-process fallback',
    async start() {
      // Nothing listens on port 1: the client never becomes ready, like Redis down from the start.
      const client = createRedis('redis://127.0.0.1:1');
      client.on('error', () => undefined);
      cleanups.push(() => client.disconnect());
      let nowMs = 1_700_000_000_000;
      return {
        client,
        now: () => nowMs,
        advance: async (ms) => {
          nowMs += ms;
        },
      };
    },
  },
];

describe.each(backends)('createRateLimiter on $name', (backend) => {
  let advance: (ms: number) => Promise<void>;
  let bans: string[];

  async function limiter(overrides: Partial<LimiterOptions> = {}): Promise<RateLimiter> {
    const started = await backend.start();
    advance = started.advance;
    bans = [];
    const created = createRateLimiter({
      redis: started.client,
      prefix,
      ipThreshold: 100,
      userThreshold: 3,
      windowSeconds: 60,
      banSeconds: 1,
      exemptNetworks: ['10.0.0.0/8', 'fd00::/8'],
      knownGoodIpSeconds: 3600,
      fingerprintSecret: 'f'.repeat(32),
      log: createLogger('silent'),
      ...(started.now ? { now: started.now } : {}),
      onBan: (scope) => bans.push(scope),
      ...overrides,
    });
    cleanups.push(() => created.close());
    return created;
  }

  it('bans a user at the threshold of distinct wrong passwords and blocks them until the ban expires', async () => {
    const limits = await limiter();

    await expect(limits.recordFailure({ ip: ATTACKER, username: ALICE, password: 'one' })).resolves.toEqual({
      bannedNow: [],
    });
    await limits.recordFailure({ ip: '198.51.100.67', username: ALICE, password: 'two' });
    await expect(limits.recordFailure({ ip: '198.51.100.68', username: ALICE, password: 'three' })).resolves.toEqual({
      bannedNow: ['user'],
    });

    await expect(limits.check({ ip: HOME, username: ALICE })).resolves.toEqual({
      blocked: true,
      scope: 'user',
      retryAfterSeconds: 1,
    });
    await expect(limits.check({ ip: HOME, username: 'ALICE@example.org' })).resolves.toMatchObject({ blocked: true });
    await expect(limits.check({ ip: HOME, username: 'bob@example.org' })).resolves.toMatchObject({ blocked: false });
    expect(bans).toEqual(['user']);

    await advance(1100);
    await expect(limits.check({ ip: HOME, username: ALICE })).resolves.toEqual({ blocked: false, knownGoodIp: false });
  });

  it('counts the same wrong password once, however often it is resent', async () => {
    const limits = await limiter();

    for (let attempt = 0; attempt < 10; attempt++) {
      await limits.recordFailure({ ip: ATTACKER, username: ALICE, password: 'old password' });
    }
    await expect(limits.check({ ip: ATTACKER, username: ALICE })).resolves.toMatchObject({ blocked: false });

    await limits.recordFailure({ ip: ATTACKER, username: ALICE, password: 'two' });
    await expect(limits.recordFailure({ ip: ATTACKER, username: ALICE, password: 'three' })).resolves.toEqual({
      bannedNow: ['user'],
    });
  });

  it('bans an IP that sprays distinct (user, password) pairs, and only that IP', async () => {
    const limits = await limiter({ ipThreshold: 3, userThreshold: 100 });

    await limits.recordFailure({ ip: ATTACKER, username: 'a@example.org', password: 'x' });
    await limits.recordFailure({ ip: ATTACKER, username: 'b@example.org', password: 'x' });
    await limits.recordFailure({ ip: ATTACKER, username: 'b@example.org', password: 'x' });
    await expect(limits.recordFailure({ ip: ATTACKER, username: 'c@example.org', password: 'x' })).resolves.toEqual({
      bannedNow: ['ip'],
    });

    await expect(limits.check({ ip: ATTACKER, username: ALICE })).resolves.toEqual({
      blocked: true,
      scope: 'ip',
      retryAfterSeconds: 1,
    });
    await expect(limits.check({ ip: HOME, username: 'a@example.org' })).resolves.toMatchObject({ blocked: false });
  });

  it.each([
    [
      'IPv6 addresses in one /64',
      ['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:1:2:ffff::3'],
      '2001:db8:1:2:abcd::9',
      '2001:db8:1:3::1',
      '2001:db8:1:2::/64',
    ],
    [
      'an IPv4 address and its IPv4-mapped IPv6 forms',
      ['::ffff:192.0.2.7', '192.0.2.7', '::ffff:c000:207'],
      '192.0.2.7',
      '192.0.2.8',
      '192.0.2.7',
    ],
  ])('counts %s as one client', async (_label, failing, sameClient, otherClient, subject) => {
    const limits = await limiter({ ipThreshold: 3, userThreshold: 100 });

    for (const [index, ip] of failing.entries()) {
      await limits.recordFailure({ ip, username: `user${index}@example.org`, password: 'x' });
    }

    await expect(limits.check({ ip: sameClient, username: ALICE })).resolves.toMatchObject({
      blocked: true,
      scope: 'ip',
    });
    await expect(limits.check({ ip: otherClient, username: ALICE })).resolves.toMatchObject({ blocked: false });
    await expect(limits.listBans()).resolves.toEqual([{ scope: 'ip', subject, expiresInSeconds: 1 }]);
  });

  it('never counts or bans an exempt network by IP, but still counts its users', async () => {
    const limits = await limiter({ ipThreshold: 2, userThreshold: 3 });

    await limits.recordFailure({ ip: '10.0.0.5', username: 'a@example.org', password: 'x' });
    await limits.recordFailure({ ip: '10.0.0.5', username: 'b@example.org', password: 'x' });
    await limits.recordFailure({ ip: 'fd00::5', username: 'c@example.org', password: 'x' });
    for (const password of ['one', 'two', 'three']) {
      await limits.recordFailure({ ip: '10.0.0.5', username: ALICE, password });
    }

    expect(bans).toEqual(['user']);
    await expect(limits.check({ ip: '10.0.0.5', username: 'd@example.org' })).resolves.toMatchObject({
      blocked: false,
    });
    await expect(limits.check({ ip: '10.0.0.5', username: ALICE })).resolves.toMatchObject({
      blocked: true,
      scope: 'user',
    });
  });

  it('does not make an exempt network known-good, so a shared proxy cannot shelter attacks on a user', async () => {
    const limits = await limiter();
    await limits.recordSuccess({ ip: '10.0.0.5', username: ALICE });

    for (const password of ['one', 'two', 'three']) {
      await limits.recordFailure({ ip: ATTACKER, username: ALICE, password });
    }

    await expect(limits.check({ ip: '10.0.0.5', username: ALICE })).resolves.toMatchObject({ blocked: true });
  });

  it('lets a known-good IP through a user ban while other IPs stay blocked', async () => {
    const limits = await limiter();
    await limits.recordSuccess({ ip: '2001:db8:aa:bb::1', username: ALICE });

    for (const password of ['one', 'two', 'three']) {
      await limits.recordFailure({ ip: ATTACKER, username: ALICE, password });
    }

    // The same /64: privacy addresses rotate, the device is the same.
    await expect(limits.check({ ip: '2001:db8:aa:bb::2', username: ALICE })).resolves.toEqual({
      blocked: false,
      knownGoodIp: true,
    });
    await expect(limits.check({ ip: ATTACKER, username: ALICE })).resolves.toMatchObject({
      blocked: true,
      scope: 'user',
    });
    await expect(limits.check({ ip: '2001:db8:aa:bb::2', username: 'bob@example.org' })).resolves.toEqual({
      blocked: false,
      knownGoodIp: false,
    });
  });

  it('still applies an IP ban to a known-good IP', async () => {
    const limits = await limiter({ ipThreshold: 2, userThreshold: 100 });
    await limits.recordSuccess({ ip: HOME, username: ALICE });

    await limits.recordFailure({ ip: HOME, username: 'a@example.org', password: 'x' });
    await limits.recordFailure({ ip: HOME, username: 'b@example.org', password: 'x' });

    await expect(limits.check({ ip: HOME, username: ALICE })).resolves.toMatchObject({ blocked: true, scope: 'ip' });
  });

  // A success used to clear the count: an attacker interleaving guesses with the real user's
  // frequent IMAP logins then guessed for ever. The real user is protected by the known-good IP.
  it("does not clear the user's failure count on a success, so interleaved guesses still lead to a ban", async () => {
    const limits = await limiter();

    await limits.recordFailure({ ip: ATTACKER, username: ALICE, password: 'one' });
    await limits.recordFailure({ ip: ATTACKER, username: ALICE, password: 'two' });
    await limits.recordSuccess({ ip: HOME, username: ALICE });
    expect(bans).toEqual([]);

    await limits.recordFailure({ ip: ATTACKER, username: ALICE, password: 'three' });
    expect(bans).toEqual(['user']);
    await expect(limits.check({ ip: ATTACKER, username: ALICE })).resolves.toMatchObject({ blocked: true });
    await expect(limits.check({ ip: HOME, username: ALICE })).resolves.toEqual({ blocked: false, knownGoodIp: true });
  });

  it('forgets failures once they are older than the window', async () => {
    const limits = await limiter({ windowSeconds: 1 });

    await limits.recordFailure({ ip: HOME, username: ALICE, password: 'one' });
    await limits.recordFailure({ ip: HOME, username: ALICE, password: 'two' });
    await advance(1100);
    await limits.recordFailure({ ip: HOME, username: ALICE, password: 'three' });
    await limits.recordFailure({ ip: HOME, username: ALICE, password: 'one' });

    expect(bans).toEqual([]);
  });

  it('lists bans and lifts them, with a fresh budget afterwards', async () => {
    const limits = await limiter({ ipThreshold: 3, banSeconds: 600 });
    for (const password of ['one', 'two', 'three']) {
      await limits.recordFailure({ ip: ATTACKER, username: ALICE, password });
    }

    // Redis counts the ban's TTL down in real time: a slow machine may already show 599 s.
    const aboutTenMinutes = expect.toSatisfy((seconds: number) => seconds > 590 && seconds <= 600);
    await expect(limits.listBans()).resolves.toEqual([
      { scope: 'ip', subject: ATTACKER, expiresInSeconds: aboutTenMinutes },
      { scope: 'user', subject: ALICE, expiresInSeconds: aboutTenMinutes },
    ]);
    await expect(limits.liftBan('user', 'Alice@Example.org')).resolves.toBe(true);
    await expect(limits.liftBan('user', ALICE)).resolves.toBe(false);
    await expect(limits.listBans()).resolves.toEqual([
      { scope: 'ip', subject: ATTACKER, expiresInSeconds: aboutTenMinutes },
    ]);
    await expect(limits.check({ ip: HOME, username: ALICE })).resolves.toMatchObject({ blocked: false });

    await limits.recordFailure({ ip: HOME, username: ALICE, password: 'four' });
    await expect(limits.check({ ip: HOME, username: ALICE })).resolves.toMatchObject({ blocked: false });
    await expect(limits.liftBan('ip', ATTACKER)).resolves.toBe(true);
    await expect(limits.check({ ip: ATTACKER, username: 'bob@example.org' })).resolves.toMatchObject({
      blocked: false,
    });
  });

  it('bans exactly once when 50 distinct wrong passwords arrive in parallel', async () => {
    const limits = await limiter({ userThreshold: 10, ipThreshold: 1000 });

    const results = await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        limits.recordFailure({ ip: ATTACKER, username: ALICE, password: `guess ${index}` }),
      ),
    );

    expect(results.flatMap((result) => result.bannedNow)).toEqual(['user']);
    expect(bans).toEqual(['user']);
  });
});

describe('createRateLimiter with Redis', () => {
  function options(overrides: Partial<LimiterOptions> = {}): LimiterOptions {
    return {
      redis,
      prefix,
      ipThreshold: 100,
      userThreshold: 3,
      windowSeconds: 60,
      banSeconds: 60,
      exemptNetworks: [],
      knownGoodIpSeconds: 3600,
      fingerprintSecret: 'f'.repeat(32),
      log: createLogger('silent'),
      ...overrides,
    };
  }

  it('stores neither the password nor an unkeyed hash of it', async () => {
    const limits = createRateLimiter(options({ ipThreshold: 2 }));
    const password = 'Tr0ub4dor&3';

    await limits.recordFailure({ ip: ATTACKER, username: ALICE, password });

    const stored: string[] = [];
    for (const key of await scanKeys(redis, prefix)) {
      const type = await redis.type(key);
      stored.push(key, ...(type === 'zset' ? await redis.zrange(key, '0', '-1') : [String(await redis.get(key))]));
    }
    const everything = stored.join(' ');
    expect(stored.length).toBeGreaterThan(0);
    for (const secret of [
      password,
      ...['sha1', 'sha256', 'md5'].map((a) => createHash(a).update(password).digest('hex')),
    ]) {
      expect(everything).not.toContain(secret);
    }
  });

  it('shares counts between replicas, so a password resent through another replica still counts once', async () => {
    const first = createRateLimiter(options());
    const second = createRateLimiter(options());

    await first.recordFailure({ ip: ATTACKER, username: ALICE, password: 'one' });
    await second.recordFailure({ ip: ATTACKER, username: ALICE, password: 'one' });
    await second.recordFailure({ ip: ATTACKER, username: ALICE, password: 'two' });
    await expect(first.recordFailure({ ip: ATTACKER, username: ALICE, password: 'three' })).resolves.toEqual({
      bannedNow: ['user'],
    });

    // The other replica learns of the ban by pub/sub: within milliseconds, not necessarily at once.
    await expect.poll(() => second.check({ ip: HOME, username: ALICE }), POLL).toMatchObject({ blocked: true });
  });

  it('falls back to in-process bans when Redis goes away mid-run, keeps them after it returns, and logs once each way', async () => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(REDIS_URL).port || 6379) });
    const proxied = await readyRedis(`redis://127.0.0.1:${proxy.port}`);
    cleanups.push(
      () => proxy.close(),
      () => proxied.disconnect(),
    );
    const { log, messages } = captureLog();
    const limits = createRateLimiter(options({ redis: proxied, log }));
    await limits.recordFailure({ ip: ATTACKER, username: ALICE, password: 'before the outage' });

    await proxy.cut();
    await sleep(50);
    await limits.recordFailure({ ip: ATTACKER, username: ALICE, password: 'one' });
    await limits.recordFailure({ ip: ATTACKER, username: ALICE, password: 'two' });
    await expect(limits.recordFailure({ ip: ATTACKER, username: ALICE, password: 'three' })).resolves.toEqual({
      bannedNow: ['user'],
    });
    await expect(limits.check({ ip: HOME, username: ALICE })).resolves.toMatchObject({ blocked: true, scope: 'user' });

    await proxy.restore();
    await new Promise((resolve) => proxied.once('ready', resolve));
    await sleep(1000); // past the back-off after the last error
    await expect(limits.check({ ip: HOME, username: ALICE })).resolves.toMatchObject({ blocked: true, scope: 'user' });
    await expect(limits.listBans()).resolves.toMatchObject([{ scope: 'user', subject: ALICE }]);

    expect(messages().filter((msg) => msg.includes('redis unavailable'))).toHaveLength(1);
    expect(messages().filter((msg) => msg.includes('available again'))).toHaveLength(1);
  });

  it('keeps the bans Redis held before an outage in force while Redis is unreachable, its own and other replicas’', async () => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(REDIS_URL).port || 6379) });
    const proxied = await readyRedis(`redis://127.0.0.1:${proxy.port}`);
    cleanups.push(
      () => proxy.close(),
      () => proxied.disconnect(),
    );
    const own = createRateLimiter(options({ redis: proxied, ipThreshold: 2 }));
    const other = createRateLimiter(options({ ipThreshold: 2 }));
    cleanups.push(
      () => own.close(),
      () => other.close(),
    );
    // A user ban made on another replica (this one hears of it by pub/sub only), and an IP ban
    // this replica imposed itself (in Redis, not in its in-process store).
    for (const password of ['one', 'two', 'three']) {
      await other.recordFailure({ ip: HOME, username: ALICE, password });
    }
    await own.recordFailure({ ip: ATTACKER, username: 'carol@example.org', password: 'x' });
    await expect(own.recordFailure({ ip: ATTACKER, username: 'dave@example.org', password: 'y' })).resolves.toEqual({
      bannedNow: ['ip'],
    });
    await expect
      .poll(() => own.check({ ip: '203.0.113.20', username: ALICE }), POLL)
      .toMatchObject({ blocked: true, scope: 'user' });

    await proxy.cut();
    await sleep(50);
    await expect(own.check({ ip: '203.0.113.20', username: ALICE })).resolves.toMatchObject({
      blocked: true,
      scope: 'user',
    });
    await expect(own.check({ ip: ATTACKER, username: BOB })).resolves.toMatchObject({ blocked: true, scope: 'ip' });
    await expect(own.check({ ip: '203.0.113.20', username: BOB })).resolves.toMatchObject({ blocked: false });
    // Still after the client's reconnect attempts have failed for a while.
    await sleep(1500);
    await expect(own.check({ ip: '203.0.113.20', username: ALICE })).resolves.toMatchObject({ blocked: true });
    await expect(own.listBans()).resolves.toEqual([
      { scope: 'ip', subject: ATTACKER, expiresInSeconds: expect.any(Number) },
      { scope: 'user', subject: ALICE, expiresInSeconds: expect.any(Number) },
    ]);
    // An operator can still lift a ban on this replica during the outage.
    await expect(own.liftBan('ip', ATTACKER)).resolves.toBe(true);
    await expect(own.check({ ip: ATTACKER, username: BOB })).resolves.toMatchObject({ blocked: false });

    await proxy.restore();
    await new Promise((resolve) => proxied.once('ready', resolve));
    await sleep(1000); // past the back-off after the last error
    await expect(own.check({ ip: '203.0.113.20', username: ALICE })).resolves.toMatchObject({ blocked: true });
  });

  it('keeps working with a client that was disconnected', async () => {
    const client = await readyRedis();
    const limits = createRateLimiter(options({ redis: client }));
    client.disconnect();

    for (const password of ['one', 'two', 'three']) {
      await limits.recordFailure({ ip: ATTACKER, username: ALICE, password });
    }

    await expect(limits.check({ ip: HOME, username: ALICE })).resolves.toMatchObject({ blocked: true });
  });

  describe('ban mirror', () => {
    /** A limiter on a client of its own, closed after the test. */
    async function replica(overrides: Partial<LimiterOptions> = {}): Promise<{ client: Redis; limits: RateLimiter }> {
      const client = overrides.redis ?? (await readyRedis());
      const limits = createRateLimiter(options({ ...overrides, redis: client }));
      cleanups.push(
        () => client.disconnect(),
        () => limits.close(),
      );
      return { client, limits };
    }

    /** Commands Redis itself received from one client while fn ran (MONITOR, so nothing in ioredis is trusted). */
    async function startMonitor(): Promise<(client: Redis, fn: () => Promise<unknown>) => Promise<string[]>> {
      const monitor = await redis.monitor();
      cleanups.push(() => monitor.disconnect());
      const seen: { source: string; args: string[] }[] = [];
      monitor.on('monitor', (_time: string, args: string[], source: string) => void seen.push({ source, args }));
      const waitFor = async (source: string, marker: string) => {
        await expect
          .poll(() => seen.some((entry) => entry.source === source && entry.args[1] === marker), POLL)
          .toBe(true);
        return seen.findIndex((entry) => entry.source === source && entry.args[1] === marker);
      };
      return async (client, fn) => {
        const source = `${client.stream.localAddress}:${client.stream.localPort}`;
        const marker = randomBytes(4).toString('hex');
        await client.echo(`start ${marker}`);
        const from = await waitFor(source, `start ${marker}`);
        await fn();
        await client.echo(`end ${marker}`);
        const to = await waitFor(source, `end ${marker}`);
        return seen
          .slice(from + 1, to)
          .filter((entry) => entry.source === source)
          .map((entry) => entry.args.join(' '));
      };
    }

    /** Synced = a check on a subject under no ban answers without Redis. */
    async function untilSynced(
      commandsOf: Awaited<ReturnType<typeof startMonitor>>,
      { client, limits }: { client: Redis; limits: RateLimiter },
    ): Promise<void> {
      await expect
        .poll(() => commandsOf(client, () => limits.check({ ip: '192.0.2.200', username: 'nobody@example.org' })), POLL)
        .toEqual([]);
    }

    async function banAlice(limits: RateLimiter, username = ALICE): Promise<void> {
      for (const password of ['one', 'two', 'three']) {
        await limits.recordFailure({ ip: ATTACKER, username, password });
      }
    }

    it('costs a repeat successful login no Redis command, and rewrites the known-good mark after a quarter of its life', async () => {
      const commandsOf = await startMonitor();
      let offsetMs = 0;
      const own = await replica({ now: () => Date.now() + offsetMs });
      await untilSynced(commandsOf, own);
      const login = async () => {
        const decision = await own.limits.check({ ip: HOME, username: ALICE });
        if (!decision.blocked) await own.limits.recordSuccess({ ip: HOME, username: ALICE });
        return decision;
      };

      expect(await commandsOf(own.client, login)).toEqual([expect.stringMatching(/^set .*rl:good:/)]);
      for (let repeat = 0; repeat < 3; repeat++) expect(await commandsOf(own.client, login)).toEqual([]);

      offsetMs = 901_000; // knownGoodIpSeconds = 3600
      expect(await commandsOf(own.client, login)).toEqual([expect.stringMatching(/^set .*rl:good:/)]);
      expect(await commandsOf(own.client, login)).toEqual([]);
    });

    it('sees a ban made on another replica within milliseconds, and a lift made there', async () => {
      const commandsOf = await startMonitor();
      const first = await replica();
      const second = await replica();
      await untilSynced(commandsOf, first);
      await untilSynced(commandsOf, second);

      await banAlice(first.limits);
      // Synced and not yet told, second would answer "not blocked" without asking Redis.
      await expect
        .poll(() => second.limits.check({ ip: HOME, username: ALICE }), POLL)
        .toMatchObject({ blocked: true, scope: 'user' });

      await expect(second.limits.liftBan('user', ALICE)).resolves.toBe(true);
      await expect(first.limits.check({ ip: HOME, username: ALICE })).resolves.toMatchObject({ blocked: false });
      // And first's mirror forgets the ban: the check is free again.
      await expect
        .poll(() => commandsOf(first.client, () => first.limits.check({ ip: HOME, username: ALICE })), POLL)
        .toEqual([]);
    });

    it('knows the bans made before it started, from its first SCAN', async () => {
      const commandsOf = await startMonitor();
      const first = await replica();
      await banAlice(first.limits);

      const late = await replica();
      await untilSynced(commandsOf, late);
      // Synced without this ban in the mirror, the check would not reach Redis and would not block.
      let decision: unknown;
      const commands = await commandsOf(late.client, async () => {
        decision = await late.limits.check({ ip: HOME, username: ALICE });
      });
      expect(decision).toMatchObject({ blocked: true, scope: 'user' });
      expect(commands.length).toBeGreaterThan(0);
    });

    it('resyncs when its subscriber reconnects, so a ban published while it was away is known', async () => {
      const commandsOf = await startMonitor();
      // Only the subscriber (the client's duplicate) goes through the proxy, so only it is cut.
      const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(REDIS_URL).port || 6379) });
      cleanups.push(() => proxy.close());
      const client = await readyRedis();
      const duplicate = client.duplicate.bind(client);
      client.duplicate = ((override) => duplicate({ ...override, port: proxy.port })) as typeof client.duplicate;
      const cutOff = await replica({ redis: client });
      const other = await replica();
      await untilSynced(commandsOf, cutOff);

      await proxy.cut();
      await banAlice(other.limits);
      await banAlice(other.limits, BOB);
      // Without its subscriber the mirror is not trusted: the check asks Redis and blocks.
      await expect(cutOff.limits.check({ ip: HOME, username: ALICE })).resolves.toMatchObject({ blocked: true });

      await proxy.restore();
      await untilSynced(commandsOf, cutOff);
      // Bob was not checked meanwhile, so only the resync's SCAN can have told the mirror.
      let decision: unknown;
      const commands = await commandsOf(client, async () => {
        decision = await cutOff.limits.check({ ip: HOME, username: BOB });
      });
      expect(decision).toMatchObject({ blocked: true, scope: 'user' });
      expect(commands.length).toBeGreaterThan(0);
    });
  });

  it('refuses a malformed exempt network at creation', () => {
    expect(() => createRateLimiter(options({ exemptNetworks: ['10.0.0.0/40'] }))).toThrow('10.0.0.0/40');
  });
});
