// The admin console's frame against real MariaDB and Redis: only a complete admin session opens
// it; every POST needs the session's CSRF token and our Origin (else 403 before any handler);
// the navigation shows a role only what it may open; refusals render inside the console.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from '../support/env.js';
import { seedAdminAccount, seedDomain } from '../support/seed.js';

const ORIGIN = 'https://admin.example.org';
const ROOT_PASSWORD = 'console root passphrase';
const DESK_PASSWORD = 'console desk passphrase';
let postern: TestPostern;

function browser() {
  const jar = new Map<string, string>();
  async function request(method: string, path: string, form?: Record<string, string>, headers = {}) {
    const response = await fetch(`${postern.webUrl}${path}`, {
      method,
      redirect: 'manual',
      headers: {
        origin: ORIGIN,
        ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...headers,
      },
      ...(form ? { body: new URLSearchParams(form).toString() } : {}),
    });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';');
      const [name = '', value = ''] = pair.split('=');
      if (/max-age=0/i.test(cookie) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    return { status: response.status, location: response.headers.get('location'), text: await response.text() };
  }
  return {
    request,
    async signIn(username: string, password: string) {
      const response = await request('POST', '/admin/login', { username, password });
      expect(response.location).toBe('/admin');
      const home = await request('GET', '/admin');
      const csrf = /name="csrf" value="([^"]+)"/.exec(home.text)?.[1];
      if (!csrf) throw new Error('no CSRF token on the console page');
      return { home, csrf };
    },
  };
}

beforeAll(async () => {
  postern = await startTestPostern('console_shell', {
    POSTERN_PUBLIC_URL: ORIGIN,
    POSTERN_BCRYPT_COST: '4',
  });
  const { db } = postern.deps;
  await seedDomain(db, 'example.org');
  await seedAdminAccount(postern, { username: 'root', password: ROOT_PASSWORD, superadmin: true });
  await seedAdminAccount(postern, {
    username: 'desk',
    password: DESK_PASSWORD,
    superadmin: false,
    domains: ['example.org'],
  });
});

afterAll(async () => {
  await postern?.destroy();
});

describe('the console frame', () => {
  it('sends a stranger to the sign-in page, for every console path', async () => {
    const b = browser();
    expect(await b.request('GET', '/admin')).toMatchObject({ status: 303, location: '/admin/login' });
    expect(await b.request('GET', '/admin/domains')).toMatchObject({ status: 303, location: '/admin/login' });
    const post = await b.request('POST', '/admin/domains', { csrf: 'x' });
    expect(post.status).toBe(403);
    expect(post.text).toContain('Signed out');
  });

  it('renders the dashboard in the layout: skip link, labelled navigation, sign-out form with the token', async () => {
    const { home } = await browser().signIn('root', ROOT_PASSWORD);
    expect(home.status).toBe(200);
    expect(home.text).toContain('<a class="skip" href="#content">');
    expect(home.text).toContain('<nav class="console-nav" aria-label="Console">');
    expect(home.text).toContain('<a href="/admin" aria-current="page">Dashboard</a>');
    expect(home.text).toContain('<dd id="admin-username">root</dd>');
    expect(home.text).toMatch(/<form method="post" action="\/admin\/logout"[^>]*><input type="hidden" name="csrf"/);
  });

  it('refuses a POST without the token, with a wrong one, or from another origin, before any handler', async () => {
    const b = browser();
    const { csrf } = await b.signIn('root', ROOT_PASSWORD);
    for (const [form, headers] of [
      [{}, {}],
      [{ csrf: `${csrf.slice(0, -1)}x` }, {}],
      [{ csrf }, { origin: 'https://evil.example' }],
      [{ csrf }, { origin: 'null' }],
    ] as const) {
      const refused = await b.request('POST', '/admin', { ...form }, { ...headers });
      expect(refused.status).toBe(403);
      expect(refused.text).toContain('This form was not sent from this site');
    }
    // The same post with the token and our Origin passes the guard (no page takes POST /admin: 404).
    const passed = await b.request('POST', '/admin', { csrf });
    expect(passed.status).toBe(404);
    expect(passed.text).toContain('id="console-error"');
  });

  it('shows a domain admin its domains and a signed-out session nothing', async () => {
    const b = browser();
    const { home, csrf } = await b.signIn('desk', DESK_PASSWORD);
    expect(home.text).toContain('<dd id="admin-role">domain admin</dd>');
    expect(home.text).toContain('<dd id="admin-domains">example.org</dd>');
    expect((await b.request('POST', '/admin/logout', { csrf })).location).toBe('/admin/login');
    expect((await b.request('GET', '/admin')).location).toBe('/admin/login');
  });

  it('signs a disabled admin out on the next console request', async () => {
    const b = browser();
    await b.signIn('desk', DESK_PASSWORD);
    await postern.deps.db.execute("UPDATE admin SET active = 0 WHERE username = 'desk'");
    try {
      expect((await b.request('GET', '/admin')).location).toBe('/admin/login');
    } finally {
      await postern.deps.db.execute("UPDATE admin SET active = 1 WHERE username = 'desk'");
    }
    expect((await b.request('GET', '/admin')).location).toBe('/admin/login');
  });
});
