// The hot path against real MariaDB and Redis: the verified-credential cache skips the hash on a
// repeat and forgets on every relevant change; the limiter bans guessers without locking out the
// real user; faults never count; Redis going away degrades, never denies; bans and metrics.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from './support/env.js';
import { countHashes } from './support/hash-count.js';
import { seedAppPassword, seedDomain, seedMailbox } from './support/seed.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

const login = (postern: TestPostern, username: string, password: string, ip = '198.51.100.20', service = 'imap') =>
  postern.passdb({ username, password, real_rip: ip, service });

describe('POSTERN_LOGIN_CACHE_MAX_AGE_MS (bounded staleness, as the compose stack runs)', () => {
  const MAX_AGE_MS = 200;
  let postern: TestPostern;

  beforeAll(async () => {
    postern = await startTestPostern('cache_max_age', {
      POSTERN_BCRYPT_COST: '5',
      POSTERN_LOGIN_CACHE_MAX_AGE_MS: String(MAX_AGE_MS),
    });
    await seedDomain(postern.deps.db, 'example.org');
  });
  afterAll(async () => {
    await postern?.destroy();
  });

  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it.each([
    ['the password changes', 'UPDATE mailbox SET password = ? WHERE username = ?', 'password_mismatch'],
    [
      'the mailbox is deactivated',
      'UPDATE mailbox SET active = 0 WHERE username = ? AND password <> ?',
      'user_disabled',
    ],
  ])('sees a change committed more than the maximum age before a login: %s', async (name, sql, result) => {
    const user = `${name.replace(/\W+/g, '-')}@example.org`;
    await seedMailbox(postern.deps.db, {
      username: user,
      passwordHash: await postern.deps.hashPool.hash('old pw', 'BLF-CRYPT'),
    });
    // Repeat logins, answered from the in-process rows and the credential cache.
    for (let i = 0; i < 3; i += 1) expect((await login(postern, user, 'old pw')).status).toBe(200);
    const newHash = await postern.deps.hashPool.hash('new pw', 'BLF-CRYPT');
    await postern.deps.db.execute(sql, sql.startsWith('UPDATE mailbox SET password') ? [newHash, user] : [user, '']);
    await pause(MAX_AGE_MS + 50);
    const after = await login(postern, user, 'old pw');
    expect(after.status).toBe(401);
    expect(after.body.result).toBe(result);
  });
});

