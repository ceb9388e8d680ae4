// applySync against real MariaDB and Redis, with the fake Keycloak as the directory: dry runs,
// creates and updates, deprovisioning with reactivation (and app passwords stopping meanwhile),
// safety refusals, the run log in postern_sync_runs and mailcow's CRON_LOG.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseAttributes } from '../src/storage/mailboxes.js';
import { getSyncRun } from '../src/storage/sync-runs.js';
import { insertMailboxTemplate } from '../src/storage/templates.js';
import { CRON_LOG_KEY, type CronLogEntry } from '../src/sync/cron-log.js';
import { runSync } from '../src/sync/run-sync.js';
import type { FakeKeycloakUser } from './support/fake-keycloak.js';
import { type InternalServer, type SyncTestEnv, startSyncEnv } from './support/fake-keycloak.js';
import { seedAppPassword, seedDomain, seedMailbox } from './support/seed.js';

let env: SyncTestEnv;
let internal: InternalServer;
// A domain of this suite's own, so its lines in the shared CRON_LOG are recognisable.
let domain: string;

const kcUser = (local: string, extra: Partial<FakeKeycloakUser> = {}): FakeKeycloakUser => ({
  username: local,
  email: `${local}@${domain}`,
  emailVerified: true,
  firstName: local[0]?.toUpperCase() + local.slice(1),
  lastName: 'Doe',
  attributes: { mailcow_template: ['premium'] },
  ...extra,
});

async function mailboxRow(username: string) {
  return env.deps.db.one<{
    username: string;
    name: string;
    active: number;
    quota: number;
    authsource: string;
    attributes: unknown;
  }>('SELECT username, name, active, quota, authsource, attributes FROM mailbox WHERE username = ?', [username]);
}

async function snapshot() {
  return env.deps.db.many(
    'SELECT username, name, active, quota, authsource, attributes, modified FROM mailbox ORDER BY username',
  );
}

async function cronLog(key = env.cronLogKey): Promise<CronLogEntry[]> {
  return (await env.deps.redis.lrange(key, 0, -1)).map((entry) => JSON.parse(entry) as CronLogEntry);
}

const passdb = (username: string, password: string) =>
  internal.passdb({ username, password, real_rip: '203.0.113.9', service: 'imap' });

beforeAll(async () => {
  env = await startSyncEnv('sync_apply');
  domain = `${env.name.replace(/_/g, '-')}.example`;
  const { db } = env.deps;
  await seedDomain(db, domain);
  await seedDomain(db, `sleepy-${domain}`, { active: 0 });
  await insertMailboxTemplate(db, 'Premium', {
    quota: 10 * 1024 ** 3,
    active: 1,
    imap_access: 1,
    pop3_access: 0,
    smtp_access: 1,
  });
  await insertMailboxTemplate(db, 'Basic', {
    quota: 1024 ** 3,
    active: 1,
    imap_access: 1,
    pop3_access: 1,
    smtp_access: 1,
  });
  await env.saveSettings({ mappers: ['premium', 'basic'], templates: ['Premium', 'Basic'], default_template: 'Basic' });
  internal = await env.serveInternal();
});

afterAll(async () => {
  await internal?.close();
  await env?.destroy();
});

beforeEach(async () => {
  await env.deps.redis.del(env.cronLogKey);
});

