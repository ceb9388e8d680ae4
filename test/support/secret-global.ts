// Global setup of the test run: a run directory for the test posterns' log files and the secrets
// registered by every test file, and at the end one more scan of every log file of the run for
// every secret (a line logged after its postern's own scan is caught here). A hit fails the run.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUN_DIR_VARIABLE, type Secret } from './secret-registry.js';
import { type Hit, SecretLeakError, scanLogFile } from './secret-scan.js';

function readJsonLines<T>(path: string): T[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as T);
}

export function setup(): void {
  const dir = mkdtempSync(join(tmpdir(), 'postern-test-run-'));
  // The test files' processes start after this and inherit it.
  process.env[RUN_DIR_VARIABLE] = dir;
}

export interface RunScan {
  lines: number;
  files: number;
  rows: number;
  instances: number;
  secrets: number;
  /** Milliseconds the test posterns' own scans took, and this one. */
  instanceMs: number;
  ms: number;
  hits: Hit[];
}

/** Scans every log file of a run directory for every secret any test file of the run registered. */
export function scanRunDir(dir: string): RunScan {
  const started = performance.now();
  const files = readdirSync(dir);
  const byValue = new Map<string, Secret>();
  for (const file of files.filter((name) => name.startsWith('secrets-'))) {
    for (const secret of readJsonLines<Secret>(join(dir, file))) byValue.set(secret.value, secret);
  }
  const secrets = [...byValue.values()];
  let rows = 0;
  let instances = 0;
  let instanceMs = 0;
  for (const file of files.filter((name) => name.startsWith('scans-'))) {
    for (const scan of readJsonLines<{ rows: number; ms?: number }>(join(dir, file))) {
      rows += scan.rows;
      instances += 1;
      instanceMs += scan.ms ?? 0;
    }
  }
  const hits: Hit[] = [];
  let lines = 0;
  const logs = files.filter((name) => name.endsWith('.log'));
  for (const file of logs) {
    const scanned = scanLogFile(join(dir, file), secrets);
    lines += scanned.lines;
    hits.push(...scanned.hits);
  }
  const ms = Math.round(performance.now() - started);
  return { lines, files: logs.length, rows, instances, secrets: secrets.length, instanceMs, ms, hits };
}

export function teardown(): void {
  const dir = process.env[RUN_DIR_VARIABLE];
  if (!dir || !existsSync(dir)) return;
  const scan = scanRunDir(dir);
  const summary =
    `secret scan: ${scan.lines} log lines in ${scan.files} files, ${scan.rows} audit rows of ${scan.instances} ` +
    `test posterns, ${scan.secrets} registered secrets (scans took ${scan.instanceMs} ms at destroy, ${scan.ms} ms now)`;
  if (scan.hits.length > 0) {
    console.error(`${summary}: ${scan.hits.length} hits; the logs are kept in ${dir}`);
    // vitest reports an error thrown here but would still exit 0 when every test passed.
    process.exitCode = 1;
    throw new SecretLeakError(scan.hits, 'the whole run');
  }
  console.log(`${summary}: no hit`);
  if (!process.env.POSTERN_TEST_KEEP_LOGS) rmSync(dir, { recursive: true, force: true });
}
