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
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
