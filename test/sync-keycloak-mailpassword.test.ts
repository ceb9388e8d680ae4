// The Keycloak mailpassword flow: the keycloak PasswordSource on its own, and
// wired into the real passdb (internal app over real MariaDB/Redis) as deps.ts will wire it.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AppError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { createKeycloakPasswordSource } from '../src/sources/keycloak.js';
import { createSourceRegistry } from '../src/sources/registry.js';
import type { LoginMailbox } from '../src/storage/mailboxes.js';
import { type FakeKeycloakUser, type InternalServer, type SyncTestEnv, startSyncEnv } from './support/fake-keycloak.js';
import { seedAppPassword, seedDomain, seedMailbox } from './support/seed.js';

let env: SyncTestEnv;
let internal: InternalServer;
let clock = 1_000_000;
let users: FakeKeycloakUser[];

const mailbox = (username: string): LoginMailbox => ({
  username,
  passwordHash: '',
  active: 1,
  domainActive: true,
  authSource: 'keycloak',
  attributes: {},
});

function source(options: { now?: () => number } = {}) {
  return createKeycloakPasswordSource(
    { db: env.deps.db, secretBox: env.deps.secretBox, config: env.config, log: createLogger('silent') },
    { now: options.now ?? (() => clock), clientOptions: { sleep: async () => undefined } },
  );
}

const passdb = (username: string, password: string) =>
  internal.passdb({ username, password, real_rip: '198.51.100.4', service: 'imap' });

beforeAll(async () => {
  env = await startSyncEnv('sync_mailpw');
  const { db, hashPool } = env.deps;
  await seedDomain(db, 'kc.example');
  for (const local of ['anna', 'ben', 'cleo', 'dora', 'emil']) {
    await seedMailbox(db, { username: `${local}@kc.example`, passwordHash: '', authsource: 'keycloak' });
  }
  await seedAppPassword(db, {
    mailbox: 'cleo@kc.example',
    passwordHash: await hashPool.hash('cleo app password', 'SSHA256'),
    protocols: ['imap_access'],
  });
  users = [
    {
      username: 'anna',
      email: 'anna@kc.example',
      attributes: { mailcow_password: [await hashPool.hash('anna mail pw', 'BLF-CRYPT')] },
    },
    {
      username: 'ben',
      email: 'Ben@KC.example',
      enabled: false,
      attributes: { mailcow_password: [await hashPool.hash('ben pw', 'SSHA256')] },
    },
    { username: 'cleo', email: 'cleo@kc.example' },
    { username: 'dora', email: 'dora@kc.example', attributes: { mailcow_password: [''] } },
  ];
  env.kc.setUsers(users);
  await env.saveSettings({ mailpassword_flow: true, periodic_sync: false, import_users: false });
  internal = await env.serveInternal(createSourceRegistry({ keycloak: source({ now: Date.now }) }));
});

afterAll(async () => {
  await internal?.close();
  await env?.destroy();
});

beforeEach(() => {
  env.kc.setUsers(users);
  env.kc.counts.users = 0;
});

describe('keycloak PasswordSource', () => {
  it.each([
    ['anna@kc.example', { ok: true, hash: expect.stringMatching(/^\{BLF-CRYPT\}\$2y\$/) }],
    ['ben@kc.example', { ok: false, reason: 'disabled_upstream' }],
    ['cleo@kc.example', { ok: false, reason: 'no_local_password' }],
    ['dora@kc.example', { ok: false, reason: 'no_local_password' }],
    ['emil@kc.example', { ok: false, reason: 'unknown_upstream' }],
  ])('looks up %s', async (username, expected) => {
    expect(await source().lookupPasswordHash(mailbox(username))).toEqual(expected);
  });

  it('caches a lookup for 30 s, keyed by email', async () => {
    const kc = source();
    await kc.lookupPasswordHash(mailbox('anna@kc.example'));
    await kc.lookupPasswordHash(mailbox('anna@kc.example'));
    expect(env.kc.counts.users).toBe(1);
    clock += 31_000;
    await kc.lookupPasswordHash(mailbox('anna@kc.example'));
    expect(env.kc.counts.users).toBe(2);
  });

  it('shares one Keycloak request between concurrent logins of a user', async () => {
    const kc = source();
    await Promise.all(Array.from({ length: 5 }, () => kc.lookupPasswordHash(mailbox('anna@kc.example'))));
    expect(env.kc.counts.users).toBe(1);
  });

  it('throws backend_unavailable when Keycloak fails, and does not cache the fault', async () => {
    const kc = source();
    env.kc.injectFaults({ endpoint: 'users', status: 500 }, { endpoint: 'users', status: 500 });
    const error = (await kc.lookupPasswordHash(mailbox('anna@kc.example')).catch((e: unknown) => e)) as AppError;
    expect(error).toMatchObject({ code: 'backend_unavailable', status: 503 });
    expect(await kc.lookupPasswordHash(mailbox('anna@kc.example'))).toMatchObject({ ok: true });
  });

  it('answers no_local_password without calling Keycloak when the flow is off (settings re-read after 10 s)', async () => {
    const kc = source();
    await env.saveSettings({ mailpassword_flow: false, periodic_sync: false, import_users: false });
    try {
      clock += 11_000;
      expect(await kc.lookupPasswordHash(mailbox('anna@kc.example'))).toEqual({
        ok: false,
        reason: 'no_local_password',
      });
      expect(env.kc.counts.users).toBe(0);
    } finally {
      await env.saveSettings({ mailpassword_flow: true, periodic_sync: false, import_users: false });
    }
  });
});

describe('the passdb with the keycloak source wired in', () => {
  it('accepts the right mailbox password from mailcow_password', async () => {
    expect(await passdb('anna@kc.example', 'anna mail pw')).toMatchObject({ status: 200, body: { success: true } });
  });

  it('refuses a wrong password', async () => {
    expect(await passdb('anna@kc.example', 'anna wrong pw')).toMatchObject({
      status: 401,
      body: { success: false, result: 'password_mismatch' },
    });
  });

  it('refuses a user disabled in Keycloak even with the right password (unlike mailcow)', async () => {
    expect(await passdb('ben@kc.example', 'ben pw')).toMatchObject({ status: 401, body: { success: false } });
  });

  it('still accepts app passwords of a user without mailcow_password', async () => {
    expect(await passdb('cleo@kc.example', 'cleo app password')).toMatchObject({ status: 200 });
  });

  it('answers a temporary failure (5xx), never a mismatch, while Keycloak is down', async () => {
    // A user not yet cached, so the lookup reaches Keycloak.
    env.kc.injectFaults(...Array.from({ length: 2 }, () => ({ endpoint: 'users' as const, status: 503 })));
    const { status, body } = await passdb('dora@kc.example', 'whatever');
    expect(status).toBe(503);
    expect(body).toMatchObject({ success: false, result: 'internal_failure' });
  });
});
