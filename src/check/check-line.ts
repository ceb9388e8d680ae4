// What `postern check` prints (one line per dependency) and what it is given to check with.
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import type { Db } from '../storage/db.js';

export type CheckStatus = 'ok' | 'fail' | 'skip';

export interface CheckLine {
  name: string;
  status: CheckStatus;
  /** What was found; for a failure, the problem and its fix. */
  detail: string;
}

export interface CheckDeps {
  config: Config;
  /** Opens the pool (without creating the database); its faults are reported, not thrown. */
  openDb(): Promise<Db>;
  /** A client that fails fast; closed by the check. */
  openRedis(): Redis;
  /** How long to wait for Redis to become ready. */
  redisTimeoutMs?: number;
}