describe('verified-credential cache', () => {
  let postern: TestPostern;

  beforeAll(async () => {
    postern = await startTestPostern('cache', { POSTERN_BCRYPT_COST: '5' });
    await seedDomain(postern.deps.db, 'example.org');
  });
  afterAll(async () => {
    await postern?.destroy();
  });

  async function freshMailbox(name: string, password: string) {
    const username = `${name}@example.org`;
    await seedMailbox(postern.deps.db, {
      username,
      passwordHash: await postern.deps.hashPool.hash(password, 'BLF-CRYPT'),
    });
    return username;
  }

  async function storedHashOf(username: string): Promise<string> {
    const row = await postern.deps.db.one<{ password: string }>('SELECT password FROM mailbox WHERE username = ?', [
      username,
    ]);
    return row?.password as string;
  }

  // A login the cache does not settle spends POSTERN_LOGIN_HASH_FLOOR (default 4) verifications,
  // dummies filling up (passdb-timing.test.ts); these tests count what the cache saves.
  const FLOOR = 4;

  it('skips the hash entirely on a repeat login with the same password', async () => {
    const user = await freshMailbox('repeat', 'repeat pw');
    const hashes = countHashes(postern);
    try {
      expect((await login(postern, user, 'repeat pw')).status).toBe(200);
      expect(hashes.countOf(await storedHashOf(user))).toBe(1);
      expect(hashes.count).toBe(FLOOR);
      for (let i = 0; i < 5; i += 1) expect((await login(postern, user, 'repeat pw')).status).toBe(200);
      expect(hashes.count).toBe(FLOOR);
    } finally {
      hashes.restore();
    }
  });

  it('collapses concurrent identical first logins into one computation of the real hash', async () => {
    const user = await freshMailbox('burst', 'burst pw');
    const hashes = countHashes(postern);
    try {
      const results = await Promise.all(Array.from({ length: 8 }, () => login(postern, user, 'burst pw')));
      expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
      expect(hashes.countOf(await storedHashOf(user))).toBe(1);
    } finally {
      hashes.restore();
    }
  });

  it('settles a repeat login with the last of many app passwords without hashing the others', async () => {
    const user = await freshMailbox('many', 'many main pw');
    for (let index = 1; index <= 5; index += 1) {
      await seedAppPassword(postern.deps.db, {
        mailbox: user,
        passwordHash: await postern.deps.hashPool.hash(`many app ${index}`, 'BLF-CRYPT'),
        protocols: ['imap_access'],
      });
    }
    expect((await login(postern, user, 'many app 5')).status).toBe(200);
    const hashes = countHashes(postern);
    try {
      expect((await login(postern, user, 'many app 5')).status).toBe(200);
      expect(hashes.count).toBe(0);
      expect((await login(postern, user, 'many app 6')).status).toBe(401);
      expect(hashes.count).toBe(6);
    } finally {
      hashes.restore();
    }
  });

  it('never caches a failure as a success', async () => {
    const user = await freshMailbox('failing', 'right pw');
    expect((await login(postern, user, 'wrong pw')).status).toBe(401);
    expect((await login(postern, user, 'wrong pw')).status).toBe(401);
  });

  it('refuses the old password on the very next request after a password change', async () => {
    const user = await freshMailbox('changer', 'old pw');
    expect((await login(postern, user, 'old pw')).status).toBe(200);
    const newHash = await postern.deps.hashPool.hash('new pw', 'BLF-CRYPT');
    await postern.deps.db.execute('UPDATE mailbox SET password = ? WHERE username = ?', [newHash, user]);
    expect((await login(postern, user, 'old pw')).status).toBe(401);
    expect((await login(postern, user, 'new pw')).status).toBe(200);
  });

  it.each([
    {
      name: 'the mailbox is deactivated',
      sql: 'UPDATE mailbox SET active = 0 WHERE username = ?',
      on: 'user',
      result: 'user_disabled',
    },
    {
      name: 'the domain is deactivated',
      sql: 'UPDATE domain SET active = 0 WHERE domain = ?',
      on: 'domain',
      result: 'user_disabled',
    },
    {
      name: 'the authsource becomes keycloak',
      sql: "UPDATE mailbox SET authsource = 'keycloak' WHERE username = ?",
      on: 'user',
      result: 'password_mismatch',
    },
    {
      name: 'IMAP is switched off for the mailbox',
      sql: "UPDATE mailbox SET attributes = JSON_SET(attributes, '$.imap_access', '0') WHERE username = ?",
      on: 'user',
      result: 'user_disabled',
    },
  ])('takes effect on the very next request when $name', async ({ sql, on, result }) => {
    // A domain of its own per case, so deactivating it touches nobody else.
    const domain = `d${Math.random().toString(36).slice(2, 8)}.example`;
    const user = `someone@${domain}`;
    await seedDomain(postern.deps.db, domain);
    await seedMailbox(postern.deps.db, {
      username: user,
      passwordHash: await postern.deps.hashPool.hash('pw', 'BLF-CRYPT'),
    });
    expect((await login(postern, user, 'pw')).status).toBe(200);
    await postern.deps.db.execute(sql, [on === 'user' ? user : domain]);
    const after = await login(postern, user, 'pw');
    expect(after.status).toBe(401);
    expect(after.body.result).toBe(result);
  });

  it('stops a deactivated or deleted app password on the very next request', async () => {
    const user = await freshMailbox('apps', 'apps main pw');
    const id = await seedAppPassword(postern.deps.db, {
      mailbox: user,
      passwordHash: await postern.deps.hashPool.hash('apps app pw', 'BLF-CRYPT'),
      protocols: ['imap_access'],
    });
    expect((await login(postern, user, 'apps app pw')).status).toBe(200);
    await postern.deps.db.execute('UPDATE app_passwd SET active = 0 WHERE id = ?', [id]);
    expect((await login(postern, user, 'apps app pw')).status).toBe(401);
    await postern.deps.db.execute('UPDATE app_passwd SET active = 1 WHERE id = ?', [id]);
    expect((await login(postern, user, 'apps app pw')).status).toBe(200);
    await postern.deps.db.execute('DELETE FROM app_passwd WHERE id = ?', [id]);
    expect((await login(postern, user, 'apps app pw')).status).toBe(401);
  });
});

