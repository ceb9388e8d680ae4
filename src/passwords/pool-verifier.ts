// The plain verifier: every check runs the hash (off the event loop, in the hash pool).
import { randomBytes } from 'node:crypto';
import type { CredentialVerifier } from './credential-verifier.js';
import type { NewHashScheme } from './hash-password.js';
import type { HashPool } from './hash-pool.js';

export async function createPoolVerifier(pool: HashPool, dummyScheme: NewHashScheme): Promise<CredentialVerifier> {
  // A hash of a random secret in the scheme new passwords get, so an unknown user costs the same
  // as a typical known one and nobody can ever match it.
  const dummyHash = await pool.hash(randomBytes(24).toString('base64'), dummyScheme);
  return {
    verify: (_username, storedHash, candidate) => pool.verify(storedHash, candidate),
    async verifyDummy(candidate) {
      await pool.verify(dummyHash, candidate);
    },
  };
}
