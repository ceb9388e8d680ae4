// MD5-CRYPT ($1$, Poul-Henning Kamp's md5crypt) and Dovecot's MD5 scheme, which is MD5-CRYPT
// when the value starts with $1$ and PLAIN-MD5 otherwise. Computed from the hash's own bytes.
import { createHash } from 'node:crypto';
import { decodePayload } from '../stored-hash.js';
import { entryAt, isSameCryptString } from './bytes.js';
import { verifyDigest } from './digest.js';
import type { SchemeOutcome } from './types.js';

const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const MAGIC = Buffer.from('$1$');
// The salt stops at the first '$' and at 8 characters; longer salts can never match.
const MD5_CRYPT = /^\$1\$([^$]{0,8})\$[./0-9A-Za-z]{22}$/;

/** The 16 digest bytes in md5crypt's output order, 3 bytes to 4 characters, low bits first. */
const OUTPUT_GROUPS = [
  [0, 6, 12],
  [1, 7, 13],
  [2, 8, 14],
  [3, 9, 15],
  [4, 10, 5],
] as const;

function encodeBits(value: number, characters: number): string {
  let text = '';
  for (let i = 0; i < characters; i++) text += CRYPT_ALPHABET.charAt((value >> (6 * i)) & 0x3f);
  return text;
}

export function computeMd5Crypt(password: Buffer, salt: Buffer): string {
  const md5 = (...parts: Uint8Array[]) => {
    const hash = createHash('md5');
    for (const part of parts) hash.update(part);
    return hash.digest();
  };
  const alternate = md5(password, salt, password);
  const initial = createHash('md5').update(password).update(MAGIC).update(salt);
  for (let remaining = password.length; remaining > 0; remaining -= 16) {
    initial.update(alternate.subarray(0, Math.min(16, remaining)));
  }
  // The historical quirk: a zero byte for each set bit of the length (the original C reads a
  // buffer it has just cleared), else the password's first byte.
  for (let bits = password.length; bits > 0; bits >>= 1) {
    initial.update(bits & 1 ? Buffer.of(0) : password.subarray(0, 1));
  }
  let digest = initial.digest();
  for (let round = 0; round < 1000; round++) {
    const parts: Uint8Array[] = [round & 1 ? password : digest];
    if (round % 3 !== 0) parts.push(salt);
    if (round % 7 !== 0) parts.push(password);
    parts.push(round & 1 ? digest : password);
    digest = md5(...parts);
  }
  let output = `$1$${salt.toString('latin1')}$`;
  for (const [high, middle, low] of OUTPUT_GROUPS) {
    output += encodeBits((entryAt(digest, high) << 16) | (entryAt(digest, middle) << 8) | entryAt(digest, low), 4);
  }
  return output + encodeBits(entryAt(digest, 11), 2);
}

export function verifyMd5Crypt(stored: string, candidate: Buffer): SchemeOutcome {
  const parsed = MD5_CRYPT.exec(stored);
  if (parsed === null) return 'malformed';
  const salt = Buffer.from(parsed[1] ?? '', 'latin1');
  return isSameCryptString(computeMd5Crypt(candidate, salt), stored) ? 'match' : 'mismatch';
}

/** Dovecot's `{MD5}`: md5crypt for `$1$…`, else a PLAIN-MD5 digest in hex or base64. */
export function verifyMd5Scheme(stored: string, candidate: Buffer): SchemeOutcome {
  if (stored.startsWith('$1$')) return verifyMd5Crypt(stored, candidate);
  const digest = decodePayload(stored, 'hex', { rawLength: 16, isEncodingExplicit: false });
  return digest === undefined ? 'malformed' : verifyDigest('md5', digest, candidate);
}
