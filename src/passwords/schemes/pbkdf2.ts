// Dovecot's PBKDF2 scheme: `$1$<salt>$<rounds>$<40 hex>`, PBKDF2-HMAC-SHA1 with the salt's
// characters as the salt bytes; and mailcow's FreeIPA-style PBKDF2-SHA512, which Dovecot lacks.
import { pbkdf2Sync } from 'node:crypto';
import { isEqualConstantTime } from './bytes.js';
import type { SchemeOutcome } from './types.js';

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

// FreeIPA's (389-ds) PBKDF2-SHA512 as mailcow's verify_hash() reads it (data/web/inc/
// functions.inc.php, case "PBKDF2-SHA512", since mailcow 2026-01): `<iterations>$<salt>$<hash>`,
// salt and hash standard base64, PBKDF2-HMAC-SHA512 over the decoded salt. mailcow derives as
// many bytes as the stored hash has; postern insists on the 64 that 389-ds writes (one SHA-512
// block), because PBKDF2's output for a shorter length is a prefix of the longer one: a value cut
// short (a narrow column, a bad copy) would still accept the password, with fewer bits to guess.
// Dovecot has no such scheme.
const PBKDF2_SHA512 = /^(\d{1,10})\$([A-Za-z0-9+/]*={0,2})\$([A-Za-z0-9+/]{86}==)$/;
const PBKDF2_SHA512_KEY_BYTES = 64;

export function verifyPbkdf2Sha512(stored: string, candidate: Buffer): SchemeOutcome {
  const parsed = PBKDF2_SHA512.exec(stored);
  if (parsed === null) return 'malformed';
  const [, iterationsText, saltText = '', hashText = ''] = parsed;
  const iterations = Number(iterationsText);
  if (iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS) return 'malformed';
  // Node's base64 decoder skips what it cannot read: only whole, padded groups are a salt.
  if (saltText.length % 4 !== 0) return 'malformed';
  const expected = Buffer.from(hashText, 'base64');
  if (expected.length !== PBKDF2_SHA512_KEY_BYTES) return 'malformed';
  const computed = pbkdf2Sync(candidate, Buffer.from(saltText, 'base64'), iterations, expected.length, 'sha512');
  return isEqualConstantTime(computed, expected) ? 'match' : 'mismatch';
}
