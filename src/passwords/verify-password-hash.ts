// Password hash verification for every stored `{SCHEME}…` value Dovecot 2.3 accepts from a passdb.
// Verdicts are values and it never throws; it does not pick threads (hash-pool.ts does) nor log.
import { type BcryptImpl, type SchemeDefinition, schemesByName } from './schemes/index.js';
import { decodePayload, splitStoredHash, trimAsciiWhitespace } from './stored-hash.js';

export type HashVerdict =
  | { ok: true; scheme: string }
  | {
      ok: false;
      reason: 'mismatch' | 'unsupported_scheme' | 'malformed_hash' | 'scheme_disabled' | 'empty_hash';
      scheme?: string;
    };

export interface VerifyOptions {
  /** PLAIN, CLEAR, CLEARTEXT and PLAIN-TRUNC are refused (scheme_disabled) unless this is true. */
  allowPlaintext: boolean;
  /** Which bcrypt library runs BLF-CRYPT; the benchmark compares them. Defaults to 'native'. */
  bcryptImpl?: BcryptImpl;
}

type ResolvedScheme =
  | {
      kind: 'resolved';
      scheme: string;
      definition: SchemeDefinition;
      encodingSuffix: 'base64' | 'hex' | undefined;
      payload: string;
    }
  | { kind: 'verdict'; verdict: HashVerdict & { ok: false } };

/**
 * Whitespace policy: values imported from CSV or SQL dumps often carry a trailing "\r\n" or
 * spaces, which no hash format contains, so they are trimmed (Dovecot would report a mismatch
 * for crypt strings). Cleartext payloads are the one exception: a password may end in a space.
 */
function resolveScheme(stored: string): ResolvedScheme {
  const value = trimAsciiWhitespace(stored, 'start');
  if (value === '') return { kind: 'verdict', verdict: { ok: false, reason: 'empty_hash' } };
  const split = splitStoredHash(value);
  if (split.kind === 'malformed') return { kind: 'verdict', verdict: { ok: false, reason: 'malformed_hash' } };
  // Dovecot would fall back to the passdb's default_pass_scheme; postern has none, like mailcow.
  if (split.kind === 'no_scheme') return { kind: 'verdict', verdict: { ok: false, reason: 'unsupported_scheme' } };
  const { schemeName: scheme, encodingSuffix } = split;
  const definition = schemesByName.get(scheme);
  if (definition === undefined || encodingSuffix === 'unknown') {
    return { kind: 'verdict', verdict: { ok: false, reason: 'unsupported_scheme', scheme } };
  }
  const payload = definition.isPlaintext ? split.payload : trimAsciiWhitespace(split.payload);
  if (payload === '') return { kind: 'verdict', verdict: { ok: false, reason: 'empty_hash', scheme } };
  return { kind: 'resolved', scheme, definition, encodingSuffix, payload };
}

/**
 * Checks `candidate` against a stored `{SCHEME}…` value (or Dovecot's bare `$1$…` MD5-CRYPT).
 * The candidate's UTF-8 bytes are used as they are: no trimming, no Unicode normalisation.
 * Expensive schemes run synchronously on the calling thread: call it from the hash pool's
 * workers, or through createHashPool().verify, never directly from a request handler.
 */
export async function verifyPasswordHash(
  stored: string,
  candidate: string,
  options: VerifyOptions,
): Promise<HashVerdict> {
  if (typeof stored !== 'string') return { ok: false, reason: 'malformed_hash' };
  if (typeof candidate !== 'string') return { ok: false, reason: 'mismatch' };
  const resolved = resolveScheme(stored);
  if (resolved.kind === 'verdict') return resolved.verdict;
  const { scheme, definition, encodingSuffix, payload } = resolved;
  if (definition.isPlaintext && !options.allowPlaintext) return { ok: false, reason: 'scheme_disabled', scheme };

  const raw = decodePayload(payload, encodingSuffix ?? definition.defaultEncoding, {
    rawLength: definition.rawLength,
    isEncodingExplicit: encodingSuffix !== undefined,
  });
  if (raw === undefined) return { ok: false, reason: 'malformed_hash', scheme };
  try {
    const outcome = definition.verify(raw, Buffer.from(candidate, 'utf8'), {
      bcryptImpl: options.bcryptImpl ?? 'native',
    });
    if (outcome === 'match') return { ok: true, scheme };
    if (outcome === 'mismatch') return { ok: false, reason: 'mismatch', scheme };
    return { ok: false, reason: outcome === 'malformed' ? 'malformed_hash' : 'unsupported_scheme', scheme };
  } catch {
    // The libraries validate their own formats by throwing; whatever got past our parsers is
    // still a property of the stored value, not a fault to retry.
    return { ok: false, reason: 'malformed_hash', scheme };
  }
}

/** True when verifying `stored` costs milliseconds or more, so it should leave the event loop. */
export function isExpensiveScheme(stored: string): boolean {
  if (typeof stored !== 'string') return false;
  const resolved = resolveScheme(stored);
  return resolved.kind === 'resolved' && resolved.definition.isExpensive(resolved.payload);
}
