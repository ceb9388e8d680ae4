// Cleartext schemes PLAIN, CLEAR, CLEARTEXT and PLAIN-TRUNC. Whether they may be used at all is
// decided by the caller (allowPlaintext); here only the comparison, byte for byte like Dovecot.
import { isEqualConstantTime } from './bytes.js';
import type { SchemeOutcome } from './types.js';

export function verifyPlain(raw: Buffer, candidate: Buffer): SchemeOutcome {
  return isEqualConstantTime(candidate, raw) ? 'match' : 'mismatch';
}

const TRUNC_PREFIX = /^(\d{0,9})-/;

/**
 * `<length>-<password>`: a password stored truncated to <length> bytes accepts any candidate
 * that starts with it (as Dovecot does); otherwise the full value must match. Without the
 * length prefix Dovecot refuses the entry, even though `doveadm pw -s PLAIN-TRUNC` writes one.
 * An empty stored password is refused here: Dovecot would let `{PLAIN-TRUNC}0-` accept anything.
 */
export function verifyPlainTrunc(raw: Buffer, candidate: Buffer): SchemeOutcome {
  const prefix = TRUNC_PREFIX.exec(raw.toString('latin1'));
  if (prefix === null) return 'malformed';
  const [text, lengthText = ''] = prefix;
  const truncatedLength = Number(lengthText);
  const stored = raw.subarray(text.length);
  if (stored.length === 0) return 'malformed';
  if (truncatedLength > 0 && stored.length === truncatedLength && candidate.length >= truncatedLength) {
    return isEqualConstantTime(candidate.subarray(0, truncatedLength), stored) ? 'match' : 'mismatch';
  }
  return isEqualConstantTime(candidate, stored) ? 'match' : 'mismatch';
}
