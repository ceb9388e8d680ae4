// The root pino logger. Redaction is the last line of defence: code must not pass secrets
// to the logger in the first place, but if it does, these paths are censored.
import { type Logger, pino } from 'pino';

export type { Logger };

const REDACTED_KEYS = [
  'password',
  'candidate',
  'token',
  'secret',
  'authorization',
  'cookie',
  'client_secret',
  'clientSecret',
  'apiKey',
  'api_key',
  'stored',
  'hash',
];

export const redactPaths = [
  ...REDACTED_KEYS,
  ...REDACTED_KEYS.map((key) => `*.${key}`),
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
];

/**
 * Characters JSON leaves raw that a reader of the raw log must not get raw: DEL and C1 controls
 * (terminal escapes such as CSI 0x9b), format characters (bidi overrides and isolates, zero-width
 * characters, BOM, tags), unpaired surrogates and the line/paragraph separators. C0 controls
 * are escaped by JSON already; the line's own trailing newline is not matched.
 */
const ODD_CHARACTERS = /[\x7f-\x9f\p{Cf}\p{Cs}\u2028\u2029]/gu;

/**
 * Escapes odd characters in a finished JSON line as \uXXXX (surrogate pairs for astral ones).
 * They only ever occur inside JSON strings, where the escape means the same character, so the
 * line parses back to the same values while its bytes show nothing a terminal would act on.
 */
export function escapeOddCharacters(line: string): string {
  ODD_CHARACTERS.lastIndex = 0;
  if (!ODD_CHARACTERS.test(line)) return line;
  return line.replace(ODD_CHARACTERS, (character) => {
    let escaped = '';
    for (let index = 0; index < character.length; index += 1) {
      escaped += `\\u${character.charCodeAt(index).toString(16).padStart(4, '0')}`;
    }
    return escaped;
  });
}

/**
 * Logs go to stdout through an asynchronous writer: while one write is in flight the next lines
 * gather, so under load a batch of lines costs one syscall, and when idle nothing waits.
 * pino flushes it when the process exits.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'postern' },
      redact: { paths: redactPaths, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // One regex test per line; a replacement only on the rare line that needs one.
      hooks: { streamWrite: escapeOddCharacters },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
