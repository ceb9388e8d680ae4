// Dovecot's PBKDF2 scheme: `$1$<salt>$<rounds>$<40 hex>`, PBKDF2-HMAC-SHA1 with the salt's
// characters as the salt bytes. Not mailcow's FreeIPA-style PBKDF2-SHA512, which Dovecot lacks.
import { pbkdf2Sync } from 'node:crypto';
import { isEqualConstantTime } from './bytes.js';
import type { SchemeOutcome } from './index.js';

const PBKDF2 = /^\$1\$([^$]*)\$(\d{1,10})\$([0-9a-fA-F]{40})$/;
/** About two seconds of CPU; Dovecot writes 5000. */
export const MAX_PBKDF2_ITERATIONS = 5_000_000;

export function verifyPbkdf2(stored: string, candidate: Buffer): SchemeOutcome {
  const parsed = PBKDF2.exec(stored);
  if (parsed === null) return 'malformed';
  const [, salt = '', roundsText, hex = ''] = parsed;
  const rounds = Number(roundsText);
  if (rounds < 1 || rounds > MAX_PBKDF2_ITERATIONS) return 'malformed';
  const computed = pbkdf2Sync(candidate, Buffer.from(salt, 'latin1'), rounds, 20, 'sha1');
  return isEqualConstantTime(computed, Buffer.from(hex, 'hex')) ? 'match' : 'mismatch';
}
