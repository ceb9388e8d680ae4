// The portal's app-password form through the real web listener (real MariaDB and Redis, no
// browser): a protocol name that only Object.prototype has (`constructor`, `hasOwnProperty`)
// passed the form's check and made an app password with every flag 0.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from './support/env.js';
import { seedDomain, seedMailbox } from './support/seed.js';

const ORIGIN = 'http://127.0.0.1:8080'; // POSTERN_PUBLIC_URL's default: the same-origin check compares with it
const USER = 'cleo@example.org';
const PASSWORD = 'cleo local pw';

let postern: TestPostern;
let cookie: string;
let csrf: string;

function post(path: string, body: URLSearchParams): Promise<Response> {
  return fetch(`${postern.webUrl}${path}`, {
    method: 'POST',
    headers: { origin: ORIGIN, cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: body.toString(),
    redirect: 'manual',
  });
}

async function appPasswordRows() {
  return postern.deps.db.many<{ name: string }>('SELECT name FROM app_passwd WHERE mailbox = ? ORDER BY id', [USER]);
}

beforeAll(async () => {
  postern = await startTestPostern('portalform', { POSTERN_BCRYPT_COST: '5' });
  const { db, hashPool } = postern.deps;
  await seedDomain(db, 'example.org');
  await seedMailbox(db, { username: USER, passwordHash: await hashPool.hash(PASSWORD, 'SSHA256') });
  const signIn = await fetch(`${postern.webUrl}/login`, {
    method: 'POST',
    headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: USER, password: PASSWORD }).toString(),
    redirect: 'manual',
  });
  expect(signIn.status).toBe(303);
  cookie =
    (signIn.headers.getSetCookie().find((line) => line.startsWith('postern_session=')) ?? '').split(';')[0] ?? '';
  const portal = await fetch(`${postern.webUrl}/`, { headers: { cookie } });
  csrf = /name="csrf" value="([^"]+)"/.exec(await portal.text())?.[1] ?? '';
  expect(csrf).not.toBe('');
});

afterAll(async () => {
  await postern?.destroy();
});

describe('the portal app-password form', () => {
  it.each([
    { protocols: ['constructor'] },
    { protocols: ['hasOwnProperty'] },
    { protocols: ['__proto__'] },
    { protocols: ['toString'] },
    { protocols: ['imap', 'constructor'] },
  ])('refuses protocols=$protocols with 400 and creates nothing', async ({ protocols }) => {
    const body = new URLSearchParams({ csrf, name: 'Sneaky' });
    for (const protocol of protocols) body.append('protocols', protocol);
    const response = await post('/app-passwords', body);
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('Unknown protocol');
    await expect(appPasswordRows()).resolves.toEqual([]);
  });

  it('still creates an app password for a real protocol', async () => {
    const body = new URLSearchParams({ csrf, name: 'Phone' });
    body.append('protocols', 'imap');
    const response = await post('/app-passwords', body);
    expect(response.status).toBe(200);
    await expect(appPasswordRows()).resolves.toEqual([{ name: 'Phone' }]);
  });
});
