// Every secret a test hands to postern or gets from it, by kind, so the log and audit scan
// (secret-scan.ts) can look for each one. Registrations are also appended to a file of the run
// directory, so the run's final scan (secret-global.ts) knows the secrets of every test file.
import { appendFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Set by the global setup for the whole run; a file run some other way gets a directory of its own. */
export const RUN_DIR_VARIABLE = 'POSTERN_TEST_RUN_DIR';

export function runDir(): string {
  let dir = process.env[RUN_DIR_VARIABLE];
  if (!dir) {
    dir = join(tmpdir(), `postern-test-run-${process.pid}`);
    process.env[RUN_DIR_VARIABLE] = dir;
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export interface Secret {
  kind: string;
  value: string;
  /** Matched only where no letter or digit touches it (a six-digit code inside a longer number is no hit). */
  bounded?: boolean;
}

const secrets = new Map<string, Secret>();
let secretsFile: string | undefined;

/**
 * Shorter values are not scanned for: a test's `x` or `wrong` password would match ordinary log
 * text. Six-digit codes are the exception, matched only as whole numbers.
 */
export const MIN_SECRET_LENGTH = 8;

/** Words too common to scan for even when long enough (they name things in log lines). */
const ORDINARY = /^[a-z]+$/;
/** What stands in for a secret (pino's censor, a masked field): no secret itself. */
const PLACEHOLDER = /^\[[a-z ]+\]$|^(.)\1*$/;

export function registerSecret(kind: string, value: unknown, options: { bounded?: boolean } = {}): void {
  if (typeof value !== 'string') return;
  if (secrets.has(value)) return;
  if (options.bounded ? !/^\d{6,}$/.test(value) : value.length < MIN_SECRET_LENGTH) return;
  if (!options.bounded && ORDINARY.test(value) && value.length < 16) return;
  if (PLACEHOLDER.test(value)) return;
  const secret: Secret = { kind, value, ...(options.bounded ? { bounded: true } : {}) };
  secrets.set(value, secret);
  secretsFile ??= join(runDir(), `secrets-${process.pid}.jsonl`);
  appendFileSync(secretsFile, `${JSON.stringify(secret)}\n`, { mode: 0o600 });
}

export function registeredSecrets(): Secret[] {
  return [...secrets.values()];
}

/** The secret's kind and length and its first two characters: enough to find it, not to use it. */
export function maskSecret(value: string): string {
  return `${value.slice(0, 2)}… (${value.length} characters)`;
}
