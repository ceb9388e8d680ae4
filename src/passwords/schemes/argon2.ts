// ARGON2I / ARGON2ID through @node-rs/argon2. Like Dovecot (libsodium's crypto_pwhash_str_verify),
// the variant comes from the hash itself, so {ARGON2I} may hold an $argon2id$ hash.
import { hashSync, verifySync } from '@node-rs/argon2';
import type { SchemeOutcome } from './types.js';

const ARGON2 = /^\$argon2(id|i|d)\$(?:v=\d+\$)?m=(\d{1,10}),t=(\d{1,10}),p=(\d{1,3})\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;
/** libsodium's "sensitive" limits are 1 GiB and 4 passes; beyond these a hash is a denial of service. */
const MAX_MEMORY_KIB = 1024 * 1024;
const MAX_PASSES = 32;
const MAX_LANES = 16;

export function verifyArgon2(stored: string, candidate: Buffer): SchemeOutcome {
  const parsed = ARGON2.exec(stored);
  if (parsed === null) return 'malformed';
  const [, variant, memory, passes, lanes] = parsed;
  // libsodium, and so Dovecot, has no argon2d.
  if (variant === 'd') return 'unsupported';
  if (Number(memory) > MAX_MEMORY_KIB || Number(passes) > MAX_PASSES || Number(lanes) > MAX_LANES) return 'malformed';
  try {
    return verifySync(stored, candidate) ? 'match' : 'mismatch';
  } catch {
    // The library throws on encodings it cannot decode (bad base64, out-of-range parameters).
    return 'malformed';
  }
}

/** Dovecot's own ARGON2ID parameters (libsodium "interactive" memory, three passes). */
export function hashArgon2id(password: string): string {
  // Algorithm.Argon2id: the package's enums are `const`, which isolatedModules cannot inline.
  return hashSync(password, { algorithm: 2, memoryCost: 65536, timeCost: 3, parallelism: 1 });
}
