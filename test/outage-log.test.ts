// A MariaDB outage under load is logged as an outage, not once per request: one error when it
// starts, then at most a rate-limited summary, then one line when MariaDB is back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { type RunningPostern, startPostern } from '../src/server.js';
import { dropDatabase, MYSQL_ROOT_URL, testConfig, uniqueName } from './support/env.js';
import { seedDomain, seedMailbox } from './support/seed.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

interface LogLine {
  level: number;
  msg: string;
  err?: { stack?: string };
  [key: string]: unknown;
}

const WARN = 40;
const REQUESTS_DURING_OUTAGE = 60;

let proxy: TcpProxy;
let postern: RunningPostern;
let name: string;
const lines: LogLine[] = [];

beforeAll(async () => {
  const mysqlUrl = new URL(MYSQL_ROOT_URL);
  proxy = await startTcpProxy({ host: mysqlUrl.hostname, port: Number(mysqlUrl.port || 3306) });
  name = uniqueName('outagelog');
  const config = testConfig(name, { POSTERN_LOG_LEVEL: 'info' }, { mysqlPort: proxy.port });
  const log = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  postern = await startPostern(config, log);
  await seedDomain(postern.deps.db, 'example.org');
  await seedMailbox(postern.deps.db, {
    username: 'olga@example.org',
    passwordHash: await postern.deps.hashPool.hash('olga pw', 'SSHA512'),
  });
});

afterAll(async () => {
  await proxy?.restore().catch(() => undefined);
  await postern?.stop();
  await proxy?.close();
  if (name) await dropDatabase(name);
});

const login = async (password = 'olga pw') => {
  const response = await fetch(`${postern.internalUrl}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'olga@example.org', password, real_rip: '192.0.2.44', service: 'imap' }),
  });
  return response.status;
};

describe('logging a MariaDB outage', () => {
  it('logs the outage once, no line per failed request above info, and the recovery once', async () => {
    expect(await login()).toBe(200);
    const before = lines.length;

    await proxy.cut();
    const statuses: number[] = [];
    for (let i = 0; i < REQUESTS_DURING_OUTAGE; i += 1) {
      statuses.push(await login(i % 2 === 0 ? 'olga pw' : `wrong ${i}`));
    }
    expect(new Set(statuses)).toEqual(new Set([503]));
    const duringOutage = lines.slice(before);
    const loud = duringOutage.filter((line) => line.level >= WARN);
    expect(loud.map((line) => line.msg)).toEqual(['MySQL unavailable']);
    // The cause is named once, without a stack per request.
    expect(duringOutage.filter((line) => line.err?.stack !== undefined).length).toBeLessThanOrEqual(1);
    expect(JSON.stringify(duringOutage)).not.toContain('olga pw');

    await proxy.restore();
    await expect.poll(() => login(), { timeout: 10_000 }).toBe(200);
    const recovered = lines.slice(before).filter((line) => line.msg === 'MySQL available again');
    expect(recovered).toHaveLength(1);
    expect(recovered[0]).toMatchObject({ failedQueries: expect.any(Number), outageSeconds: expect.any(Number) });
    expect(recovered[0]?.failedQueries as number).toBeGreaterThanOrEqual(REQUESTS_DURING_OUTAGE);
  });
});
