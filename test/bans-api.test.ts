// Listing and lifting bans: on the admin API (X-API-Key, audited) and on the internal listener,
// where lifting needs the internal token, so that reaching the listener is not enough to undo a ban.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from './support/env.js';
import { seedDomain, seedMailbox } from './support/seed.js';

const API_KEY = 'bans-api-key-0123456789abcdefghijkl';
const TOKEN = 'a-sufficiently-long-internal-token';

async function seedVictim(postern: TestPostern, name: string): Promise<string> {
  const username = `${name}@example.org`;
  await seedMailbox(postern.deps.db, {
    username,
    passwordHash: await postern.deps.hashPool.hash(`${name} pw`, 'SSHA512'),
  });
  return username;
}

/** Three distinct wrong passwords: a user ban (POSTERN_BAN_USER_THRESHOLD=3). */
async function ban(postern: TestPostern, username: string, headers: Record<string, string> = {}): Promise<void> {
  for (const guess of ['g1', 'g2', 'g3']) {
    await postern.passdb({ username, password: guess, real_rip: '203.0.113.40', service: 'imap' }, headers);
  }
}

const goodLogin = (postern: TestPostern, username: string, headers: Record<string, string> = {}) =>
  postern.passdb(
    { username, password: `${username.split('@')[0]} pw`, real_rip: '203.0.113.41', service: 'imap' },
    headers,
  );

const banLimits = { POSTERN_BAN_USER_THRESHOLD: '3', POSTERN_BAN_SECONDS: '600', POSTERN_API_KEY: API_KEY };

describe('bans with no internal token configured (the default)', () => {
  let postern: TestPostern;

  beforeAll(async () => {
    postern = await startTestPostern('bans_open', banLimits);
    await seedDomain(postern.deps.db, 'example.org');
  });
  afterAll(async () => {
    await postern?.destroy();
  });

  it('refuses to lift a ban on the internal listener, and the ban stays', async () => {
    const user = await seedVictim(postern, 'kept');
    await ban(postern, user);
    const response = await fetch(`${postern.internalUrl}/admin/bans/user/${encodeURIComponent(user)}`, {
      method: 'DELETE',
    });
    expect(response.status).toBe(403);
    expect(await response.text()).toContain('POSTERN_INTERNAL_TOKEN');
    expect((await goodLogin(postern, user)).status).toBe(401);
  });

  it('still lists bans on the internal listener', async () => {
    const user = await seedVictim(postern, 'listed');
    await ban(postern, user);
    const listed = (await (await fetch(`${postern.internalUrl}/admin/bans`)).json()) as { bans: unknown[] };
    expect(listed.bans).toContainEqual(expect.objectContaining({ scope: 'user', subject: user }));
  });

  it('lists and lifts bans through the admin API with an API key, and audits the lift', async () => {
    const user = await seedVictim(postern, 'forgiven');
    await ban(postern, user);
    expect((await goodLogin(postern, user)).status).toBe(401);
    const api = (method: string, path: string, key: string | null = API_KEY) =>
      fetch(`${postern.webUrl}/api/v1${path}`, { method, headers: key === null ? {} : { 'x-api-key': key } });

    expect((await api('GET', '/bans', null)).status).toBe(401);
    expect((await api('DELETE', `/bans/user/${encodeURIComponent(user)}`, null)).status).toBe(401);
    const listed = (await (await api('GET', '/bans')).json()) as { bans: unknown[] };
    expect(listed.bans).toContainEqual({ scope: 'user', subject: user, expires_in: expect.any(Number) });

    const lifted = await api('DELETE', `/bans/user/${encodeURIComponent(user.toUpperCase())}`);
    expect(lifted.status).toBe(200);
    expect((await goodLogin(postern, user)).status).toBe(200);
    expect((await api('DELETE', `/bans/user/${encodeURIComponent(user)}`)).status).toBe(404);
    expect((await api('DELETE', '/bans/everything/x')).status).toBe(400);

    const audit = await postern.deps.db.many<{ actor: string; target: string; detail: unknown }>(
      "SELECT actor, target, detail FROM postern_audit WHERE action = 'ban.lift'",
    );
    expect(audit).toEqual([{ actor: 'api:config', target: user.toUpperCase(), detail: { scope: 'user' } }]);
  });
});

describe('bans with an internal token', () => {
  let postern: TestPostern;

  beforeAll(async () => {
    postern = await startTestPostern('bans_token', { ...banLimits, POSTERN_INTERNAL_TOKEN: TOKEN });
    await seedDomain(postern.deps.db, 'example.org');
  });
  afterAll(async () => {
    await postern?.destroy();
  });

  it('lifts a ban on the internal listener only with the token', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const user = await seedVictim(postern, 'tokened');
    await ban(postern, user, auth);
    const lift = (headers: Record<string, string>) =>
      fetch(`${postern.internalUrl}/admin/bans/user/${encodeURIComponent(user)}`, { method: 'DELETE', headers });

    expect((await lift({})).status).toBe(403);
    expect((await lift({ authorization: 'Bearer not-the-token' })).status).toBe(403);
    expect((await goodLogin(postern, user, auth)).status).toBe(401);
    expect((await lift(auth)).status).toBe(200);
    expect((await goodLogin(postern, user, auth)).status).toBe(200);
    expect((await lift(auth)).status).toBe(404);
  });
});
