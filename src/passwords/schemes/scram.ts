// SCRAM-SHA-1 / SCRAM-SHA-256 stored keys (`iter,salt,StoredKey,ServerKey`, RFC 5802). Dovecot
// accepts plaintext logins against them by recomputing StoredKey; so does postern.
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { decodeBase64 } from '../stored-hash.js';
import { isEqualConstantTime } from './bytes.js';
import { MAX_PBKDF2_ITERATIONS } from './pbkdf2.js';
import type { SchemeOutcome } from './types.js';

/** RFC 5802's minimum, which Dovecot enforces when reading the passdb. */
const MIN_ITERATIONS = 4096;

export function verifyScram(algorithm: 'sha1' | 'sha256', stored: string, candidate: Buffer): SchemeOutcome {
  const fields = stored.split(',');
  if (fields.length !== 4) return 'malformed';
  const [iterationsText = '', saltText = '', storedKeyText = '', serverKeyText = ''] = fields;
  const digestLength = algorithm === 'sha1' ? 20 : 32;
  const iterations = /^\d{1,10}$/.test(iterationsText) ? Number(iterationsText) : Number.NaN;
  const salt = decodeBase64(saltText);
  const storedKey = decodeBase64(storedKeyText);
  // The ServerKey plays no part in checking a password, but Dovecot rejects the entry without it.
  const serverKey = decodeBase64(serverKeyText);
  if (!(iterations >= MIN_ITERATIONS && iterations <= MAX_PBKDF2_ITERATIONS)) return 'malformed';
  if (salt === undefined || storedKey?.length !== digestLength || serverKey?.length !== digestLength) {
    return 'malformed';
  }
  const saltedPassword = pbkdf2Sync(candidate, salt, iterations, digestLength, algorithm);
  const clientKey = createHmac(algorithm, saltedPassword).update('Client Key').digest();
  const computed = createHash(algorithm).update(clientKey).digest();
  return isEqualConstantTime(computed, storedKey) ? 'match' : 'mismatch';
}
