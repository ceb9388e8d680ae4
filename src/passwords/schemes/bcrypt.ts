// BLF-CRYPT ($2a$/$2b$/$2y$) through @node-rs/bcrypt ('native') or bcryptjs ('js'); both block
// the thread they run on when called synchronously, so expensive callers go through the pool.
import { hashSync as hashNative, verifySync as verifyNative } from '@node-rs/bcrypt';
import bcryptjs from 'bcryptjs';
import type { BcryptImpl, SchemeOutcome } from './types.js';

const BCRYPT = /^\$2([a-z])\$(\d\d)\$[./A-Za-z0-9]{53}$/;
export const MIN_BCRYPT_COST = 4;
/**
 * Cost 16 takes about four seconds here (cost 12: 0.23 s); anything higher would let a
 * single stored hash hold a pool thread for minutes, so verification refuses it.
 */
export const MAX_BCRYPT_COST = 16;

export function verifyBcrypt(stored: string, candidate: Buffer, impl: BcryptImpl): SchemeOutcome {
  const parsed = BCRYPT.exec(stored);
  if (parsed === null) return 'malformed';
  const [, variant, costText] = parsed;
  // $2x$ marks hashes from the sign-extension bug; crypt_blowfish reproduces that bug, neither
  // library does, so a non-ASCII password would be judged wrongly.
  if (variant === 'x') return 'unsupported';
  if (variant !== 'a' && variant !== 'b' && variant !== 'y') return 'malformed';
  const cost = Number(costText);
  if (cost < MIN_BCRYPT_COST || cost > MAX_BCRYPT_COST) return 'malformed';
  if (impl === 'native') return verifyNative(candidate, stored) ? 'match' : 'mismatch';
  // bcryptjs only takes strings; the bytes came from a JS string, so the UTF-8 round trip is exact.
  return bcryptjs.compareSync(candidate.toString('utf8'), stored) ? 'match' : 'mismatch';
}

/** A new hash with Dovecot's $2y$ prefix; $2b$ and $2y$ are the same algorithm. */
export function hashBcrypt(password: string, cost: number, impl: BcryptImpl): string {
  if (!Number.isInteger(cost) || cost < MIN_BCRYPT_COST || cost > MAX_BCRYPT_COST) {
    throw new RangeError(`bcrypt cost must be an integer from ${MIN_BCRYPT_COST} to ${MAX_BCRYPT_COST}`);
  }
  // Both libraries write $2b$ (@node-rs/bcrypt 1.x takes the cost as a plain number).
  const hashed = impl === 'native' ? hashNative(password, cost) : bcryptjs.hashSync(password, cost);
  return `$2y$${hashed.slice(4)}`;
}
