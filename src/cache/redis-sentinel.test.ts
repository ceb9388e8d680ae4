// Redis Sentinel for real: a private master, a replica and a Sentinel (redis-server --sentinel)
// on free loopback ports, all with passwords. postern's Redis client, built from the
// configuration, finds the master through the Sentinel, follows a forced failover and a killed
// master, and a whole postern keeps its keys there. A missing redis-server fails loudly.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, startTestPostern } from '../../test/support/env.js';
import { canConnect, freePort, type LoggedChild, sleep, spawnLogged } from '../../test/support/processes.js';
import { seedDomain, seedMailbox } from '../../test/support/seed.js';
import { checkDependencies } from '../check/check-dependencies.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { createRedis, redisTargetOf } from './redis.js';

const MASTER_NAME = 'postern-test';
const MASTER_PASSWORD = 'master-secret-0123456789';
const SENTINEL_PASSWORD = 'sentinel-secret-0123456789';
const FAILOVER_TIMEOUT_MS = 2000;

interface RedisProcess {
  port: number;
  process: LoggedChild;
}

let dir: string;
const servers: RedisProcess[] = [];
let sentinel: RedisProcess;
const clients: Redis[] = [];

function track(client: Redis): Redis {
  clients.push(client);
  client.on('error', () => undefined); // expected while servers die; asserted where it matters
  return client;
}

/** A plain client of one server, no Sentinel involved (for inspecting what went where). */
function direct(port: number, password: string): Redis {
  return track(new Redis({ host: '127.0.0.1', port, password, maxRetriesPerRequest: 1, lazyConnect: false }));
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function startRedisServer(replicaOf?: number): Promise<RedisProcess> {
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--dbfilename',
    `dump-${port}.rdb`,
    '--requirepass',
    MASTER_PASSWORD,
    // A master demoted by a failover must authenticate to the new one.
    '--masterauth',
    MASTER_PASSWORD,
    ...(replicaOf === undefined ? [] : ['--replicaof', '127.0.0.1', String(replicaOf)]),
  ];
  const child = spawnLogged('redis-server', args);
  const server = { port, process: child };
  servers.push(server);
  await waitFor(`redis-server on ${port}`, () => canConnect(port), 10_000);
  return server;
}

async function startSentinel(masterPort: number): Promise<RedisProcess> {
  const port = await freePort();
  const configPath = join(dir, `sentinel-${port}.conf`);
  // The Sentinel rewrites its config file as it learns the topology: a file of its own.
  writeFileSync(
    configPath,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 1`,
      `sentinel auth-pass ${MASTER_NAME} ${MASTER_PASSWORD}`,
      `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
      // A Sentinel starts no new failover of a master within twice this of the last one.
      `sentinel failover-timeout ${MASTER_NAME} ${FAILOVER_TIMEOUT_MS}`,
      `requirepass ${SENTINEL_PASSWORD}`,
      '',
    ].join('\n'),
  );
  const child = spawnLogged('redis-server', [configPath, '--sentinel']);
  const server = { port, process: child };
  await waitFor(`redis-sentinel on ${port}`, () => canConnect(port), 10_000);
  return server;
}

const serverPortOf = async (client: Redis) => Number(/tcp_port:(\d+)/.exec(await client.info('server'))?.[1]);

function sentinelEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    // The host and port here are not used with Sentinels: nothing listens on port 1.
    POSTERN_REDIS_URL: `redis://:${MASTER_PASSWORD}@127.0.0.1:1/0`,
    POSTERN_REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`,
    POSTERN_REDIS_SENTINEL_NAME: MASTER_NAME,
    POSTERN_REDIS_SENTINEL_PASSWORD_FILE: join(dir, 'sentinel-password'),
    ...extra,
  };
}

async function ready(client: Redis): Promise<void> {
  await waitFor('the client to be ready', async () => client.status === 'ready', 10_000);
}

let master: RedisProcess;
let replica: RedisProcess;

beforeAll(async () => {
  const version = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    throw new Error('redis-server was not found: install redis-server (see scripts/system-deps.sh)');
  }
  dir = mkdtempSync(join(tmpdir(), 'postern-sentinel-'));
  writeFileSync(join(dir, 'sentinel-password'), `${SENTINEL_PASSWORD}\n`);
  master = await startRedisServer();
  replica = await startRedisServer(master.port);
  sentinel = await startSentinel(master.port);
  const sentinelClient = track(new Redis({ host: '127.0.0.1', port: sentinel.port, password: SENTINEL_PASSWORD }));
  // Failover needs a replica that is in sync and known to the Sentinel.
  await waitFor('the replica to sync', async () =>
    /master_link_status:up/.test(await direct(replica.port, MASTER_PASSWORD).info('replication')),
  );
  await waitFor('the Sentinel to see the replica', async () => {
    const replicas = (await sentinelClient.call('SENTINEL', 'REPLICAS', MASTER_NAME)) as string[][];
    return replicas.length === 1 && !(replicas[0] ?? []).join(' ').includes('disconnected');
  });
});

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await Promise.all([...servers.map((s) => s.process.stop()), sentinel?.process.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('POSTERN_REDIS_SENTINEL* configuration', () => {
  it('parses the Sentinel list (IPv6 in brackets), the name and the password from its _FILE', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'postern-sentinel-cfg-')), 'pw');
    writeFileSync(file, 'from-a-file\n');
    const config = loadConfig({
      POSTERN_REDIS_SENTINELS: ' 10.0.0.5:26379, sentinel-b.example:26380,[fd00::5]:26379',
      POSTERN_REDIS_SENTINEL_NAME: 'mail-redis',
      POSTERN_REDIS_SENTINEL_PASSWORD_FILE: file,
    });

    expect(config.redisSentinels).toEqual([
      { host: '10.0.0.5', port: 26379 },
      { host: 'sentinel-b.example', port: 26380 },
      { host: 'fd00::5', port: 26379 },
    ]);
    expect(redisTargetOf(config)).toEqual({
      url: 'redis://127.0.0.1:6379',
      sentinels: config.redisSentinels,
      sentinelName: 'mail-redis',
      sentinelPassword: 'from-a-file',
    });
  });

  it('uses the one server of POSTERN_REDIS_URL when no Sentinel is set, with the default group name', () => {
    const config = loadConfig({ POSTERN_REDIS_URL: 'redis://10.0.0.9:6379/2' });

    expect(config.redisSentinelName).toBe('mymaster');
    expect(redisTargetOf(config)).toEqual({ url: 'redis://10.0.0.9:6379/2' });
  });

  it.each([
    ['a missing port', '10.0.0.5', /"10\.0\.0\.5" is not host:port/],
    ['port 0', '10.0.0.5:0', /is not host:port/],
    ['a port above 65535', '10.0.0.5:65536', /is not host:port/],
    ['an empty entry', '10.0.0.5:26379,,10.0.0.6:26379', /"" is not host:port/],
    ['an IPv6 address without brackets', 'fd00::5:26379', /is not host:port/],
    ['brackets around no IPv6 address', '[10.0.0.5]:26379', /is not host:port/],
    ['a Sentinel listed twice', '10.0.0.5:26379, 10.0.0.5:26379', /listed twice/],
  ])('refuses POSTERN_REDIS_SENTINELS with %s', (_label, value, message) => {
    expect(() => loadConfig({ POSTERN_REDIS_SENTINELS: value })).toThrow(ConfigError);
    expect(() => loadConfig({ POSTERN_REDIS_SENTINELS: value })).toThrow(message);
  });

  it('refuses a bad group name, and never echoes the Sentinel password in an error', () => {
    expect(() => loadConfig({ POSTERN_REDIS_SENTINEL_NAME: 'my master' })).toThrow(/POSTERN_REDIS_SENTINEL_NAME/);
    let message = '';
    try {
      loadConfig({ POSTERN_REDIS_SENTINEL_PASSWORD: 'secret-x', POSTERN_REDIS_SENTINEL_PASSWORD_FILE: '/nonexistent' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/POSTERN_REDIS_SENTINEL_PASSWORD: set either/);
    expect(message).not.toContain('secret-x');
  });
});

describe("postern's Redis client through a real Sentinel", () => {
  it('asks the Sentinel for the master (the URL names no server) and works there', async () => {
    const client = track(createRedis(redisTargetOf(loadConfig(sentinelEnv()))));
    await ready(client);

    expect(await serverPortOf(client)).toBe(master.port);
    await client.set('postern-sentinel-test:before', 'written through the sentinel');
    expect(await direct(master.port, MASTER_PASSWORD).get('postern-sentinel-test:before')).toBe(
      'written through the sentinel',
    );
  });

  it('does not connect with a wrong Sentinel password', async () => {
    const wrong = join(dir, 'wrong-password');
    writeFileSync(wrong, 'not-the-password');
    const client = track(
      createRedis(redisTargetOf(loadConfig(sentinelEnv({ POSTERN_REDIS_SENTINEL_PASSWORD_FILE: wrong })))),
    );
    const errors: string[] = [];
    client.on('error', (error: Error) => errors.push(error.message));

    await sleep(1500);

    expect(client.status).not.toBe('ready');
    expect(errors.length).toBeGreaterThan(0);
    await expect(client.get('postern-sentinel-test:before')).rejects.toThrow();
  });

  it('follows a failover to the replica, and then a killed master back to the first server', async () => {
    const client = track(createRedis(redisTargetOf(loadConfig(sentinelEnv()))));
    await ready(client);
    await client.set('postern-sentinel-test:failover', 'one');
    const sentinelClient = track(new Redis({ host: '127.0.0.1', port: sentinel.port, password: SENTINEL_PASSWORD }));
    // The replica must hold the key before the replica becomes the master.
    await waitFor(
      'the key to reach the replica',
      async () => (await direct(replica.port, MASTER_PASSWORD).get('postern-sentinel-test:failover')) === 'one',
    );

    // 1. A forced failover (SENTINEL FAILOVER): the replica is promoted, the old master demoted.
    await sentinelClient.call('SENTINEL', 'FAILOVER', MASTER_NAME);
    const forcedAt = Date.now();
    await waitFor('the client to write on the promoted replica', async () => {
      await client.set('postern-sentinel-test:failover', 'two');
      return (await serverPortOf(client)) === replica.port;
    });
    expect(await client.get('postern-sentinel-test:failover')).toBe('two');

    // 2. The new master dies (SIGKILL): the Sentinel sees it down after 1 s and promotes the
    //    first server again, once that has caught up as a replica.
    await waitFor('the old master to sync as a replica', async () =>
      /master_link_status:up/.test(await direct(master.port, MASTER_PASSWORD).info('replication')),
    );
    // Past the Sentinel's pause between two failovers of one master, so the time measured
    // below is that of noticing the dead master and promoting the replica.
    await sleep(Math.max(0, 2 * FAILOVER_TIMEOUT_MS + 100 - (Date.now() - forcedAt)));
    servers.find((s) => s.port === replica.port)?.process.child.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor(
      'the client to write on the first server again',
      async () => {
        await client.set('postern-sentinel-test:failover', 'three');
        return (await serverPortOf(client)) === master.port;
      },
      30_000,
    );
    expect(await client.get('postern-sentinel-test:failover')).toBe('three');
    // Reported for the README: how long writes failed after the master was killed.
    console.info(`redis-sentinel: writes resumed ${Date.now() - killedAt} ms after the master was killed`);
  }, 60_000);
});

describe('a postern configured with POSTERN_REDIS_SENTINELS', () => {
  it('passes the Redis line of `postern check`, naming the group, the Sentinels and the master they gave', async () => {
    const config = loadConfig(sentinelEnv({ POSTERN_DB_URL: 'mysql://root@127.0.0.1:1/none' }));
    const lines = await checkDependencies({
      config,
      openDb: () => Promise.reject(new Error('not part of this test')),
      openRedis: () => createRedis(redisTargetOf(config)),
    });
    const current = (await track(
      new Redis({ host: '127.0.0.1', port: sentinel.port, password: SENTINEL_PASSWORD }),
    ).call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)) as [string, string];

    expect(lines.find((line) => line.name === 'redis')).toEqual({
      name: 'redis',
      status: 'ok',
      detail: expect.stringMatching(
        new RegExp(
          `^the master of "${MASTER_NAME}" \\(Sentinels 127\\.0\\.0\\.1:${sentinel.port}\\) at (::ffff:)?127\\.0\\.0\\.1:${current[1]} answers \\(Redis `,
        ),
      ),
    });
  });

  it('keeps its keys on the master the Sentinel names, not on the default Redis', async () => {
    const postern = await startTestPostern('sentinel', sentinelEnv());
    try {
      const { db, hashPool } = postern.deps;
      await seedDomain(db, 'example.org');
      await seedMailbox(db, {
        username: 'erin@example.org',
        passwordHash: await hashPool.hash('erin pw', 'BLF-CRYPT'),
      });
      const login = { username: 'erin@example.org', real_rip: '192.0.2.20', service: 'imap' };
      expect((await postern.passdb({ ...login, password: 'erin pw' })).status).toBe(200);
      expect((await postern.passdb({ ...login, password: 'not erin pw' })).status).toBe(401);

      const current = (await track(
        new Redis({ host: '127.0.0.1', port: sentinel.port, password: SENTINEL_PASSWORD }),
      ).call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)) as [string, string];
      const onMaster = await direct(Number(current[1]), MASTER_PASSWORD).keys(`${postern.name}:*`);
      // The failure counter of the wrong password is there, on the master.
      expect(onMaster).toEqual(expect.arrayContaining([`${postern.name}:rl:fail:user:erin@example.org`]));
      const shared = track(createRedis(REDIS_URL));
      await ready(shared);
      expect(await shared.keys(`${postern.name}:*`)).toEqual([]);
    } finally {
      await postern.destroy();
    }
  });
});
