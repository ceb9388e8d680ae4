import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REDIS_URL } from '../../test/support/env.js';
import { startTcpProxy, type TcpProxy } from '../../test/support/tcp-proxy.js';
import { createLogger, type Logger } from '../log.js';
import type { CredentialVerifier } from '../passwords/credential-verifier.js';
import { keys } from './keys.js';
import { createRedis, type Redis } from './redis.js';
import { createCachingVerifier, type VerifiedCredentialCacheOptions } from './verified-credentials.js';

const USER = 'alice@example.org';
const HASH = '{BLF-CRYPT}$2y$10$abcdefghijklmnopqrstuuN5J0N0dCz2X4ylVFJ5Yl8Pc1H0Ck6ia';
const PASSWORD = 'correct horse battery staple';

/** An inner verifier that accepts PASSWORD only and counts its calls. */
function countingVerifier(options: { delayMs?: number } = {}) {
  const calls: string[] = [];
  let dummyCalls = 0;
  const verifier: CredentialVerifier = {
    async verify(username, storedHash, candidate) {
      calls.push(`${username}|${storedHash}|${candidate}`);
      if (options.delayMs) await sleep(options.delayMs);
      return candidate === PASSWORD ? { ok: true, scheme: 'BLF-CRYPT' } : { ok: false, reason: 'mismatch' };
    },
    async verifyDummy() {
      dummyCalls++;
    },
  };
  return {
    verifier,
    get calls() {
      return calls.length;
    },
    get dummyCalls() {
      return dummyCalls;
    },
  };
}

function captureLog(): { log: Logger; lines: () => { level: number; msg: string }[] } {
  const written: string[] = [];
  const log = createLogger('info', { write: (line: string) => void written.push(line) });
  return { log, lines: () => written.map((line) => JSON.parse(line) as { level: number; msg: string }) };
}

async function readyRedis(url = REDIS_URL): Promise<Redis> {
  const redis = createRedis(url);
  redis.on('error', () => undefined);
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
  return redis;
}

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    found.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

