// A 50,000-user realm synced end to end (settings in MariaDB → scheduler tick → fake Keycloak
// paging → mailboxes), timed. Every 5th user maps to an existing domain (10,000 creates), the
// rest to foreign domains (skipped cheaply): about 10 s on 2 idle cores, and still well under
// two minutes on a busy CI machine. A full 50,000-create import (about 30-35 s on 2 idle cores)
// and the other scenarios are measured by `npm run bench:sync`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSyncScheduler } from '../src/cron/keycloak-sync.js';
import { getSyncRun } from '../src/storage/sync-runs.js';
import { insertMailboxTemplate } from '../src/storage/templates.js';
import { generatedDirectory, type SyncTestEnv, startSyncEnv } from './support/fake-keycloak.js';
import { seedDomain } from './support/seed.js';

const USERS = 50_000;
const CREATED = USERS / 5;
let env: SyncTestEnv;

beforeAll(async () => {
  env = await startSyncEnv('sync_large');
  await seedDomain(env.deps.db, 'big.example');
  await insertMailboxTemplate(env.deps.db, 'Standard', { quota: 1024 ** 3, active: 1, imap_access: 1 });
  await env.saveSettings({ mappers: ['standard'], templates: ['Standard'] });
  env.kc.setUsers(
    generatedDirectory(USERS, (i) => ({
      username: `user${String(i).padStart(6, '0')}`,
      email: i % 5 === 0 ? `user${i}@big.example` : `user${i}@foreign${i % 500}.example`,
      emailVerified: true,
      firstName: 'User',
      lastName: String(i),
      attributes: { mailcow_template: ['standard'] },
    })),
  );
});

afterAll(async () => {
  await env?.destroy();
});

describe('a 50,000-user realm', () => {
  it('syncs within the interval without holding the realm in memory', { timeout: 240_000 }, async () => {
    const scheduler = startSyncScheduler(env.deps, {
      cronExpression: '0 0 1 1 *',
      runOptions: { cronLogKey: env.cronLogKey },
    });
    const heapBefore = process.memoryUsage().heapUsed;
    let peakHeap = heapBefore;
    const sampler = setInterval(() => {
      peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
    }, 100);
    const startedAt = performance.now();
    const result = await scheduler.tick().finally(() => clearInterval(sampler));
    const seconds = (performance.now() - startedAt) / 1000;
    await scheduler.stop();
    console.info(
      `50k realm: first sync ${seconds.toFixed(1)} s (${Math.round(USERS / seconds)} users/s), heap growth ${((peakHeap - heapBefore) / 2 ** 20).toFixed(0)} MB`,
    );

    expect(result?.state).toBe('ran');
    const report = result?.state === 'ran' ? result.report : undefined;
    expect(report).toMatchObject({
      status: 'succeeded',
      counts: { users: USERS, pages: 500, created: CREATED, skipped: USERS - CREATED, failed: 0 },
    });
    // The default interval is 15 min (900 s); the run must fit in it with a wide margin.
    expect(seconds).toBeLessThan(180);
    // 500 full pages and one empty page closing the listing.
    expect(env.kc.counts.users).toBe(501);
    const count = await env.deps.db.one<{ n: number }>(
      "SELECT COUNT(*) AS n FROM mailbox WHERE domain = 'big.example' AND authsource = 'keycloak'",
    );
    expect(Number(count?.n)).toBe(CREATED);

    const run = await getSyncRun(env.deps.db, report?.runId ?? 0);
    expect(run).toMatchObject({
      actionsTruncated: true,
      counts: expect.objectContaining({ actions_total: USERS, actions_stored: 5_000 }),
    });
    expect(run?.actions).toHaveLength(5_000);
    // CRON_LOG gets at most 1,000 per-user lines per run, plus the closing lines.
    expect(await env.deps.redis.llen(env.cronLogKey)).toBeLessThanOrEqual(1_004);
  });

  it('a steady-state re-sync of the same realm takes seconds and changes nothing', { timeout: 60_000 }, async () => {
    const startedAt = performance.now();
    const report = await env.sync();
    const seconds = (performance.now() - startedAt) / 1000;
    console.info(`50k realm: steady-state sync ${seconds.toFixed(1)} s (${Math.round(USERS / seconds)} users/s)`);
    // Only the foreign-domain users are skipped again; no mailbox changes.
    expect(report.counts).toMatchObject({ users: USERS, created: 0, updated: 0, skipped: USERS - CREATED, failed: 0 });
    expect(seconds).toBeLessThan(30);
  });
});
