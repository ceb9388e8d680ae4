// CRYPT, DES-CRYPT, SHA256-CRYPT and SHA512-CRYPT: Dovecot 2.3 hands all four to crypt(3), so
// the hash's own prefix picks the algorithm, whatever the scheme name says. Dispatch only.
import { verifyBcrypt } from './bcrypt.js';
import { verifyDesCrypt } from './des-crypt.js';
import { verifyMd5Crypt } from './md5-crypt.js';
import { verifyShaCrypt } from './sha-crypt.js';
import type { SchemeOutcome, VerifyContext } from './types.js';

/**
 * libxcrypt formats Dovecot would accept but postern cannot compute: yescrypt ($y$, Debian 12's
 * default for mkpasswd and /etc/shadow), gost-yescrypt, scrypt, NT-hash, SunMD5, sha1crypt.
 */
const UNSUPPORTED_PREFIXES = ['$y$', '$gy$', '$7$', '$3$', '$md5', '$sha1$'];

export function verifyCrypt(stored: string, candidate: Buffer, context: VerifyContext): SchemeOutcome {
  if (/^\$2[a-z]\$/.test(stored)) return verifyBcrypt(stored, candidate, context.bcryptImpl);
  if (stored.startsWith('$1$')) return verifyMd5Crypt(stored, candidate);
  if (stored.startsWith('$5$') || stored.startsWith('$6$')) return verifyShaCrypt(stored, candidate);
  if (UNSUPPORTED_PREFIXES.some((prefix) => stored.startsWith(prefix))) return 'unsupported';
  return verifyDesCrypt(stored, candidate);
}
