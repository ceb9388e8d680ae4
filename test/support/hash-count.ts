// Counting the hash verifications a postern spends (the expensive step a login may or may not
// reach), by wrapping its hash pool's verify until restored.
import type { TestPostern } from './env.js';

export interface HashCount {
  /** Verifications since countHashes, dummy ones (timing padding, unknown users) included. */
  readonly count: number;
  /** Verifications against this stored hash only (a real candidate, never a dummy). */
  countOf(storedHash: string): number;
  /** Puts the pool's own verify back. */
  restore(): void;
}

export function countHashes(postern: TestPostern): HashCount {
  const pool = postern.deps.hashPool;
  const original = pool.verify.bind(pool);
  const verified: string[] = [];
  pool.verify = async (stored, candidate) => {
    verified.push(stored);
    return original(stored, candidate);
  };
  return {
    get count() {
      return verified.length;
    },
    countOf: (storedHash) => verified.filter((stored) => stored === storedHash).length,
    restore: () => {
      pool.verify = original;
    },
  };
}