describe('brute-force protection', () => {
  let postern: TestPostern;

  beforeAll(async () => {
    postern = await startTestPostern('limits', {
      POSTERN_BCRYPT_COST: '5',
      POSTERN_BAN_USER_THRESHOLD: '3',
      POSTERN_BAN_IP_THRESHOLD: '5',
      POSTERN_BAN_WINDOW_SECONDS: '60',
      POSTERN_BAN_SECONDS: '2',
      POSTERN_BAN_EXEMPT_NETWORKS: '10.9.0.0/16',
    });
    await seedDomain(postern.deps.db, 'example.org');
  });
  afterAll(async () => {
    await postern?.destroy();
  });

  let userCounter = 0;
  async function victim(password: string) {
    userCounter += 1;
    const username = `victim${userCounter}@example.org`;
    await seedMailbox(postern.deps.db, {
      username,
      passwordHash: await postern.deps.hashPool.hash(password, 'SSHA256'),
    });
    return username;
  }

  it('bans a user after distinct wrong passwords and refuses without hashing during the ban', async () => {
    const user = await victim('the right one');
    for (const guess of ['guess 1', 'guess 2', 'guess 3']) {
      expect((await login(postern, user, guess, '203.0.113.50')).body.result).toBe('password_mismatch');
    }
    const hashes = countHashes(postern);
    try {
      const refused = await login(postern, user, 'the right one', '203.0.113.51');
      expect(refused.status).toBe(401);
      expect(hashes.count).toBe(0);
    } finally {
      hashes.restore();
    }
    const bans = (await (await fetch(`${postern.internalUrl}/admin/bans`)).json()) as {
      bans: { scope: string; subject: string }[];
    };
    expect(bans.bans).toContainEqual(expect.objectContaining({ scope: 'user', subject: user }));
  });

  it('lets the ban expire', async () => {
    const user = await victim('patience');
    for (const guess of ['a', 'b', 'c']) await login(postern, user, guess, '203.0.113.60');
    expect((await login(postern, user, 'patience', '203.0.113.61')).status).toBe(401);
    await new Promise((resolve) => setTimeout(resolve, 2200));
    expect((await login(postern, user, 'patience', '203.0.113.61')).status).toBe(200);
  });

  it('counts the same wrong password, re-sent by Dovecot and client retries, only once', async () => {
    const user = await victim('steady');
    for (let i = 0; i < 6; i += 1) await login(postern, user, 'the same typo', '203.0.113.70');
    expect((await login(postern, user, 'steady', '203.0.113.70')).status).toBe(200);
  });

  it('does not let a user ban lock out an IP that recently logged that user in', async () => {
    const user = await victim('home sweet home');
    expect((await login(postern, user, 'home sweet home', '192.0.2.80')).status).toBe(200);
    for (const guess of ['x1', 'x2', 'x3']) await login(postern, user, guess, '203.0.113.81');
    expect((await login(postern, user, 'home sweet home', '203.0.113.82')).status).toBe(401);
    expect((await login(postern, user, 'home sweet home', '192.0.2.80')).status).toBe(200);
  });

  it('bans a client IP that sprays many users, per /64 for IPv6', async () => {
    const users = await Promise.all([1, 2, 3, 4, 5, 6].map(() => victim('spray target')));
    for (const [index, user] of users.slice(0, 5).entries()) {
      await login(postern, user, 'Summer2026!', `2001:db8:1:2::${index + 1}`);
    }
    const fromSameNetwork = await login(postern, users[5] as string, 'spray target', '2001:db8:1:2::99');
    expect(fromSameNetwork.status).toBe(401);
    const elsewhere = await login(postern, users[5] as string, 'spray target', '2001:db8:1:3::1');
    expect(elsewhere.status).toBe(200);
  });

  it('never bans an exempt network by IP', async () => {
    const users = await Promise.all([1, 2, 3, 4, 5, 6].map(() => victim('webmail user')));
    for (const user of users.slice(0, 5)) await login(postern, user, 'not it', '10.9.1.1');
    expect((await login(postern, users[5] as string, 'webmail user', '10.9.1.1')).status).toBe(200);
  });

  it('exports attempts, bans and cache lookups as Prometheus metrics', async () => {
    const text = await (await fetch(`${postern.internalUrl}/metrics`)).text();
    expect(text).toMatch(
      /postern_auth_attempts_total\{service="imap",source="mailcow",result="password_mismatch"\} \d+/,
    );
    expect(text).toMatch(/postern_bans_total\{scope="user"\} [1-9]/);
    expect(text).toMatch(/postern_rate_limited_total\{scope="user"\} [1-9]/);
    expect(text).toMatch(/postern_auth_duration_seconds_bucket/);
    expect(text).toMatch(/postern_hash_pool_queue_depth \d+/);
    expect(text).toMatch(/postern_credential_cache_lookups_total\{layer="miss"\} [1-9]/);
  });
});

