// The scheduler across replicas: two postern instances (own Db pools, own Redis clients) race
// for the lock and the sync runs once per interval; settings changes apply without a restart;
// the lock is renewed while a run lasts and taken over when its owner dies.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { keys } from '../src/cache/keys.js';
import { createRedis } from '../src/cache/redis.js';
import { type SyncScheduler, startSyncScheduler } from '../src/cron/keycloak-sync.js';
import type { Deps } from '../src/deps.js';
import { listSyncRuns } from '../src/storage/sync-runs.js';
import { insertMailboxTemplate } from '../src/storage/templates.js';
import type { RunSyncResult } from '../src/sync/run-sync.js';
import { acquireSyncLock } from '../src/sync/sync-lock.js';
import { REDIS_URL } from './support/env.js';
import { generatedDirectory, type SyncTestEnv, startSyncEnv } from './support/fake-keycloak.js';
import { seedDomain } from './support/seed.js';

let env: SyncTestEnv;
let replica: Deps;
const schedulers: SyncScheduler[] = [];
// Never fires during a test: ticks are driven by hand unless a test says otherwise.
const NEVER = '0 0 1 1 *';

function scheduler(deps: Deps, options: { cronExpression?: string; lockTtlMs?: number } = {}) {
  const started = startSyncScheduler(deps, {
    cronExpression: options.cronExpression ?? NEVER,
    ...(options.lockTtlMs ? { lockTtlMs: options.lockTtlMs } : {}),
    runOptions: { cronLogKey: env.cronLogKey },
  });
  schedulers.push(started);
  return started;
}

async function runs() {
  return (await listSyncRuns(env.deps.db, 100)).filter((run) => !run.dryRun);
}

/** Pretend the last finished run ended `minutes` ago. */
async function ageLastRun(minutes: number) {
  await env.deps.db.execute(
    'UPDATE postern_sync_runs SET finished_at = DATE_SUB(CURRENT_TIMESTAMP(3), INTERVAL ? SECOND) WHERE finished_at IS NOT NULL',
    [minutes * 60],
  );
}

const states = (results: (RunSyncResult | undefined)[]) => results.map((result) => result?.state).sort();

beforeAll(async () => {
  env = await startSyncEnv('sync_sched');
  replica = await env.replica();
  await seedDomain(env.deps.db, 'sched.example');
  await insertMailboxTemplate(env.deps.db, 'Standard', { quota: 1024 ** 3, active: 1 });
  env.kc.setUsers(
    generatedDirectory(250, (i) => ({
      username: `u${String(i).padStart(4, '0')}`,
      email: `u${i}@sched.example`,
      emailVerified: true,
      attributes: { mailcow_template: ['standard'] },
    })),
  );
});

beforeEach(async () => {
  await env.deps.db.execute('DELETE FROM postern_sync_runs');
  await env.deps.db.execute("DELETE FROM mailbox WHERE domain = 'sched.example'");
  await env.saveSettings({ mappers: ['standard'], templates: ['Standard'], sync_interval: 15 });
});

afterEach(async () => {
  await Promise.all(schedulers.splice(0).map((s) => s.stop()));
});

afterAll(async () => {
  await env?.destroy();
});

