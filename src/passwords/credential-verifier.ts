// What checks a password candidate against a stored hash, as the login use-cases see it. The
// plain implementation hashes in the pool (pool-verifier.ts); the cache-aware one
// remembers successes (cache/verified-credentials.ts). Both import this file.
import type { HashVerdict } from './verify-password-hash.js';

/** Checks a candidate against a stored hash; cache-aware implementations live in cache/. */
export interface CredentialVerifier {
  /** Never throws for a bad or unknown hash (that is a denial); throws only on faults. */
  verify(username: string, storedHash: string, candidate: string): Promise<HashVerdict>;
  /**
   * The first of storedHashes against which a success of (username, candidate) is remembered,
   * found without hashing; used so a mailbox with many app passwords pays for none of the others.
   * Optional.
   */
  findCached?(
    username: string,
    candidate: string,
    storedHashes: readonly string[],
  ): Promise<{ index: number; verdict: HashVerdict } | undefined>;
  /** Burn the time of one real verification, so unknown users cost what known ones do. */
  verifyDummy(candidate: string): Promise<void>;
}
