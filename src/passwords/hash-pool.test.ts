import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { PasswordFixture } from '../../scripts/generate-hash-vectors.js';
import { createHashPool, type HashPool, type HashPoolOptions } from './hash-pool.js';
import { isExpensiveScheme } from './verify-password-hash.js';

const fixtureUrl = new URL('../../test/fixtures/password-hashes.json', import.meta.url);
const { vectors } = JSON.parse(readFileSync(fixtureUrl, 'utf8')) as PasswordFixture;
const defaults: HashPoolOptions = { threads: 2, allowPlaintext: false, bcryptCost: 5, bcryptImpl: 'native' };

describe('createHashPool', () => {
  const pools: HashPool[] = [];
  const openPool = (options: Partial<HashPoolOptions> = {}) => {
    const pool = createHashPool({ ...defaults, ...options });
    pools.push(pool);
    return pool;
  };
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((pool) => pool.close()));
  });

  it.each(['native', 'js'] as const)(
    'keeps the event loop responsive while 8 bcrypt cost-12 verifications run (%s bcrypt)',
    async (bcryptImpl) => {
      const pool = openPool({ bcryptCost: 12, bcryptImpl });
      const stored = await pool.hash('correct horse battery staple', 'BLF-CRYPT');
      expect(stored).toMatch(/^\{BLF-CRYPT\}\$2y\$12\$/);

      let ticks = 0;
      const interval = setInterval(() => {
        ticks++;
      }, 5);
      try {
        const verdicts = await Promise.all(
          Array.from({ length: 8 }, () => pool.verify(stored, 'correct horse battery staple')),
        );
        expect(verdicts).toEqual(Array.from({ length: 8 }, () => ({ ok: true, scheme: 'BLF-CRYPT' })));
      } finally {
        clearInterval(interval);
      }
      // 8 × ~0.25 s over 2 threads is about a second: a free event loop ticks ~200 times.
      expect(ticks).toBeGreaterThanOrEqual(20);
    },
  );

  it('answers cheap schemes on the calling thread and refuses expensive work once closed', async () => {
    const pool = openPool();
    await pool.close();
    const sha = vectors.find((candidate) => candidate.scheme === 'SHA256');
    await expect(pool.verify(sha?.stored ?? '', sha?.password ?? '')).resolves.toMatchObject({ ok: true });
    const bcrypt = '{BLF-CRYPT}$2y$05$tNkilhVhAAGtHrlaENLErOBvSTu7wdbAQiRg7q/R5tnUJ03XyxBu.';
    await expect(pool.verify(bcrypt, 'test')).rejects.toThrow('the hash pool is closed');
    await expect(pool.hash('test', 'SSHA256')).rejects.toThrow('the hash pool is closed');
  });

  it('applies its plaintext policy to cleartext schemes', async () => {
    await expect(openPool({ allowPlaintext: false }).verify('{PLAIN}secret', 'secret')).resolves.toMatchObject({
      reason: 'scheme_disabled',
    });
    await expect(openPool({ allowPlaintext: true }).verify('{PLAIN}secret', 'secret')).resolves.toMatchObject({
      ok: true,
    });
  });

  it('refuses at creation a bcrypt cost it could not hash with', () => {
    expect(() => createHashPool({ ...defaults, bcryptCost: 17 })).toThrow(RangeError);
  });

  it('reports its thread count and an empty queue when idle', () => {
    const pool = openPool({ threads: 3 });
    expect(pool.threads).toBe(3);
    expect(pool.queueDepth).toBe(0);
  });
});

describe('createHashPool workers', () => {
  let pool: HashPool;
  beforeAll(() => {
    pool = createHashPool(defaults);
  });
  afterAll(async () => {
    await pool.close();
  });

  const samples = ['BLF-CRYPT', 'SHA512-CRYPT', 'CRYPT', 'ARGON2ID', 'PBKDF2', 'SCRAM-SHA-1', 'MD5-CRYPT'].map(
    (scheme) => {
      const vector = vectors.find((candidate) => candidate.scheme === scheme && isExpensiveScheme(candidate.stored));
      if (vector === undefined) throw new Error(`fixture has no expensive ${scheme} vector`);
      return vector;
    },
  );

  it.each(samples)('give the same verdicts as inline verification for $scheme from "$source"', async (vector) => {
    await expect(pool.verify(vector.stored, vector.password)).resolves.toEqual({ ok: true, scheme: vector.scheme });
    await expect(pool.verify(vector.stored, vector.wrongPassword)).resolves.toMatchObject({ reason: 'mismatch' });
  });

  it('hash new passwords in the scheme asked for', async () => {
    const stored = await pool.hash('pässwörd', 'SHA512-CRYPT');
    await expect(pool.verify(stored, 'pässwörd')).resolves.toEqual({ ok: true, scheme: 'SHA512-CRYPT' });
  });
});
