// Byte helpers for the scheme verifiers: constant-time comparison and checked table lookups.
import { timingSafeEqual } from 'node:crypto';

/**
 * Constant-time equality for digests and crypt strings. A length difference returns early:
 * lengths are public (they follow from the stored hash's format), the bytes are not.
 */
export function isEqualConstantTime(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Compares a recomputed crypt(3)-style string with the stored one, both plain ASCII. */
export function isSameCryptString(computed: string, stored: string): boolean {
  return isEqualConstantTime(Buffer.from(computed, 'latin1'), Buffer.from(stored, 'latin1'));
}

/**
 * Indexes a fixed table (S-boxes, permutations, round constants) where the index is known to
 * be in range; strict indexing would otherwise sprinkle `?? 0` that could hide a real bug.
 */
export function entryAt(table: ArrayLike<number>, index: number): number {
  const value = table[index];
  if (value === undefined) throw new RangeError(`table index ${index} out of range`);
  return value;
}
