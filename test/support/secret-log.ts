// A test postern's logger: everything production would log (debug and up) into a file of its own
// in the run directory, never the console; and the scan of that file and of the postern's audit
// rows when the postern is destroyed.
import { appendFileSync, closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { DestinationStream } from 'pino';
import { createLogger, type Logger } from '../../src/log.js';
import { registeredSecrets, registerSecret, runDir } from './secret-registry.js';
import { type Hit, SecretLeakError, scanAuditRows, scanLogFile } from './secret-scan.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
/** The level test posterns log at: production's info and the debug lines below it. */
export const SCAN_LEVEL = 'debug';

export interface TestLog {
  log: Logger;
  path: string;
  close(): void;
}

/**
 * The logger for the postern of a test named `name`. It logs at `configured` when that is more
 * verbose than SCAN_LEVEL, else at SCAN_LEVEL; `also` (a test's own capture) gets every line too,
 * and so does stdout when TEST_LOG_LEVEL is set (to read the log while debugging a test).
 */
export function createTestLog(name: string, configured: string, also?: DestinationStream): TestLog {
  const path = join(runDir(), `${name}.log`);
  let fd: number | undefined = openSync(path, 'a', 0o600);
  const level = LEVELS.indexOf(configured) < LEVELS.indexOf(SCAN_LEVEL) ? configured : SCAN_LEVEL;
  const toStdout = process.env.TEST_LOG_LEVEL !== undefined;
  const destination: DestinationStream = {
    write(line: string) {
      // Synchronous, so the file is complete when the postern stops and nothing is lost in a crash.
      // A line logged after close() (work that outlived the postern) is appended all the same.
      if (fd === undefined) appendFileSync(path, line);
      else writeSync(fd, line);
      also?.write(line);
      if (toStdout) process.stdout.write(line);
    },
  };
  return {
    log: createLogger(level, destination),
    path,
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

/** Secrets of the postern's configuration (the keys and passwords it was started with). */
export function registerConfigSecrets(env: Record<string, string>): void {
  for (const [variable, value] of Object.entries(env)) {
    if (/KEY|SECRET|TOKEN|PASS(?!_FILE)/.test(variable) && !/_FILE$|SCHEME|BCRYPT|LENGTH/.test(variable)) {
      registerSecret(`configuration ${variable}`, value);
    }
    if (/_URL$/.test(variable)) {
      try {
        const password = new URL(value).password;
        if (password) registerSecret(`password in ${variable}`, decodeURIComponent(password));
      } catch {
        // not a URL: nothing to register
      }
    }
  }
}

/**
 * Scans the postern's log file and the audit rows of its database (call it after the postern
 * stopped and before its database is dropped); throws SecretLeakError naming each hit.
 */
export async function scanTestPostern(input: { name: string; logPath: string; rootUrl: string }): Promise<Hit[]> {
  const started = performance.now();
  const audit = await scanAuditRows(input.rootUrl, input.name);
  const secrets = registeredSecrets();
  const log = scanLogFile(input.logPath, secrets);
  appendFileSync(
    join(runDir(), `scans-${process.pid}.jsonl`),
    `${JSON.stringify({
      name: input.name,
      lines: log.lines,
      rows: audit.rows,
      secrets: secrets.length,
      ms: Math.round(performance.now() - started),
    })}\n`,
  );
  return [...log.hits, ...audit.hits];
}

export function throwOnHits(hits: Hit[], scanned: string): void {
  if (hits.length > 0) throw new SecretLeakError(hits, scanned);
}
