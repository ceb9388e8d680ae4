// Faults are temporary: a backend that is away yields 5xx (never 200, never 401), and logins
// work again when it returns, without restarting postern. Also the internal token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MYSQL_ROOT_URL, startTestPostern, type TestPostern } from './support/env.js';
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