describe('applySync: import and periodic sync', () => {
  beforeAll(() => {
    env.kc.setUsers([
      kcUser('alice'),
      kcUser('bob', { attributes: {} }),
      kcUser('carol', { email: `carol@unknown-${domain}` }),
      kcUser('dave', { email: `dave@sleepy-${domain}` }),
      kcUser('erin', { email: undefined }),
      kcUser('frank', { enabled: false }),
    ]);
  });

  it('a dry run reports the plan and changes no mailbox', async () => {
    const before = await snapshot();
    const report = await env.sync({ dryRun: true });
    expect(report).toMatchObject({ status: 'succeeded', dryRun: true, counts: { users: 6, created: 2, skipped: 4 } });
    expect(await snapshot()).toEqual(before);
    const run = await getSyncRun(env.deps.db, report.runId);
    expect(run).toMatchObject({ status: 'succeeded', dryRun: true, triggeredBy: 'test' });
    expect(run?.actions).toContainEqual(
      expect.objectContaining({ type: 'create', email: `alice@${domain}`, template: 'Premium', outcome: 'planned' }),
    );
    expect((await cronLog()).map((entry) => entry.message)).toContain(`[dry run] Creating user alice@${domain}`);
  });

  it('creates mailboxes from the mapped or default template and skips the rest with reasons', async () => {
    const report = await env.sync();
    expect(report).toMatchObject({ status: 'succeeded', dryRun: false, counts: { created: 2, skipped: 4, failed: 0 } });
    const alice = await mailboxRow(`alice@${domain}`);
    expect(alice).toMatchObject({ name: 'Alice Doe', active: 1, quota: 10 * 1024 ** 3, authsource: 'keycloak' });
    expect(parseAttributes(alice?.attributes)).toMatchObject({ pop3_access: '0', attribute_hash: expect.any(String) });
    expect(await mailboxRow(`bob@${domain}`)).toMatchObject({ quota: 1024 ** 3 });
    expect(await mailboxRow(`carol@unknown-${domain}`)).toBeUndefined();

    const run = await getSyncRun(env.deps.db, report.runId);
    expect(run).toMatchObject({ status: 'succeeded', dryRun: false, actionsTruncated: false });
    expect(run?.finishedAt).toBeInstanceOf(Date);
    expect(run?.counts).toMatchObject({ users: 6, created: 2, skipped: 4, actions_total: 6 });
    expect(run?.actions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'skip', email: `carol@unknown-${domain}`, why: 'unknown_domain' }),
        expect.objectContaining({ type: 'skip', email: `dave@sleepy-${domain}`, why: 'inactive_domain' }),
        expect.objectContaining({ type: 'skip', username: 'erin', why: 'no_email' }),
        expect.objectContaining({ type: 'skip', email: `frank@${domain}`, why: 'disabled_upstream' }),
      ]),
    );
  });

  it('is idempotent: a second run changes nothing', async () => {
    const before = await snapshot();
    const report = await env.sync();
    expect(report.counts).toMatchObject({ created: 0, updated: 0 });
    expect(await snapshot()).toEqual(before);
  });

  it('follows a changed template attribute and a changed name', async () => {
    env.kc.setUsers([
      kcUser('alice', { attributes: { mailcow_template: ['basic'] } }),
      kcUser('bob', { lastName: 'Married', attributes: { mailcow_template: ['basic'] } }),
    ]);
    const report = await env.sync();
    expect(report.counts).toMatchObject({ updated: 2 });
    expect(await mailboxRow(`alice@${domain}`)).toMatchObject({ quota: 1024 ** 3 });
    expect(await mailboxRow(`bob@${domain}`)).toMatchObject({ name: 'Bob Married' });
    expect((await cronLog()).map((entry) => entry.message)).toContain(`Syncing attributes for user alice@${domain}`);
  });

  it("writes CRON_LOG entries in mailcow's format to the key mailcow reads", async () => {
    // The one run that uses mailcow's real key; exactly its lines are removed again afterwards.
    env.kc.setUsers([kcUser('zed', { email: `zed@unknown-${domain}` })]);
    const lengthBefore = await env.deps.redis.llen(CRON_LOG_KEY);
    const result = await runSync(env.deps, { triggeredBy: 'test', dryRun: true });
    expect(result.state).toBe('ran');
    const added = await env.deps.redis.lrange(
      CRON_LOG_KEY,
      0,
      (await env.deps.redis.llen(CRON_LOG_KEY)) - lengthBefore - 1,
    );
    try {
      const entries = added.map((line) => JSON.parse(line) as CronLogEntry);
      for (const line of added) expect(Object.keys(JSON.parse(line))).toEqual(['time', 'priority', 'task', 'message']);
      for (const entry of entries) {
        expect(entry.task).toBe('Keycloak Sync');
        expect(Number.isInteger(entry.time)).toBe(true);
        expect(Math.abs(entry.time - Date.now() / 1000)).toBeLessThan(60);
      }
      // LPUSH puts the newest first: the run's last line, DONE!, heads the list.
      expect(entries.map((entry) => [entry.priority, entry.message])).toEqual([
        ['info', '[dry run] DONE!'],
        ['info', '[dry run] Synced 1 users: 0 created, 0 updated, 0 deactivated, 0 reactivated, 1 skipped, 0 failed'],
        ['warning', `[dry run] Skipping user zed@unknown-${domain} (unknown domain)`],
      ]);
    } finally {
      for (const line of added) await env.deps.redis.lrem(CRON_LOG_KEY, 1, line);
    }
  });
});

