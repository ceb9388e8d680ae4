// Real services for integration tests: a database and a Redis key prefix of the test's own,
// and a postern started in-process on free ports. A service that is down fails the test.
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import type { DestinationStream } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { type RunningPostern, startPostern } from '../../src/server.js';
import { watchHashPool } from './secret-hooks.js';
import { createTestLog, registerConfigSecrets, scanTestPostern, throwOnHits } from './secret-log.js';
import type { Hit } from './secret-scan.js';

export const MYSQL_ROOT_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A unique name for this test's database and Redis prefix. */
export function uniqueName(label: string): string {
  return `postern_test_${label}_${randomBytes(4).toString('hex')}`;
}

export async function dropDatabase(name: string): Promise<void> {
  const url = new URL(MYSQL_ROOT_URL);
  const conn = await mysql.createConnection({ host: url.hostname, port: Number(url.port || 3306), user: 'root' });
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
  } finally {
    await conn.end();
  }
}

/**
 * Scans a stopped test postern's log file and audit rows for secrets, drops its database, and
 * then throws if the scan found one.
 */
export async function scanThenDrop(name: string, logPath: string): Promise<void> {
  let hits: Hit[];
  try {
    hits = await scanTestPostern({ name, logPath, rootUrl: MYSQL_ROOT_URL });
  } finally {
    await dropDatabase(name);
  }
  throwOnHits(hits, name);
}

/** Config for a test: development defaults, a private database and Redis prefix, free ports. */
export function testConfig(name: string, overrides: Record<string, string> = {}, via: Via = {}): Config {
  const mysqlUrl = new URL(MYSQL_ROOT_URL);
  if (via.mysqlPort) mysqlUrl.port = String(via.mysqlPort);
  const redisUrl = new URL(REDIS_URL);
  if (via.redisPort) redisUrl.port = String(via.redisPort);
  const env = {
    POSTERN_DB_URL: `mysql://${mysqlUrl.username || 'root'}@${mysqlUrl.host}/${name}`,
    POSTERN_REDIS_URL: redisUrl.toString(),
    POSTERN_REDIS_PREFIX: `${name}:`,
    POSTERN_INTERNAL_LISTEN: '127.0.0.1:0',
    POSTERN_WEB_LISTEN: '127.0.0.1:0',
    // A postern started by startTestPostern logs to a file whatever this says (see secret-log.ts).
    POSTERN_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    POSTERN_HASH_THREADS: '2',
    ...overrides,
  };
  registerConfigSecrets(env);
  return loadConfig(env);
}

/** Reach MySQL or Redis through another port (a TcpProxy in front of the real service). */
export interface Via {
  mysqlPort?: number;
  redisPort?: number;
}

export interface TestPostern extends RunningPostern {
  name: string;
  /** POST a passdb request; returns status and parsed body. */
  passdb(body: unknown, headers?: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Its log file (every line at debug level and up), scanned for secrets by destroy(). */
  logPath: string;
  /**
   * Stop postern, scan its log file and audit rows for the registered secrets, drop its database;
   * throws when the scan found one (secret-scan.ts).
   */
  destroy(): Promise<void>;
}

export async function startTestPostern(
  label: string,
  overrides: Record<string, string> = {},
  via: Via = {},
  logDestination?: DestinationStream,
): Promise<TestPostern> {
  const name = uniqueName(label);
  const config = testConfig(name, overrides, via);
  const testLog = createTestLog(name, config.logLevel, logDestination);
  const running = await startPostern(config, testLog.log);
  watchHashPool(running.deps.hashPool);
  return {
    ...running,
    name,
    logPath: testLog.path,
    async passdb(body, headers = {}) {
      const response = await fetch(`${running.internalUrl}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await response.text();
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(text) as Record<string, unknown>;
      } catch {
        parsed = { raw: text };
      }
      return { status: response.status, body: parsed };
    },
    async destroy() {
      await running.stop();
      testLog.close();
      await scanThenDrop(name, testLog.path);
    },
  };
}
