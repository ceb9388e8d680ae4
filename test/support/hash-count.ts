// Counting the hash verifications a postern spends (the expensive step a login may or may not
// reach), by wrapping its hash pool's verify until restored.
import type { TestPostern } from './env.js';

export interface HashCount {
  /** Verifications since countHashes. */
  readonly count: number;
  /** Puts the pool's own verify back. */
  restore(): void;
}

export function countHashes(postern: TestPostern): HashCount {
  const pool = postern.deps.hashPool;
  const original = pool.verify.bind(pool);
  let count = 0;
  pool.verify = async (stored, candidate) => {
    count += 1;
    return original(stored, candidate);
  };
  return {
    get count() {
      return count;
    },
    restore: () => {
      pool.verify = original;
    },
  };
}
