// Encrypts secrets stored in the database (IdP client secrets) with AES-256-GCM under a key
// from config. Values written by mailcow (plain text) are still readable, so an existing
// mailcow database keeps working until the secret is next saved through postern.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { AppError } from '../errors.js';

const PREFIX = 'postern:v1:';

export interface SecretBox {
  seal(plain: string): string;
  /** Plain text for sealed values; mailcow's unsealed values pass through unchanged. */
  open(stored: string): string;
}

export function createSecretBox(secretKey: string | undefined): SecretBox {
  // Any string of 32+ characters is accepted as configured; hashing spreads it to 256 bits.
  const key = secretKey ? createHash('sha256').update(secretKey).digest() : undefined;
  const needKey = () =>
    new AppError('bad_request', 'POSTERN_SECRET_KEY is not set: postern cannot store or read encrypted secrets');
  return {
    seal(plain) {
      if (!key) throw needKey();
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
    },
    open(stored) {
      if (!stored.startsWith(PREFIX)) return stored;
      if (!key) throw needKey();
      const packed = Buffer.from(stored.slice(PREFIX.length), 'base64');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, packed.subarray(0, 12));
        decipher.setAuthTag(packed.subarray(12, 28));
        return Buffer.concat([decipher.update(packed.subarray(28)), decipher.final()]).toString('utf8');
      } catch (error) {
        throw new AppError('internal', 'a stored secret cannot be decrypted (was POSTERN_SECRET_KEY changed?)', {
          cause: error,
        });
      }
    },
  };
}
