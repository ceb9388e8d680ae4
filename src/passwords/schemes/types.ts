// The types every scheme file and the scheme table share (index.ts imports the schemes, so the
// schemes import these from here, not from index.ts).
import type { PayloadEncoding } from '../stored-hash.js';

export type BcryptImpl = 'native' | 'js';

export interface VerifyContext {
  readonly bcryptImpl: BcryptImpl;
}

/** 'malformed' and 'unsupported' describe the stored value, never the candidate. */
export type SchemeOutcome = 'match' | 'mismatch' | 'malformed' | 'unsupported';

export interface SchemeDefinition {
  readonly defaultEncoding: PayloadEncoding;
  /** Decoded size of fixed-size digests; lets Dovecot (and us) tell hex from base64 by length. */
  readonly rawLength?: number;
  readonly isPlaintext?: boolean;
  /** Whether verifying takes long enough (milliseconds or more) to belong on a worker thread. */
  readonly isExpensive: (payload: string) => boolean;
  readonly verify: (raw: Buffer, candidate: Buffer, context: VerifyContext) => SchemeOutcome;
}
