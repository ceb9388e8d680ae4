// Audit retention against the real MariaDB and Redis: old entries go in batches, recent ones
// stay, and a replica that does not hold the lock deletes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropDatabase, MYSQL_ROOT_URL, REDIS_URL, uniqueName } from '../../test/support/env.js';
import { keys } from '../cache/keys.js';
import { createRedis } from '../cache/redis.js';
import { createLogger } from '../log.js';
import { createDb, type Db } from '../storage/db.js';
import { applyMigrations } from '../storage/migrate.js';
import { pruneAudit } from './retention.js';

const name = uniqueName('audit_retention');
const redis = createRedis(REDIS_URL);
let db: Db;
const deps = () => ({
  db,
  redis,
  log: createLogger('silent'),
  config: { redisPrefix: `${name}:`, auditRetentionDays: 180 },
});

beforeAll(async () => {
  db = await createDb({ url: `${MYSQL_ROOT_URL}/${name}`, poolSize: 2, createDatabase: true });
  await applyMigrations(db, createLogger('silent'));
  if (redis.status !== 'ready')
    await new Promise((resolve, reject) => {
      redis.once('ready', resolve);
      redis.once('error', reject);
    });
});

afterAll(async () => {
  await redis.del(keys.auditPruneLock({ prefix: `${name}:` }));
  redis.disconnect();
  await db?.close();
  await dropDatabase(name);
});

async function insertAt(daysAgo: number, target: string) {
  await db.execute(
    "INSERT INTO postern_audit (at, actor, action, target) VALUES (NOW(3) - INTERVAL ? DAY, 'root', 'test.entry', ?)",
    [daysAgo, target],
  );
}

describe('pruneAudit', () => {
  it('deletes entries older than the retention and keeps the rest', async () => {
    await insertAt(400, 'very-old');
    await insertAt(181, 'old');
    await insertAt(179, 'recent');
    await insertAt(0, 'today');
    expect(await pruneAudit(deps())).toBe(2);
    const left = await db.many<{ target: string }>('SELECT target FROM postern_audit ORDER BY id');
    expect(left.map((row) => row.target)).toEqual(['recent', 'today']);
    expect(await pruneAudit(deps())).toBe(0);
  });

  it('does nothing while another replica holds the lock', async () => {
    await insertAt(365, 'old-again');
    const key = keys.auditPruneLock({ prefix: `${name}:` });
    await redis.set(key, 'another-replica', 'PX', 10_000);
    try {
      expect(await pruneAudit(deps())).toBeUndefined();
      expect(await db.many("SELECT id FROM postern_audit WHERE target = 'old-again'")).toHaveLength(1);
    } finally {
      await redis.del(key);
    }
    expect(await pruneAudit(deps())).toBe(1);
  });
});
