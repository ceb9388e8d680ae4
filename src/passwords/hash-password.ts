// New password hashes (mailbox and app passwords) in `{SCHEME}…` form that Dovecot verifies.
// Synchronous and CPU-bound underneath: callers with an event loop to protect use the hash pool.
import { hashArgon2id } from './schemes/argon2.js';
import { hashBcrypt } from './schemes/bcrypt.js';
import { hashSaltedDigest } from './schemes/digest.js';
import type { BcryptImpl } from './schemes/index.js';
import { hashShaCrypt } from './schemes/sha-crypt.js';

export type NewHashScheme = 'BLF-CRYPT' | 'SHA512-CRYPT' | 'SHA256-CRYPT' | 'ARGON2ID' | 'SSHA512' | 'SSHA256';

/** mailcow's cost (PHP's password_hash default); Dovecot's own default of 5 is too cheap today. */
export const DEFAULT_BCRYPT_COST = 10;

export interface HashPasswordOptions {
  /** 4 to 16; see MAX_BCRYPT_COST for why not more. */
  bcryptCost?: number;
  bcryptImpl?: BcryptImpl;
}

/** Throws RangeError for an out-of-range bcrypt cost: a configuration fault, not a denial. */
export async function hashPassword(
  password: string,
  scheme: NewHashScheme,
  options: HashPasswordOptions = {},
): Promise<string> {
  switch (scheme) {
    case 'BLF-CRYPT':
      return `{BLF-CRYPT}${hashBcrypt(password, options.bcryptCost ?? DEFAULT_BCRYPT_COST, options.bcryptImpl ?? 'native')}`;
    case 'SHA512-CRYPT':
      return `{SHA512-CRYPT}${hashShaCrypt(password, '6')}`;
    case 'SHA256-CRYPT':
      return `{SHA256-CRYPT}${hashShaCrypt(password, '5')}`;
    case 'ARGON2ID':
      return `{ARGON2ID}${hashArgon2id(password)}`;
    case 'SSHA512':
      return `{SSHA512}${hashSaltedDigest('sha512', Buffer.from(password, 'utf8'))}`;
    case 'SSHA256':
      return `{SSHA256}${hashSaltedDigest('sha256', Buffer.from(password, 'utf8'))}`;
  }
}
