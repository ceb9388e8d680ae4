// Unsalted digests (SHA, SHA1, SHA256, SHA512, PLAIN-MD5, LDAP-MD5, PLAIN-MD4) and their salted
// forms (SMD5, SSHA, SSHA256, SSHA512): cheap enough to verify inline on the event loop.
import { createHash, randomBytes } from 'node:crypto';
import { isEqualConstantTime } from './bytes.js';
import { computeMd4 } from './md4.js';
import type { SchemeOutcome } from './types.js';

export type DigestAlgorithm = 'md4' | 'md5' | 'sha1' | 'sha256' | 'sha512';

export const digestLengthBytes: Record<DigestAlgorithm, number> = {
  md4: 16,
  md5: 16,
  sha1: 20,
  sha256: 32,
  sha512: 64,
};

function computeDigest(algorithm: DigestAlgorithm, ...parts: Uint8Array[]): Buffer {
  if (algorithm === 'md4') return computeMd4(Buffer.concat(parts));
  const hash = createHash(algorithm);
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** The stored raw digest has already been length-checked against the scheme while decoding. */
export function verifyDigest(algorithm: DigestAlgorithm, raw: Buffer, candidate: Buffer): SchemeOutcome {
  return isEqualConstantTime(computeDigest(algorithm, candidate), raw) ? 'match' : 'mismatch';
}

/** Salted form: digest(password ‖ salt) ‖ salt, where the salt is whatever follows the digest. */
export function verifySaltedDigest(algorithm: DigestAlgorithm, raw: Buffer, candidate: Buffer): SchemeOutcome {
  const digestLength = digestLengthBytes[algorithm];
  // Dovecot refuses an empty salt too ("password is too short").
  if (raw.length <= digestLength) return 'malformed';
  const salt = raw.subarray(digestLength);
  const computed = computeDigest(algorithm, candidate, salt);
  return isEqualConstantTime(computed, raw.subarray(0, digestLength)) ? 'match' : 'mismatch';
}

const SALT_BYTES = 16;

/** Base64 payload for a new SSHA256/SSHA512 hash; a 16-byte salt (Dovecot uses 4, mailcow 16 hex chars). */
export function hashSaltedDigest(algorithm: 'sha256' | 'sha512', password: Uint8Array): string {
  const salt = randomBytes(SALT_BYTES);
  return Buffer.concat([computeDigest(algorithm, password, salt), salt]).toString('base64');
}