describe('createCachingVerifier', () => {
  let redis: Redis;
  let prefix: string;
  const closers: (() => unknown)[] = [];

  beforeEach(async () => {
    redis = await readyRedis();
    prefix = `postern_test_cred_${randomBytes(4).toString('hex')}:`;
  });

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    const leftovers = await scanKeys(redis, `${prefix}*`);
    if (leftovers.length > 0) await redis.del(...leftovers);
    redis.disconnect();
  });

  async function cache(inner: CredentialVerifier, overrides: Partial<VerifiedCredentialCacheOptions> = {}) {
    const lookups: string[] = [];
    const verifier = await createCachingVerifier(inner, {
      redis,
      prefix,
      ttlSeconds: 60,
      localEntries: 100,
      log: createLogger('silent'),
      onLookup: (layer) => lookups.push(layer),
      ...overrides,
    });
    closers.push(() => verifier.close());
    return { verifier, lookups };
  }

  it('answers a repeated success from the local layer without calling the inner verifier', async () => {
    const inner = countingVerifier();
    const { verifier, lookups } = await cache(inner.verifier);

    await expect(verifier.verify(USER, HASH, PASSWORD)).resolves.toEqual({ ok: true, scheme: 'BLF-CRYPT' });
    await expect(verifier.verify(USER, HASH, PASSWORD)).resolves.toEqual({ ok: true, scheme: 'BLF-CRYPT' });

    expect(inner.calls).toBe(1);
    expect(lookups).toEqual(['miss', 'local']);
  });

  it.each([
    ['another candidate', [USER, HASH, `${PASSWORD} `]],
    ['another stored hash (a changed password)', [USER, `${HASH}x`, PASSWORD]],
    ['another username', ['bob@example.org', HASH, PASSWORD]],
    ['a username differing only in case', ['Alice@example.org', HASH, PASSWORD]],
  ] as const)('misses for %s', async (_label, [username, storedHash, candidate]) => {
    const inner = countingVerifier();
    const { verifier } = await cache(inner.verifier);

    await verifier.verify(USER, HASH, PASSWORD);
    await verifier.verify(username, storedHash, candidate);

    expect(inner.calls).toBe(2);
  });

  it('keeps length-prefixed fields apart, so shifting bytes between username and password is a miss', async () => {
    const inner = countingVerifier();
    const { verifier } = await cache(inner.verifier);

    await verifier.verify('ab', HASH, PASSWORD);
    await verifier.verify('a', HASH, `b${PASSWORD}`);

    expect(inner.calls).toBe(2);
  });

  describe('findCached (a mailbox with several app passwords)', () => {
    const HASHES = ['{SSHA256}first', '{SSHA256}second', HASH, '{SSHA256}fourth'];

    it('finds the stored hash a candidate verified against, in the local layer, without the inner verifier', async () => {
      const inner = countingVerifier();
      const { verifier } = await cache(inner.verifier);
      await verifier.verify(USER, HASH, PASSWORD);

      await expect(verifier.findCached?.(USER, PASSWORD, HASHES)).resolves.toEqual({
        index: 2,
        verdict: { ok: true, scheme: 'BLF-CRYPT' },
      });
      // The remembered hash gone from the list (the app password deleted or changed): nothing.
      await expect(
        verifier.findCached?.(
          USER,
          PASSWORD,
          HASHES.filter((hash) => hash !== HASH),
        ),
      ).resolves.toBe(undefined);
      await expect(verifier.findCached?.(USER, `${PASSWORD}!`, HASHES)).resolves.toBe(undefined);
      expect(inner.calls).toBe(1);
    });

    it('answers the first remembered hash in the order given', async () => {
      const { verifier } = await cache(countingVerifier().verifier);
      await verifier.verify(USER, '{SSHA256}fourth', PASSWORD);
      await verifier.verify(USER, '{SSHA256}second', PASSWORD);

      expect((await verifier.findCached?.(USER, PASSWORD, HASHES))?.index).toBe(1);
    });

    it("finds another instance's success in Redis, then in its own local layer", async () => {
      const { verifier: first } = await cache(countingVerifier().verifier);
      await first.verify(USER, HASH, PASSWORD);
      const second = countingVerifier();
      const { verifier, lookups } = await cache(second.verifier);

      expect((await verifier.findCached?.(USER, PASSWORD, HASHES))?.index).toBe(2);
      await expect(verifier.verify(USER, HASH, PASSWORD)).resolves.toEqual({ ok: true, scheme: 'BLF-CRYPT' });
      expect(lookups).toEqual(['local']);
      expect(second.calls).toBe(0);
    });
  });

  it('never caches a failure', async () => {
    const inner = countingVerifier();
    const { verifier } = await cache(inner.verifier);

    await expect(verifier.verify(USER, HASH, 'wrong')).resolves.toEqual({ ok: false, reason: 'mismatch' });
    await expect(verifier.verify(USER, HASH, 'wrong')).resolves.toEqual({ ok: false, reason: 'mismatch' });

    expect(inner.calls).toBe(2);
    await expect(scanKeys(redis, keys.verifiedCredential({ prefix }, '*'))).resolves.toEqual([]);
  });

  it('never caches a fault, and passes it on', async () => {
    let calls = 0;
    const inner: CredentialVerifier = {
      async verify() {
        calls++;
        throw new Error('hash pool is gone');
      },
      async verifyDummy() {},
    };
    const { verifier } = await cache(inner);

    await expect(verifier.verify(USER, HASH, PASSWORD)).rejects.toThrow('hash pool is gone');
    await expect(verifier.verify(USER, HASH, PASSWORD)).rejects.toThrow('hash pool is gone');

    expect(calls).toBe(2);
  });

  it('collapses 10 concurrent identical verifies into one inner call', async () => {
    const inner = countingVerifier({ delayMs: 50 });
    const { verifier } = await cache(inner.verifier);

    const verdicts = await Promise.all(Array.from({ length: 10 }, () => verifier.verify(USER, HASH, PASSWORD)));

    expect(inner.calls).toBe(1);
    expect(verdicts.every((verdict) => verdict.ok)).toBe(true);
  });

  it('collapses concurrent identical failures too, without caching them afterwards', async () => {
    const inner = countingVerifier({ delayMs: 50 });
    const { verifier } = await cache(inner.verifier);

    await Promise.all(Array.from({ length: 10 }, () => verifier.verify(USER, HASH, 'wrong')));
    await verifier.verify(USER, HASH, 'wrong');

    expect(inner.calls).toBe(2);
  });

  it('lets a local entry expire with the clock, then answers from Redis', async () => {
    let nowMs = 1_000_000;
    const inner = countingVerifier();
    const { verifier, lookups } = await cache(inner.verifier, { ttlSeconds: 60, now: () => nowMs });

    await verifier.verify(USER, HASH, PASSWORD);
    nowMs += 59_000;
    await verifier.verify(USER, HASH, PASSWORD);
    nowMs += 61_000;
    await verifier.verify(USER, HASH, PASSWORD);

    expect(lookups).toEqual(['miss', 'local', 'redis']);
    expect(inner.calls).toBe(1);
  });

  it('lets a Redis entry expire after its TTL', async () => {
    const inner = countingVerifier();
    const { verifier, lookups } = await cache(inner.verifier, { ttlSeconds: 1, localEntries: 0 });

    await verifier.verify(USER, HASH, PASSWORD);
    await verifier.verify(USER, HASH, PASSWORD);
    await sleep(1100);
    await verifier.verify(USER, HASH, PASSWORD);

    expect(lookups).toEqual(['miss', 'redis', 'miss']);
    expect(inner.calls).toBe(2);
  });

  it('bounds the local layer, evicting the least recently used entry', async () => {
    const inner = countingVerifier();
    const { verifier, lookups } = await cache(inner.verifier, { localEntries: 2 });

    await verifier.verify('a', HASH, PASSWORD);
    await verifier.verify('b', HASH, PASSWORD);
    await verifier.verify('a', HASH, PASSWORD); // a is now the most recent
    await verifier.verify('c', HASH, PASSWORD); // evicts b
    await verifier.verify('a', HASH, PASSWORD);
    await verifier.verify('b', HASH, PASSWORD);

    expect(lookups).toEqual(['miss', 'miss', 'local', 'miss', 'local', 'redis']);
  });

  it('shares entries and the generated secret with a second instance on the same Redis and prefix', async () => {
    const first = countingVerifier();
    const second = countingVerifier();
    const a = await cache(first.verifier);
    const b = await cache(second.verifier);

    await a.verifier.verify(USER, HASH, PASSWORD);
    await expect(b.verifier.verify(USER, HASH, PASSWORD)).resolves.toEqual({ ok: true, scheme: 'BLF-CRYPT' });

    expect(second.calls).toBe(0);
    expect(b.lookups).toEqual(['redis']);
    await expect(redis.exists(keys.cacheSecret({ prefix }))).resolves.toBe(1);
  });

  it('uses a configured secret instead of generating one', async () => {
    const inner = countingVerifier();
    const a = await cache(inner.verifier, { secret: 'k'.repeat(32) });
    const b = await cache(countingVerifier().verifier, { secret: 'k'.repeat(32) });
    const c = await cache(countingVerifier().verifier, { secret: 'z'.repeat(32) });

    await a.verifier.verify(USER, HASH, PASSWORD);
    await b.verifier.verify(USER, HASH, PASSWORD);
    await c.verifier.verify(USER, HASH, PASSWORD);

    expect(b.lookups).toEqual(['redis']);
    expect(c.lookups).toEqual(['miss']);
    await expect(redis.exists(keys.cacheSecret({ prefix }))).resolves.toBe(0);
  });

  it('stores neither the password nor an unkeyed hash of it in Redis', async () => {
    const { verifier } = await cache(countingVerifier().verifier, { secret: 's'.repeat(32) });

    await verifier.verify(USER, HASH, PASSWORD);

    const found = await scanKeys(redis, `${prefix}*`);
    expect(found).toHaveLength(1);
    const stored = `${found.join()} ${await redis.get(found[0] ?? '')}`;
    const unkeyed = ['sha1', 'sha256', 'md5'].flatMap((algorithm) =>
      ['hex', 'base64', 'base64url'].map((encoding) =>
        createHash(algorithm)
          .update(PASSWORD)
          .digest(encoding as 'hex'),
      ),
    );
    for (const secret of [PASSWORD, HASH, ...unkeyed]) expect(stored).not.toContain(secret);
  });

  it('passes everything through when ttlSeconds is 0', async () => {
    const inner = countingVerifier();
    const { verifier, lookups } = await cache(inner.verifier, { ttlSeconds: 0 });

    await verifier.verify(USER, HASH, PASSWORD);
    await verifier.verify(USER, HASH, PASSWORD);

    expect(inner.calls).toBe(2);
    expect(lookups).toEqual([]);
  });

  it('passes verifyDummy through to the inner verifier', async () => {
    const inner = countingVerifier();
    const { verifier } = await cache(inner.verifier);

    await verifier.verifyDummy(PASSWORD);
    await verifier.verifyDummy(PASSWORD);

    expect(inner.dummyCalls).toBe(2);
  });

  it('keeps verifying through the inner verifier and the local layer when Redis is unreachable', async () => {
    const unreachable = createRedis('redis://127.0.0.1:1');
    unreachable.on('error', () => undefined);
    closers.push(() => unreachable.disconnect());
    const inner = countingVerifier();
    const { log, lines } = captureLog();

    const started = Date.now();
    const { verifier, lookups } = await cache(inner.verifier, { redis: unreachable, log });
    expect(Date.now() - started).toBeLessThan(1500);

    await expect(verifier.verify(USER, HASH, PASSWORD)).resolves.toEqual({ ok: true, scheme: 'BLF-CRYPT' });
    await expect(verifier.verify(USER, HASH, PASSWORD)).resolves.toEqual({ ok: true, scheme: 'BLF-CRYPT' });
    await expect(verifier.verify(USER, HASH, 'wrong')).resolves.toEqual({ ok: false, reason: 'mismatch' });

    expect(inner.calls).toBe(2);
    expect(lookups).toEqual(['miss', 'local', 'miss']);
    expect(lines().filter((line) => line.level >= 40)).toHaveLength(1);
  });

  describe('with Redis behind a proxy that can be cut', () => {
    let proxy: TcpProxy;
    let proxied: Redis;

    beforeEach(async () => {
      proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(REDIS_URL).port || 6379) });
      proxied = await readyRedis(`redis://127.0.0.1:${proxy.port}`);
      closers.push(
        () => proxy.close(),
        () => proxied.disconnect(),
      );
    });

    it('degrades to the local layer when Redis goes away mid-run and logs the transition once each way', async () => {
      const inner = countingVerifier();
      const { log, lines } = captureLog();
      const { verifier, lookups } = await cache(inner.verifier, { redis: proxied, log });
      await verifier.verify(USER, HASH, PASSWORD);

      await proxy.cut();
      await sleep(50);
      for (const username of ['bob', 'bob', 'carol', 'carol']) {
        await expect(verifier.verify(username, HASH, PASSWORD)).resolves.toMatchObject({ ok: true });
      }
      await expect(verifier.verify(USER, HASH, PASSWORD)).resolves.toMatchObject({ ok: true });
      expect(lookups).toEqual(['miss', 'miss', 'local', 'miss', 'local', 'local']);

      await proxy.restore();
      await new Promise((resolve) => proxied.once('ready', resolve));
      await sleep(1000); // past the back-off after the last error
      await verifier.verify('dave', HASH, PASSWORD);

      const messages = lines().map((line) => line.msg);
      expect(messages.filter((msg) => msg.includes('redis unavailable'))).toHaveLength(1);
      expect(messages.filter((msg) => msg.includes('available again'))).toHaveLength(1);
      await expect(scanKeys(redis, keys.verifiedCredential({ prefix }, '*'))).resolves.toHaveLength(2);
    });

    it('starts with a private secret when Redis is down at creation and loads the shared one once it is back', async () => {
      let nowMs = 1_000_000;
      const clock = () => nowMs;
      const sharing = await cache(countingVerifier().verifier, { now: clock });
      await proxy.cut();
      const inner = countingVerifier();
      const late = await cache(inner.verifier, { redis: proxied, now: clock });

      await late.verifier.verify(USER, HASH, PASSWORD);
      await proxy.restore();
      await new Promise((resolve) => proxied.once('ready', resolve));
      nowMs += 10_000;
      await late.verifier.verify('bob', HASH, PASSWORD); // starts loading the shared secret
      await sleep(100);
      await late.verifier.verify('carol', HASH, PASSWORD);

      await expect(sharing.verifier.verify('carol', HASH, PASSWORD)).resolves.toMatchObject({ ok: true });
      expect(sharing.lookups).toEqual(['redis']);
      expect(inner.calls).toBe(3);
    });
  });
});
