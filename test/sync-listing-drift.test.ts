// Keycloak's first/max paging has no snapshot (see test/support/fake-keycloak.ts),
// so a listing can miss a user who is still there or list one twice. The sync must confirm each
// "gone" user with Keycloak before deactivating it, must not call a user listed twice a duplicate,
// and must treat unverified emails as SSO does.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getSyncRun } from '../src/storage/sync-runs.js';
import { insertMailboxTemplate } from '../src/storage/templates.js';
import { type FakeKeycloakUser, type SyncTestEnv, startSyncEnv } from './support/fake-keycloak.js';
import { seedDomain } from './support/seed.js';

let env: SyncTestEnv;
let domain: string;
// 150 users: two pages of 100.
const locals = Array.from({ length: 150 }, (_, i) => `u${String(i).padStart(3, '0')}`);

const kcUser = (local: string, extra: Partial<FakeKeycloakUser> = {}): FakeKeycloakUser => ({
  username: local,
  email: `${local}@${domain}`,
  emailVerified: true,
  attributes: { mailcow_template: ['basic'] },
  ...extra,
});

async function active(local: string): Promise<number | undefined> {
  const row = await env.deps.db.one<{ active: number }>('SELECT active FROM mailbox WHERE username = ?', [
    `${local}@${domain}`,
  ]);
  return row === undefined ? undefined : Number(row.active);
}

async function actionsOf(runId: number): Promise<{ type?: string; why?: string; email?: string; username?: string }[]> {
  return ((await getSyncRun(env.deps.db, runId))?.actions ?? []) as { type?: string; why?: string; email?: string }[];
}

/** Run `change` once, just before the main pass (full representation) asks for its second page. */
function beforeMainPassPage2(change: () => void) {
  let done = false;
  env.kc.onUsersRequest((request) => {
    const isMainPass = request.query.get('briefRepresentation') === 'false';
    if (!done && request.kind === 'list' && isMainPass && request.query.get('first') === '100') {
      done = true;
      change();
    }
  });
}

beforeAll(async () => {
  env = await startSyncEnv('sync_drift');
  domain = `${env.name.replace(/_/g, '-')}.example`;
  await seedDomain(env.deps.db, domain);
  await insertMailboxTemplate(env.deps.db, 'Basic', { quota: 1024 ** 3, active: 1, imap_access: 1 });
  await env.saveSettings({
    mappers: ['basic'],
    templates: ['Basic'],
    postern_deprovision: true,
    postern_max_drop_percent: 20,
  });
});

afterAll(async () => {
  await env?.destroy();
});

beforeEach(async () => {
  env.kc.onUsersRequest(undefined);
  env.kc.setUsers(locals.map((local) => kcUser(local)));
  const report = await env.sync();
  expect(report.status).toBe('succeeded');
  await env.deps.db.execute(
    "UPDATE mailbox SET active = 1, attributes = JSON_REMOVE(attributes, '$.postern_deprovisioned') WHERE domain = ?",
    [domain],
  );
});

describe('a Keycloak listing that changes between pages', () => {
  it('does not deactivate the user a deletion on page 1 pushed out of page 2, and deactivates the deleted one', async () => {
    // Deleting u000 moves u100 from position 100 to 99: page 2 (first=100) starts at u101.
    beforeMainPassPage2(() => env.kc.deleteUser('u000'));
    const report = await env.sync();
    expect(report.status).toBe('succeeded');
    expect(await active('u100')).toBe(1);
    expect(report.counts).toMatchObject({ deactivated: 0 });
    expect(await actionsOf(report.runId)).toContainEqual(
      expect.objectContaining({
        type: 'deactivate',
        email: `u100@${domain}`,
        outcome: 'skipped',
        note: 'still_in_keycloak',
      }),
    );
    // u000 was on page 1 before it was deleted; the next run misses it, Keycloak confirms it gone.
    expect(await active('u000')).toBe(1);
    const next = await env.sync();
    expect(next.counts).toMatchObject({ deactivated: 1 });
    expect(await active('u000')).toBe(0);
    expect(await active('u100')).toBe(1);
  });

  it('does not skip a user as a duplicate when an addition on page 1 lists it twice', async () => {
    // u000a sorts after u000: u099 moves to position 100 and is listed again on page 2.
    beforeMainPassPage2(() => env.kc.addUser(kcUser('u000a', { attributes: { mailcow_template: ['none'] } })));
    const report = await env.sync();
    const actions = (await actionsOf(report.runId)) as { why?: string; email?: string }[];
    expect(actions.filter((action) => action.why === 'duplicate_email')).toEqual([]);
    expect(report.counts.failed).toBe(0);
  });
});

describe('unverified emails, as SSO treats them', () => {
  it('creates no mailbox for a user whose email Keycloak has not verified, and says why', async () => {
    env.kc.setUsers([...locals.map((local) => kcUser(local)), kcUser('unverified', { emailVerified: false })]);
    const report = await env.sync();
    expect(await active('unverified')).toBeUndefined();
    expect(await actionsOf(report.runId)).toContainEqual(
      expect.objectContaining({ type: 'skip', email: `unverified@${domain}`, why: 'email_not_verified' }),
    );
  });

  it('lets a verified user win the email over an unverified one listed first', async () => {
    env.kc.setUsers([
      ...locals.map((local) => kcUser(local)),
      kcUser('aaa-squatter', { email: `verified@${domain}`, emailVerified: false }),
      kcUser('verified'),
    ]);
    const actions = await actionsOf((await env.sync()).runId);
    expect(actions).toContainEqual(
      expect.objectContaining({ type: 'skip', username: 'aaa-squatter', why: 'email_not_verified' }),
    );
    expect(actions).toContainEqual(expect.objectContaining({ type: 'create', email: `verified@${domain}` }));
    expect(actions.filter((action) => action.why === 'duplicate_email')).toEqual([]);
  });
});
