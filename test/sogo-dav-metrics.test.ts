// SOGo's DAV/EAS logins (/sogo/verify with HTTP Basic) are decided with the passdb's own deps and
// counted in the same metrics as Dovecot's logins, against real MariaDB and Redis.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from './support/env.js';
import { seedAppPassword, seedDomain, seedMailbox } from './support/seed.js';

const DOMAIN = 'davmetrics.example';
const ME = `me@${DOMAIN}`;
const APP_PASSWORD = 'calendar app password';

let postern: TestPostern;

beforeAll(async () => {
  postern = await startTestPostern('davmetrics', { POSTERN_BCRYPT_COST: '5' });
  const { db, hashPool } = postern.deps;
  await seedDomain(db, DOMAIN);
  await seedMailbox(db, { username: ME, passwordHash: await hashPool.hash('mailbox pw', 'SSHA256') });
  await seedAppPassword(db, {
    mailbox: ME,
    passwordHash: await hashPool.hash(APP_PASSWORD, 'SSHA256'),
    protocols: ['dav_access'],
  });
});

afterAll(async () => {
  await postern?.destroy();
});

/** nginx's auth_request subrequest for a CalDAV request carrying the client's Basic credentials. */
function verifyDav(password: string) {
  return fetch(`${postern.internalUrl}/sogo/verify`, {
    headers: {
      'x-original-uri': `/SOGo/dav/${ME}/Calendar/`,
      'x-original-authorization': `Basic ${Buffer.from(`${ME}:${password}`).toString('base64')}`,
      'x-real-ip': '198.51.100.5',
    },
  });
}

async function attempts(result: string): Promise<number> {
  const text = await (await fetch(`${postern.internalUrl}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`postern_auth_attempts_total{service="DAV",source="mailcow",result="${result}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('DAV logins through /sogo/verify', () => {
  it('are counted in postern_auth_attempts_total like passdb logins', async () => {
    expect((await verifyDav(APP_PASSWORD)).status).toBe(200);
    expect((await verifyDav('wrong')).status).toBe(401);
    expect(await attempts('ok')).toBe(1);
    expect(await attempts('password_mismatch')).toBe(1);
  });
});
