// Splits a stored `{SCHEME.ENCODING}payload` and decodes payloads the way Dovecot 2.3 does
// (src/auth/password-scheme.c, src/lib/base64.c). It knows no scheme; schemes/index.ts does.

export type PayloadEncoding = 'none' | 'base64' | 'hex';
/** `.B64`/`.BASE64`/`.HEX` after a scheme name; any other suffix makes the scheme unknown. */
export type EncodingSuffix = 'base64' | 'hex' | 'unknown';

export type SplitStoredHash =
  | { kind: 'scheme'; schemeName: string; encodingSuffix: EncodingSuffix | undefined; payload: string }
  | { kind: 'no_scheme' }
  | { kind: 'malformed' };

const ASCII_WHITESPACE = '\t\n\v\f\r ';

/** Trims ASCII whitespace only: a stored payload never ends in Unicode spaces, but CSV/SQL imports leave "\r\n". */
export function trimAsciiWhitespace(text: string, ends: 'start' | 'both' = 'both'): string {
  let start = 0;
  let end = text.length;
  while (start < end && ASCII_WHITESPACE.includes(text.charAt(start))) start++;
  if (ends === 'both') {
    while (end > start && ASCII_WHITESPACE.includes(text.charAt(end - 1))) end--;
  }
  return text.slice(start, end);
}

/**
 * Reads the `{SCHEME}` prefix. Like Dovecot, a bare `$1$salt$hash[$ignored]` means MD5-CRYPT
 * (anything after the hash is cut off); any other value without braces has no scheme.
 */
export function splitStoredHash(stored: string): SplitStoredHash {
  if (stored.startsWith('$1$')) {
    const bareMd5Crypt = /^\$1\$[^$]*\$[^$]*/.exec(stored);
    if (bareMd5Crypt !== null) {
      return { kind: 'scheme', schemeName: 'MD5-CRYPT', encodingSuffix: undefined, payload: bareMd5Crypt[0] };
    }
  }
  if (!stored.startsWith('{')) return { kind: 'no_scheme' };
  const close = stored.indexOf('}');
  if (close <= 1) return { kind: 'malformed' };
  const label = stored.slice(1, close);
  const dot = label.indexOf('.');
  const schemeName = (dot === -1 ? label : label.slice(0, dot)).toUpperCase();
  return {
    kind: 'scheme',
    schemeName,
    encodingSuffix: dot === -1 ? undefined : readEncodingSuffix(label.slice(dot + 1)),
    payload: stored.slice(close + 1),
  };
}

function readEncodingSuffix(suffix: string): EncodingSuffix {
  const lower = suffix.toLowerCase();
  if (lower === 'b64' || lower === 'base64') return 'base64';
  if (lower === 'hex') return 'hex';
  return 'unknown';
}

/**
 * Decodes a payload into the raw bytes a scheme verifies. Without an explicit suffix, Dovecot
 * guesses for fixed-length digests: exactly twice the raw length in characters means hex,
 * anything else (or hex that fails to parse) means base64. Returns undefined when invalid.
 */
export function decodePayload(
  payload: string,
  encoding: PayloadEncoding,
  options: { rawLength?: number | undefined; isEncodingExplicit: boolean },
): Buffer | undefined {
  const { rawLength, isEncodingExplicit } = options;
  let decoded: Buffer | undefined;
  if (encoding !== 'none' && rawLength !== undefined && !isEncodingExplicit) {
    decoded = payload.length === rawLength * 2 ? decodeHex(payload) : undefined;
    decoded ??= decodeBase64(payload);
  } else if (encoding === 'hex') {
    decoded = decodeHex(payload);
  } else if (encoding === 'base64') {
    decoded = decodeBase64(payload);
  } else {
    // Dovecot hands the C string's bytes to the verifier; UTF-8 is what a JS string stands for.
    decoded = Buffer.from(payload, 'utf8');
  }
  if (decoded === undefined || (rawLength !== undefined && decoded.length !== rawLength)) return undefined;
  return decoded;
}

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

function decodeHex(text: string): Buffer | undefined {
  return HEX.test(text) ? Buffer.from(text, 'hex') : undefined;
}

const BASE64_PADDED = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Dovecot's base64: standard alphabet, padding required, CR/LF/space/tab ignored anywhere.
 * Node's own decoder silently skips invalid characters, so the shape is checked first.
 */
export function decodeBase64(text: string): Buffer | undefined {
  const compact = text.replace(/[\t\n\r ]/g, '');
  return BASE64_PADDED.test(compact) ? Buffer.from(compact, 'base64') : undefined;
}
