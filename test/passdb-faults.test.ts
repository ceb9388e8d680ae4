// Faults are temporary: a backend that is away yields 5xx (never 200, never 401), and logins
// work again when it returns, without restarting postern. Also the internal token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MYSQL_ROOT_URL, REDIS_URL, startTestPostern, type TestPostern } from './support/env.js';
import { seedDomain, seedMailbox } from './support/seed.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

const RIP = '192.0.2.10';
const TOKEN = 'a-sufficiently-long-internal-token';
const good = { username: 'bob@example.org', password: 'bob pw', real_rip: RIP, service: 'imap' };
const bad = { ...good, password: 'not bob pw' };

async function seedBob(postern: TestPostern) {
  await seedDomain(postern.deps.db, 'example.org');
  await seedMailbox(postern.deps.db, {
    username: 'bob@example.org',
    passwordHash: await postern.deps.hashPool.hash('bob pw', 'SSHA512'),
  });
}

describe('passdb while MySQL is away', () => {
  let proxy: TcpProxy;
  let postern: TestPostern;

  beforeAll(async () => {
    const mysqlUrl = new URL(MYSQL_ROOT_URL);
    proxy = await startTcpProxy({ host: mysqlUrl.hostname, port: Number(mysqlUrl.port || 3306) });
    postern = await startTestPostern('mysqlfault', {}, { mysqlPort: proxy.port });
    await seedBob(postern);
  });

  afterAll(async () => {
    await proxy?.restore().catch(() => undefined);
    await postern?.destroy();
    await proxy?.close();
  });

  it('answers a temporary failure, neither ok nor mismatch, and recovers without a restart', async () => {
    expect((await postern.passdb(good)).status).toBe(200);

    await proxy.cut();
    for (const body of [good, bad]) {
      const response = await postern.passdb(body);
      expect(response.status).toBe(503);
      expect(response.body).toMatchObject({ success: false, result: 'internal_failure' });
      expect(JSON.stringify(response.body)).not.toContain(body.password);
    }
    const ready = await fetch(`${postern.internalUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ checks: { mysql: 'unavailable' } });

    await proxy.restore();
    await expect.poll(async () => (await postern.passdb(good)).status, { timeout: 10_000 }).toBe(200);
    expect((await postern.passdb(bad)).status).toBe(401);
    expect((await fetch(`${postern.internalUrl}/readyz`)).status).toBe(200);
  });
});

describe('passdb while Redis is away', () => {
  let proxy: TcpProxy;
  let postern: TestPostern;

  beforeAll(async () => {
    const redisUrl = new URL(REDIS_URL);
    proxy = await startTcpProxy({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
    postern = await startTestPostern(
      'redisfault',
      { POSTERN_BAN_USER_THRESHOLD: '3', POSTERN_BAN_IP_THRESHOLD: '3', POSTERN_BAN_SECONDS: '600' },
      { redisPort: proxy.port },
    );
    await seedBob(postern);
    await seedMailbox(postern.deps.db, {
      username: 'carol@example.org',
      passwordHash: await postern.deps.hashPool.hash('carol pw', 'SSHA512'),
    });
  });

  afterAll(async () => {
    await proxy?.restore().catch(() => undefined);
    await postern?.destroy();
    await proxy?.close();
  });

  it('keeps a user and an IP banned before the outage banned during it', async () => {
    const attacker = '198.51.100.7';
    // bob@ banned as a user (guesses from three addresses), 198.51.100.7 banned as an IP.
    for (const [index, guess] of ['g1', 'g2', 'g3'].entries()) {
      expect((await postern.passdb({ ...bad, password: guess, real_rip: `203.0.113.${index + 1}` })).status).toBe(401);
    }
    for (const user of ['x1@example.org', 'x2@example.org', 'x3@example.org']) {
      await postern.passdb({ ...bad, username: user, real_rip: attacker });
    }
    expect((await postern.passdb(good)).status).toBe(401);
    const carolFromAttacker = {
      username: 'carol@example.org',
      password: 'carol pw',
      real_rip: attacker,
      service: 'imap',
    };
    expect((await postern.passdb(carolFromAttacker)).status).toBe(401);

    await proxy.cut();
    await expect.poll(async () => (await fetch(`${postern.internalUrl}/readyz`)).status).toBe(503);
    expect((await postern.passdb(good)).status).toBe(401);
    expect((await postern.passdb(carolFromAttacker)).status).toBe(401);
    // Logins under no ban still work during the outage.
    expect((await postern.passdb({ ...carolFromAttacker, real_rip: RIP })).status).toBe(200);

    await proxy.restore();
    await expect.poll(async () => (await fetch(`${postern.internalUrl}/readyz`)).status, { timeout: 10_000 }).toBe(200);
    expect((await postern.passdb(good)).status).toBe(401);
  });
});

describe('passdb with an internal token', () => {
  let postern: TestPostern;

  beforeAll(async () => {
    postern = await startTestPostern('token', { POSTERN_INTERNAL_TOKEN: TOKEN });
    await seedBob(postern);
  });

  afterAll(async () => {
    await postern?.destroy();
  });

  it('accepts a request carrying the token', async () => {
    expect((await postern.passdb(good, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
  });

  it.each([
    { name: 'no Authorization header', headers: {} as Record<string, string> },
    { name: 'a wrong token', headers: { authorization: 'Bearer a-sufficiently-long-internal-tokeN' } },
    { name: 'a prefix of the token', headers: { authorization: 'Bearer a-sufficiently' } },
    { name: 'Basic instead of Bearer', headers: { authorization: `Basic ${TOKEN}` } },
  ])('refuses $name with 403 before looking at the credentials', async ({ headers }) => {
    const response = await postern.passdb(good, headers);
    expect(response.status).toBe(403);
    expect(response.body.success).toBe(false);
  });

  it('keeps health checks open for monitors', async () => {
    expect((await fetch(`${postern.internalUrl}/healthz`)).status).toBe(200);
  });
});