describe('sync scheduler', () => {
  it('runs the sync exactly once per interval when two replicas tick together', async () => {
    const a = scheduler(env.deps);
    const b = scheduler(replica);
    const results: (RunSyncResult | undefined)[] = [];
    for (let round = 0; round < 5; round++) results.push(...(await Promise.all([a.tick(), b.tick()])));
    expect(results.filter((result) => result?.state === 'ran')).toHaveLength(1);
    expect(results.every((result) => result && ['ran', 'busy', 'not_due'].includes(result.state))).toBe(true);
    const recorded = await runs();
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({
      status: 'succeeded',
      triggeredBy: 'cron',
      counts: expect.objectContaining({ created: 250 }),
    });
    // One summarised audit row for the run, by the scheduler.
    const audit = await env.deps.db.many<{ actor: string; actor_kind: string; outcome: string; detail: unknown }>(
      "SELECT actor, actor_kind, outcome, detail FROM postern_audit WHERE action = 'sync.run' AND target = ?",
      [`sync_run:${recorded[0]?.id}`],
    );
    expect(
      audit.map((row) => ({ ...row, detail: typeof row.detail === 'string' ? JSON.parse(row.detail) : row.detail })),
    ).toEqual([
      {
        actor: 'scheduler',
        actor_kind: 'system',
        outcome: 'success',
        detail: expect.objectContaining({
          status: 'succeeded',
          counts: expect.objectContaining({ created: 250 }),
          errors: 0,
        }),
      },
    ]);
  });

  it('runs again once sync_interval minutes have passed, on whichever replica ticks first', async () => {
    const a = scheduler(env.deps);
    const b = scheduler(replica);
    expect((await a.tick())?.state).toBe('ran');
    // Ticking together, one replica sees the lock taken ('busy'), the other not_due: no run.
    expect(states(await Promise.all([a.tick(), b.tick()]))).not.toContain('ran');
    expect((await b.tick())?.state).toBe('not_due');
    await ageLastRun(16);
    expect(states(await Promise.all([a.tick(), b.tick()]))).toEqual(expect.arrayContaining(['ran']));
    expect(await runs()).toHaveLength(2);
  });

  it('is driven by node-cron: two replicas ticking every second for 3 s sync once', async () => {
    scheduler(env.deps, { cronExpression: '* * * * * *' });
    scheduler(replica, { cronExpression: '* * * * * *' });
    await new Promise((resolve) => setTimeout(resolve, 3_300));
    expect(await runs()).toHaveLength(1);
  });

  it('picks up settings changes without a restart', async () => {
    const a = scheduler(env.deps);
    expect((await a.tick())?.state).toBe('ran');
    await ageLastRun(2);
    expect((await a.tick())?.state).toBe('not_due');
    await env.saveSettings({ mappers: ['standard'], templates: ['Standard'], sync_interval: 1 });
    expect((await a.tick())?.state).toBe('ran');
    await env.saveSettings({ periodic_sync: false, import_users: false });
    await ageLastRun(20);
    expect(await a.tick()).toEqual({ state: 'disabled', reason: 'periodic_sync and import_users are both off' });
  });

  it('renews the lock while a run outlasts its TTL, so the other replica stays out', async () => {
    const a = scheduler(env.deps, { lockTtlMs: 300 });
    const b = scheduler(replica, { lockTtlMs: 300 });
    // Three slow pages: the run takes about 3 x 400 ms, four lock TTLs.
    env.kc.injectFaults(...Array.from({ length: 3 }, () => ({ endpoint: 'users' as const, delayMs: 400 })));
    const running = a.tick();
    const others: (RunSyncResult | undefined)[] = [];
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      others.push(await b.tick());
    }
    expect((await running)?.state).toBe('ran');
    expect(others.map((result) => result?.state)).toEqual(expect.arrayContaining(['busy']));
    expect(others.some((result) => result?.state === 'ran')).toBe(false);
    expect((await runs())[0]?.status).toBe('succeeded');
  });

  it('takes the lock over when its owner died, and closes the dead run', async () => {
    // A replica that took the lock (short TTL), started a run and died: its connection is gone.
    const doomed = createRedis(REDIS_URL);
    await new Promise((resolve) => doomed.once('ready', resolve));
    const lockKey = keys.syncLock({ prefix: env.config.redisPrefix });
    const lock = await acquireSyncLock(doomed, lockKey, { ttlMs: 500 });
    expect(lock).toBeDefined();
    await env.deps.db.execute(
      "INSERT INTO postern_sync_runs (status, source, triggered_by) VALUES ('running', 'keycloak', 'cron')",
    );
    doomed.disconnect();

    const b = scheduler(replica);
    expect((await b.tick())?.state).toBe('busy');
    await new Promise((resolve) => setTimeout(resolve, 600));
    const result = await b.tick();
    expect(result?.state).toBe('ran');
    const recorded = await runs();
    expect(recorded.map((run) => run.status)).toEqual(['succeeded', 'failed']);
    expect(recorded[1]?.errors[0]).toContain('abandoned');
    expect(recorded[1]?.finishedAt).toBeNull();
  });

  it('stops a run whose lock was taken over, between pages', async () => {
    const a = scheduler(env.deps, { lockTtlMs: 300 });
    env.kc.injectFaults(...Array.from({ length: 3 }, () => ({ endpoint: 'users' as const, delayMs: 300 })));
    const running = a.tick();
    await new Promise((resolve) => setTimeout(resolve, 150));
    // Another holder overwrites the key (as after an expiry and takeover).
    await env.deps.redis.set(keys.syncLock({ prefix: env.config.redisPrefix }), 'someone-else', 'PX', 5_000);
    const result = await running;
    expect(result?.state).toBe('ran');
    expect(result?.state === 'ran' && result.report).toMatchObject({
      status: 'failed',
      errors: [expect.stringContaining('lock was lost')],
    });
    await env.deps.redis.del(keys.syncLock({ prefix: env.config.redisPrefix }));
  });

  it('stop() aborts a running sync and resolves', async () => {
    const a = scheduler(env.deps);
    env.kc.injectFaults(...Array.from({ length: 3 }, () => ({ endpoint: 'users' as const, delayMs: 300 })));
    const running = a.tick();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await a.stop();
    const result = await running;
    expect(result?.state === 'ran' && result.report.status).toBe('failed');
    expect(await a.tick()).toBeUndefined();
  });
});
