// The composition root owns every connection: with both apps built and used, deps.close() leaves
// no TCP socket of the process open (MySQL pool, the Redis client, each limiter's ban
// subscriber, the identity provider's keep-alive connections), against real MariaDB and Redis
// and panva's oidc-provider. Sockets are counted from /proc, so idle ones that no longer keep
// the event loop alive (undici's) are counted too.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createDeps } from '../src/deps.js';
import { createInternalApp } from '../src/http/internal-app.js';
import { createWebApp } from '../src/http/web-app.js';
import { createLogger } from '../src/log.js';
import { genericOidcSettingsSchema, saveIdpSettings } from '../src/sources/idp-settings.js';
import { dropDatabase, testConfig, uniqueName } from './support/env.js';
import { startOidcProvider } from './support/oidc-provider.js';

const name = uniqueName('depsclose');

afterAll(async () => {
  await dropDatabase(name);
});

/**
 * This process's TCP sockets that are not LISTEN and whose local port is not one of `servedPorts`
 * (the accepted side of a server this test runs): the connections it opened.
 */
function openTcpSockets(servedPorts: readonly number[] = []): number {
  const inodes = new Set(
    readdirSync('/proc/self/fd').flatMap((fd) => {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
        return match ? [match[1] as string] : [];
      } catch {
        return []; // closed between readdir and readlink
      }
    }),
  );
  let count = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || !inodes.has(fields[9] as string)) continue;
      const localPort = Number.parseInt((fields[1] as string).split(':')[1] as string, 16);
      const isListening = fields[3] === '0A';
      if (!isListening && !servedPorts.includes(localPort)) count++;
    }
  }
  return count;
}

describe('deps.close()', () => {
  it('closes every socket that the deps and the apps built on them opened', async () => {
    const op = await startOidcProvider({ redirectUris: ['http://127.0.0.1:8080/login/sso/callback'] });
    const opPort = Number(new URL(op.baseUrl).port);
    const sockets = () => openTcpSockets([opPort]);
    try {
      const before = sockets();
      const config = testConfig(name, {
        POSTERN_BCRYPT_COST: '5',
        POSTERN_SECRET_KEY: 'deps-close-secret-key-0123456789abcdef',
      });
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
      await expect.poll(sockets, { timeout: 5_000 }).toBeGreaterThanOrEqual(before + 6);
      const withoutIdp = sockets();
      // Last before close, so the provider's keep-alive connection is certainly still idle and open:
      // single sign-on begins with discovery, answered by a redirect to the provider.
      await saveIdpSettings(
        deps.db,
        genericOidcSettingsSchema.parse({
          authsource: 'generic-oidc',
          postern_issuer_url: op.issuer,
          client_id: op.clientId,
          client_secret: op.clientSecret,
          redirect_url: 'http://127.0.0.1:8080/login/sso/callback',
        }),
        deps.secretBox,
      );
      const sso = await web.request('/login/sso');
      expect(sso.headers.get('location')).toMatch(new RegExp(`^${op.issuer}`));
      expect(sockets()).toBeGreaterThan(withoutIdp);

      expect(await deps.close()).toBe(true);
      // A socket being torn down leaves the list within a tick or two; one still open never does.
      await expect.poll(sockets, { timeout: 2_000 }).toBe(before);
    } finally {
      await op.close();
    }
  });
});