describe('applySync: deprovisioning', () => {
  const staff = ['gina', 'hank', 'ivan', 'judy', 'karl', 'lena', 'mona', 'nick', 'olga', 'paul'];

  beforeAll(async () => {
    env.kc.setUsers(staff.map((local) => kcUser(local)));
    await env.saveSettings({
      mappers: ['premium', 'basic'],
      templates: ['Premium', 'Basic'],
      default_template: 'Basic',
      postern_deprovision: true,
      postern_max_drop_percent: 25,
    });
    // Earlier suites' users are gone from the listing now; keep them out of the drop arithmetic.
    await env.deps.db.execute("UPDATE mailbox SET authsource = 'mailcow' WHERE username IN (?, ?)", [
      `alice@${domain}`,
      `bob@${domain}`,
    ]);
    await env.sync();
    await seedAppPassword(env.deps.db, {
      mailbox: `gina@${domain}`,
      passwordHash: await env.deps.hashPool.hash('gina app password', 'SSHA256'),
      protocols: ['imap_access'],
    });
  });

  it('deactivates the mailbox of a disabled user, and its app passwords stop working', async () => {
    expect(await passdb(`gina@${domain}`, 'gina app password')).toMatchObject({ status: 200 });
    env.kc.setUsers(staff.map((local) => kcUser(local, local === 'gina' ? { enabled: false } : {})));
    const report = await env.sync();
    expect(report.counts).toMatchObject({ deactivated: 1 });
    const gina = await mailboxRow(`gina@${domain}`);
    expect(gina?.active).toBe(0);
    expect(parseAttributes(gina?.attributes)).toMatchObject({ postern_deprovisioned: '1' });
    expect(await passdb(`gina@${domain}`, 'gina app password')).toMatchObject({
      status: 401,
      body: { success: false, result: 'user_disabled' },
    });
    expect((await cronLog()).map((entry) => entry.message)).toContain(
      `Deactivating user gina@${domain} (disabled in Keycloak)`,
    );
  });

  it('reactivates it when the user is enabled again, and the app password works again', async () => {
    env.kc.setUsers(staff.map((local) => kcUser(local)));
    const report = await env.sync();
    expect(report.counts).toMatchObject({ reactivated: 1, deactivated: 0 });
    const gina = await mailboxRow(`gina@${domain}`);
    expect(gina?.active).toBe(1);
    expect(parseAttributes(gina?.attributes)).not.toHaveProperty('postern_deprovisioned');
    expect(await passdb(`gina@${domain}`, 'gina app password')).toMatchObject({ status: 200 });
  });

  it('deactivates the mailbox of a user deleted from Keycloak, and never deletes it', async () => {
    env.kc.setUsers(staff.filter((local) => local !== 'hank').map((local) => kcUser(local)));
    const report = await env.sync();
    expect(report.counts).toMatchObject({ deactivated: 1 });
    expect(await mailboxRow(`hank@${domain}`)).toMatchObject({ active: 0 });
  });

  it('never reactivates a mailbox an admin deactivated', async () => {
    await env.deps.db.execute('UPDATE mailbox SET active = 0 WHERE username = ?', [`ivan@${domain}`]);
    env.kc.setUsers(staff.map((local) => kcUser(local)));
    const report = await env.sync();
    expect(report.counts).toMatchObject({ reactivated: 1 }); // hank, who came back
    expect(await mailboxRow(`ivan@${domain}`)).toMatchObject({ active: 0 });
    expect(await mailboxRow(`hank@${domain}`)).toMatchObject({ active: 1 });
    await env.deps.db.execute('UPDATE mailbox SET active = 1 WHERE username = ?', [`ivan@${domain}`]);
  });

  it('refuses a suspicious drop and applies nothing, not even creates', async () => {
    const before = await snapshot();
    // 3 of 10 gone (30% > 25%), plus a newcomer who would be created.
    env.kc.setUsers([...staff.slice(3), 'quinn'].map((local) => kcUser(local)));
    const report = await env.sync();
    expect(report).toMatchObject({ status: 'failed', refused: expect.stringContaining('3 of 10') });
    expect(report.counts).toMatchObject({ created: 0, deactivated: 0 });
    expect(await snapshot()).toEqual(before);
    const run = await getSyncRun(env.deps.db, report.runId);
    expect(run?.status).toBe('failed');
    expect(run?.errors[0]).toContain('refused');
    const log = await cronLog();
    expect(log.filter((entry) => entry.priority === 'err').map((entry) => entry.message)).toEqual([
      expect.stringContaining('Sync refused, nothing applied: 3 of 10'),
    ]);
    expect(log[0]).toMatchObject({ priority: 'info', message: 'DONE!' });
  });

  it('refuses an empty listing', async () => {
    env.kc.setUsers([]);
    const report = await env.sync();
    expect(report).toMatchObject({ status: 'failed', refused: expect.stringContaining('listed no users') });
  });

  it('a dry run shows the refusal too', async () => {
    env.kc.setUsers(staff.slice(5).map((local) => kcUser(local)));
    const report = await env.sync({ dryRun: true });
    expect(report).toMatchObject({ status: 'failed', dryRun: true, refused: expect.stringContaining('5 of 10') });
  });

  it('a listing that fails half-way deactivates nobody and records the error', async () => {
    env.kc.setUsers(
      Array.from({ length: 150 }, (_, i) =>
        kcUser(`x${String(i).padStart(3, '0')}`, { email: `x${i}@unknown-${domain}` }),
      ).concat(staff.map((local) => kcUser(local))),
    );
    // The pre-pass reads page 1 fine and then meets a dead Keycloak on page 2.
    env.kc.injectFaults({ endpoint: 'users', delayMs: 0 });
    env.kc.injectFaults(...Array.from({ length: 4 }, () => ({ endpoint: 'users' as const, status: 500 })));
    const before = await snapshot();
    const report = await env.sync();
    expect(report.status).toBe('failed');
    expect(report.errors[0]).toContain('Received HTTP 500');
    expect(await snapshot()).toEqual(before);
    expect(
      (await cronLog()).some((entry) => entry.priority === 'err' && entry.message.includes('Received HTTP 500')),
    ).toBe(true);
  });
});

describe('applySync: mailboxes of other sources', () => {
  it('never touches a local mailbox with the same email', async () => {
    await seedMailbox(env.deps.db, { username: `local@${domain}`, passwordHash: '{PLAIN}x', authsource: 'mailcow' });
    await env.saveSettings({ mappers: ['premium'], templates: ['Premium'], postern_deprovision: false });
    env.kc.setUsers([kcUser('local', { attributes: { mailcow_template: ['premium'] } })]);
    const before = await mailboxRow(`local@${domain}`);
    const report = await env.sync();
    expect(report.status).toBe('succeeded');
    expect((await getSyncRun(env.deps.db, report.runId))?.actions).toEqual([
      expect.objectContaining({ type: 'skip', email: `local@${domain}`, why: 'authsource_not_keycloak' }),
    ]);
    expect(await mailboxRow(`local@${domain}`)).toEqual(before);
  });
});
