// The composition root owns every connection: with both apps built and used, deps.close() leaves
// no TCP socket of the process open (MySQL pool, the Redis client, each limiter's ban
// subscriber), against real MariaDB and Redis.
import { afterAll, describe, expect, it } from 'vitest';
import { createDeps } from '../src/deps.js';
import { createInternalApp } from '../src/http/internal-app.js';
import { createWebApp } from '../src/http/web-app.js';
import { createLogger } from '../src/log.js';
import { dropDatabase, testConfig, uniqueName } from './support/env.js';

const name = uniqueName('depsclose');

afterAll(async () => {
  await dropDatabase(name);
});

/** Open TCP sockets of this process (Node's resource names: TCPSocketWrap for a connected socket). */
const openSockets = () => process.getActiveResourcesInfo().filter((kind) => kind === 'TCPSocketWrap').length;

describe('deps.close()', () => {
  it('closes every socket that the deps and the apps built on them opened', async () => {
    const before = openSockets();
    const config = testConfig(name, { POSTERN_BCRYPT_COST: '5' });
    const deps = await createDeps(config, createLogger(config.logLevel));
    const web = createWebApp(deps);
    const internal = createInternalApp(deps);
    // Use both: the login page reads MySQL, the passdb asks the limiter (Redis).
    expect((await web.request('/login')).status).toBe(200);
    const passdb = await internal.request('/', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        username: 'nobody@example.org',
        password: 'x',
        real_rip: '198.51.100.1',
        service: 'imap',
      }),
    });
    expect(passdb.status).toBe(401);
    // At least: MySQL, the Redis client, and the ban subscribers of the passdb, web-login,
    // admin-login and portal-code limiters (each connects on its own, soon after it is built).
    await expect.poll(openSockets, { timeout: 5_000 }).toBeGreaterThanOrEqual(before + 6);

    expect(await deps.close()).toBe(true);
    // A socket being torn down leaves the list within a tick or two; one still open never does.
    await expect.poll(openSockets, { timeout: 2_000 }).toBe(before);
  });
});