describe('faults and a Redis outage', () => {
  let redisProxy: TcpProxy;
  let mysqlProxy: TcpProxy;
  let postern: TestPostern;

  beforeAll(async () => {
    redisProxy = await startTcpProxy({ host: '127.0.0.1', port: 6379 });
    mysqlProxy = await startTcpProxy({ host: '127.0.0.1', port: 3306 });
    postern = await startTestPostern(
      'outage',
      { POSTERN_BCRYPT_COST: '5', POSTERN_BAN_USER_THRESHOLD: '3', POSTERN_BAN_SECONDS: '60' },
      { redisPort: redisProxy.port, mysqlPort: mysqlProxy.port },
    );
    await seedDomain(postern.deps.db, 'example.org');
    for (const name of ['eve', 'frank']) {
      await seedMailbox(postern.deps.db, {
        username: `${name}@example.org`,
        passwordHash: await postern.deps.hashPool.hash(`${name} pw`, 'BLF-CRYPT'),
      });
    }
  });
  afterAll(async () => {
    await redisProxy?.restore().catch(() => undefined);
    await mysqlProxy?.restore().catch(() => undefined);
    await postern?.destroy();
    await redisProxy?.close();
    await mysqlProxy?.close();
  });

  beforeEach(async () => {
    await redisProxy.restore().catch(() => undefined);
    await mysqlProxy.restore().catch(() => undefined);
  });

  it('never counts a fault as a failed attempt', async () => {
    await mysqlProxy.cut();
    for (let i = 0; i < 6; i += 1) {
      expect((await login(postern, 'frank@example.org', `fault ${i}`)).status).toBe(503);
    }
    await mysqlProxy.restore();
    await expect
      .poll(async () => (await login(postern, 'frank@example.org', 'frank pw')).status, { timeout: 10_000 })
      .toBe(200);
  });

  it('keeps logins working when Redis stops mid-run, and still bans in process', async () => {
    expect((await login(postern, 'eve@example.org', 'eve pw')).status).toBe(200);
    await redisProxy.cut();
    expect((await login(postern, 'eve@example.org', 'eve pw')).status).toBe(200);
    expect((await login(postern, 'eve@example.org', 'nope')).status).toBe(401);
    for (const guess of ['g1', 'g2', 'g3']) await login(postern, 'eve@example.org', guess, '203.0.113.99');
    expect((await login(postern, 'eve@example.org', 'eve pw', '203.0.113.98')).status).toBe(401);
    const ready = await fetch(`${postern.internalUrl}/readyz`);
    expect(await ready.json()).toMatchObject({ checks: { redis: 'unavailable', mysql: 'ok' } });
    await redisProxy.restore();
    await expect
      .poll(async () => ((await (await fetch(`${postern.internalUrl}/readyz`)).json()) as { status: string }).status, {
        timeout: 10_000,
      })
      .toBe('ok');
    expect((await login(postern, 'eve@example.org', 'eve pw')).status).toBe(200);
  });
});
