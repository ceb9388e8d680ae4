// SHA256-CRYPT ($5$) and SHA512-CRYPT ($6$) through unixcrypt, which computes them in plain JS.
// unixcrypt allocates an array as long as the round count and throws on odd salts: guard both.
import { randomInt } from 'node:crypto';
import { encrypt } from 'unixcrypt';
import { isSameCryptString } from './bytes.js';
import type { SchemeOutcome } from './types.js';

const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SHA_CRYPT = /^\$([56])\$(?:rounds=(\d{1,9})\$)?[./0-9A-Za-z]{0,16}\$([./0-9A-Za-z]+)$/;
const DIGEST_CHARACTERS = { '5': 43, '6': 86 } as const;
/** glibc's default is 5000; a million rounds already take about two seconds here. */
const MAX_ROUNDS = 1_000_000;

export function verifyShaCrypt(stored: string, candidate: Buffer): SchemeOutcome {
  const parsed = SHA_CRYPT.exec(stored);
  if (parsed === null) return 'malformed';
  const [, variant, roundsText, digest = ''] = parsed;
  if ((variant === '5' || variant === '6') && digest.length !== DIGEST_CHARACTERS[variant]) return 'malformed';
  if (roundsText !== undefined && Number(roundsText) > MAX_ROUNDS) return 'malformed';
  // Rounds below glibc's minimum of 1000 are raised to it and written as rounds=1000, so a
  // stored "rounds=500" can never match here or in Dovecot: a mismatch, as crypt(3) decides.
  const setting = stored.slice(0, stored.lastIndexOf('$'));
  return isSameCryptString(encrypt(candidate.toString('utf8'), setting), stored) ? 'match' : 'mismatch';
}

function generateSalt(): string {
  let salt = '';
  for (let i = 0; i < 16; i++) salt += CRYPT_ALPHABET.charAt(randomInt(CRYPT_ALPHABET.length));
  return salt;
}

/** A new `$5$`/`$6$` hash with glibc's default 5000 rounds and a 16-character salt, as Dovecot writes. */
export function hashShaCrypt(password: string, variant: '5' | '6'): string {
  // Always pass a salt: unixcrypt turns a bare "$5$" into an empty one.
  return encrypt(password, `$${variant}$${generateSalt()}`);
}
