// The sign-in's next= through the real web listener (real MariaDB and Redis, no browser): neither
// the page (GET /login) nor the form (POST /login) may send the browser to another site, whatever
// dot segments or encodings hide the second slash.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from './support/env.js';
import { seedDomain, seedMailbox } from './support/seed.js';

const ORIGIN = 'http://127.0.0.1:8080'; // POSTERN_PUBLIC_URL's default: the same-origin check compares with it
const USER = 'bob@example.org';
const PASSWORD = 'bob local pw';

/** next= values as they reach postern after the query or form decoding. */
const PAYLOADS = [
  '/.//evil.example',
  '/..//evil.example',
  '/%2e//evil.example',
  '/%2e%2e//evil.example',
  '/a/..//evil.example',
  '/.//evil.example/path?x=1',
];
/** The same, written the way a crafted link spells them (decoded once by the query parser). */
const RAW_QUERIES = ['/.%2F/evil.example', '/%2e//evil.example', '/%252e//evil.example', '/a/..%2F/evil.example'];

let postern: TestPostern;
let web: string;
let sessionCookie: string;

function signIn(body: string): Promise<Response> {
  return fetch(`${web}/login`, {
    method: 'POST',
    headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' },
    body,
    redirect: 'manual',
  });
}

function credentials(next: string): string {
  return new URLSearchParams({ username: USER, password: PASSWORD, next }).toString();
}

/** A browser resolves Location against the page; it must stay on this host. */
function expectSameSite(location: string | null, label: string) {
  expect(location, label).not.toBeNull();
  expect(new URL(location ?? '', 'https://mail.example/login').host, `${label} → ${location}`).toBe('mail.example');
  expect(location, label).not.toMatch(/^\/[/\\]/);
}

beforeAll(async () => {
  postern = await startTestPostern('nextredirect', { POSTERN_BCRYPT_COST: '5' });
  web = postern.webUrl;
  const { db, hashPool } = postern.deps;
  await seedDomain(db, 'example.org');
  await seedMailbox(db, { username: USER, passwordHash: await hashPool.hash(PASSWORD, 'SSHA256') });
  const response = await signIn(credentials('/'));
  expect(response.status).toBe(303);
  const cookie = response.headers.getSetCookie().find((line) => line.startsWith('postern_session='));
  if (!cookie) throw new Error('sign-in set no session cookie');
  sessionCookie = cookie.split(';')[0] ?? '';
});

afterAll(async () => {
  await postern?.destroy();
});

describe('next= after sign-in', () => {
  it.each(PAYLOADS)('POST /login with next=%s stays on this site', async (next) => {
    const response = await signIn(credentials(next));
    expect(response.status).toBe(303);
    expectSameSite(response.headers.get('location'), next);
  });

  it.each(RAW_QUERIES)('POST /login with the raw form value next=%s stays on this site', async (raw) => {
    const body = `username=${encodeURIComponent(USER)}&password=${encodeURIComponent(PASSWORD)}&next=${raw}`;
    const response = await signIn(body);
    expect(response.status).toBe(303);
    expectSameSite(response.headers.get('location'), raw);
  });

  it.each([...PAYLOADS.map(encodeURIComponent), ...RAW_QUERIES])(
    'GET /login?next=%s of a signed-in browser stays on this site',
    async (query) => {
      const response = await fetch(`${web}/login?next=${query}`, {
        headers: { cookie: sessionCookie },
        redirect: 'manual',
      });
      expect(response.status).toBe(303);
      expectSameSite(response.headers.get('location'), query);
    },
  );

  it.each([...PAYLOADS.map(encodeURIComponent), ...RAW_QUERIES])(
    'GET /login?next=%s does not carry another site into the sign-in form',
    async (query) => {
      const response = await fetch(`${web}/login?next=${query}`, { redirect: 'manual' });
      expect(response.status).toBe(200);
      const html = await response.text();
      expect(html).toContain('name="password"');
      expect(html).not.toMatch(/name="next"[^>]*value="\/[/\\]/);
      expect(html).not.toMatch(/value="\/[/\\][^"]*"[^>]*name="next"/);
      expect(html).not.toContain('evil.example');
    },
  );

  it('still continues to a local next= (the fix refuses only other sites)', async () => {
    const response = await signIn(credentials('/a/../sogo-auth?login=bob%40example.org'));
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/sogo-auth?login=bob%40example.org');
  });
});
