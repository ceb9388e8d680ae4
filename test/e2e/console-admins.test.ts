// The console's Admins and API keys pages against real MariaDB and Redis: a superadmin creates
// a domain admin and sets its ACL, creates an API key (shown once) and revokes it, turns 2FA
// enforcement on (only once enrolled itself), and cannot disable the last superadmin; a domain
// admin is refused; every change is audited as through the API; a POST without the token is refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertTotp } from '../../src/storage/two-factor.js';
import { readTwoFactorPolicy } from '../../src/storage/two-factor-policy.js';
import { startTestPostern, type TestPostern } from '../support/env.js';
import { seedAdminAccount, seedDomain } from '../support/seed.js';
import { consoleClient } from './console-client.js';

const ORIGIN = 'https://admin.example.org';
let postern: TestPostern;
const root = consoleClient(() => postern, ORIGIN);
const desk = consoleClient(() => postern, ORIGIN);
const get = (client: typeof root, path: string) => client.request('GET', path);

async function auditActions(target: string) {
  const rows = await postern.deps.db.many<{ actor: string; action: string }>(
    'SELECT actor, action FROM postern_audit WHERE target = ? ORDER BY id',
    [target],
  );
  return rows.map((row) => `${row.actor}:${row.action}`);
}

beforeAll(async () => {
  postern = await startTestPostern('console_admins', { POSTERN_PUBLIC_URL: ORIGIN, POSTERN_BCRYPT_COST: '4' });
  const { db } = postern.deps;
  await seedDomain(db, 'one.example');
  await seedDomain(db, 'two.example');
  await seedAdminAccount(postern, { username: 'root', password: 'root passphrase 01', superadmin: true });
  await seedAdminAccount(postern, {
    username: 'desk',
    password: 'desk passphrase 02',
    superadmin: false,
    domains: ['one.example'],
  });
  await root.signIn('root', 'root passphrase 01');
  await desk.signIn('desk', 'desk passphrase 02');
});

afterAll(async () => {
  await postern?.destroy();
});

describe('console admins', () => {
  it('creates a domain admin limited to one domain, then changes its ACL, audited', async () => {
    const list = await get(root, '/admin/admins');
    expect(list.status).toBe(200);
    expect(list.text).toContain('href="/admin/admins" aria-current="page"');
    expect(list.text).toContain('<label for="f-username">Username</label>');

    const created = await root.post('/admin/admins', {
      username: 'Helper',
      password: 'helper passphrase 03',
      role: 'domainadmin',
      domains: 'one.example',
      active: '1',
    });
    expect(created.status).toBe(303);
    expect(created.location).toBe('/admin/admins/helper?notice=created');
    const page = await get(root, created.location as string);
    expect(page.status).toBe(200);
    expect(page.text).toContain('The admin was created.');
    expect(page.text).toContain('value="one.example"');

    const saved = await root.post('/admin/admins/helper', {
      role: 'domainadmin',
      domains: 'one.example, two.example',
      active: '1',
    });
    expect(saved.location).toBe('/admin/admins/helper?notice=saved');
    const account = await postern.deps.db.many<{ domain: string }>(
      "SELECT domain FROM domain_admins WHERE username = 'helper' ORDER BY domain",
    );
    expect(account.map((row) => row.domain)).toEqual(['one.example', 'two.example']);

    const unknown = await root.post('/admin/admins/helper', { role: 'domainadmin', domains: 'nope.example' });
    expect(unknown.status).toBe(400);
    expect(unknown.text).toContain('no such domain: nope.example');

    const reset = await root.post('/admin/admins/helper/reset-2fa');
    expect(reset.location).toBe('/admin/admins/helper?notice=tfa-reset');
    expect(await auditActions('helper')).toEqual(['root:admin.create', 'root:admin.update', 'root:tfa.reset']);
    expect((await get(root, '/admin/admins')).text).toContain('href="/admin/admins/helper"');
  });

  it('refuses to disable the last superadmin with the use-case message', async () => {
    const refused = await root.post('/admin/admins/root', { role: 'superadmin' });
    expect(refused.status).toBe(409);
    expect(refused.text).toContain('root is the last active superadmin');
    const stillActive = await postern.deps.db.one<{ active: number }>(
      "SELECT active FROM admin WHERE username = 'root'",
    );
    expect(Number(stillActive?.active)).toBe(1);
  });

  it('turns 2FA enforcement on only once the admin itself uses a second factor', async () => {
    const refused = await root.post('/admin/admins/policy', { domainadmin: '1' });
    expect(refused.status).toBe(409);
    expect(refused.text).toContain('set up your own two-factor sign-in');
    expect((await readTwoFactorPolicy(postern.deps.db)).policy.domainadmin).toBe(false);

    await insertTotp(postern.deps.db, { username: 'root', keyId: 'phone', secret: 'JBSWY3DPEHPK3PXP', step: 0 });
    const saved = await root.post('/admin/admins/policy', { domainadmin: '1' });
    expect(saved.location).toBe('/admin/admins?notice=policy');
    expect((await readTwoFactorPolicy(postern.deps.db)).policy).toEqual({
      superadmin: false,
      domainadmin: true,
      mailbox: false,
    });
    expect(await auditActions('two_factor_policy')).toEqual(['root:two_factor_policy.update']);
  });

  it('creates an API key, shows it once, lists it without it, revokes it', async () => {
    const created = await root.post('/admin/api-keys', {
      name: 'monitoring',
      role: 'domainadmin',
      domains: 'one.example',
      access: 'ro',
      allow_from: '192.0.2.0/24, 2001:db8::/32',
      expires: '2099-01-01',
    });
    // POST, then a redirect to the page that shows it: reloading that page repeats no POST.
    expect(created.status).toBe(303);
    expect(created.location).toBe('/admin/api-keys/created');
    const pattern = `${postern.deps.config.redisPrefix}console:once:*`;
    const [sealedKey] = await postern.deps.redis.keys(pattern);
    const sealed = await postern.deps.redis.get(sealedKey as string);
    const shown = await get(root, '/admin/api-keys/created');
    expect(shown.status).toBe(200);
    const key = /value="(postern_[A-Za-z0-9_-]{43})"/.exec(shown.text)?.[1];
    expect(key).toBeDefined();
    expect(shown.text).toContain('shown only this once');
    // Redis held it sealed only (the ticket is in the cookie), and holds nothing once it is shown.
    expect(sealed).toBeTruthy();
    expect(sealed).not.toContain((key as string).slice('postern_'.length, 20));
    expect(await postern.deps.redis.keys(pattern)).toEqual([]);
    const reloaded = await get(root, '/admin/api-keys/created');
    expect(reloaded.status).toBe(200);
    expect(reloaded.text).toContain('id="api-key-gone"');
    expect(reloaded.text).not.toContain(key as string);
    expect(await postern.deps.db.one<{ n: number }>('SELECT COUNT(*) AS n FROM postern_api_keys')).toEqual({ n: 1 });

    const list = await get(root, '/admin/api-keys');
    expect(list.text).toContain('monitoring');
    expect(list.text).toContain('192.0.2.0/24, 2001:db8::/32');
    expect(list.text).toContain('2099-01-01');
    expect(list.text).not.toContain(key as string);
    const id = /action="\/admin\/api-keys\/(\d+)\/revoke"/.exec(list.text)?.[1];
    expect(id).toBeDefined();

    const revoked = await root.post(`/admin/api-keys/${id}/revoke`);
    expect(revoked.location).toBe('/admin/api-keys?notice=revoked');
    const after = await get(root, revoked.location as string);
    expect(after.text).toContain('The API key was revoked.');
    expect(after.text).not.toContain(`/admin/api-keys/${id}/revoke`);
    expect(await auditActions(`api-key:${id}`)).toEqual(['root:api_key.create', 'root:api_key.revoke']);
    // The revoked key no longer opens the API.
    const api = await fetch(`${postern.webUrl}/api/v1/domains`, { headers: { 'x-api-key': key as string } });
    expect(api.status).toBe(401);

    const badNetwork = await root.post('/admin/api-keys', {
      name: 'bad',
      role: 'superadmin',
      access: 'rw',
      allow_from: 'not-a-network',
    });
    expect(badNetwork.status).toBe(400);
    expect(badNetwork.text).toContain('not an IP address or CIDR network');
  });

  it('refuses a domain admin these pages and hides the entry', async () => {
    expect((await get(desk, '/admin')).text).not.toContain('href="/admin/admins"');
    expect((await get(desk, '/admin/admins')).status).toBe(403);
    expect((await get(desk, '/admin/admins/root')).status).toBe(403);
    expect((await get(desk, '/admin/api-keys')).status).toBe(403);
    expect((await desk.post('/admin/admins/root', { role: 'superadmin' })).status).toBe(403);
    expect(
      (await desk.post('/admin/api-keys', { name: 'x', role: 'superadmin', access: 'rw', allow_from: '0.0.0.0/0' }))
        .status,
    ).toBe(403);
    // Each refusal is in the audit trail, with the page asked for.
    await postern.deps.auditWriter.flush();
    const refused = await postern.deps.db.many<{ actor: string; outcome: string; path: string; status: number }>(
      `SELECT actor, outcome, JSON_VALUE(detail, '$.path') AS path, JSON_VALUE(detail, '$.status') AS status
         FROM postern_audit WHERE action = 'admin.refused' ORDER BY id`,
    );
    expect(refused.map((row) => `${row.actor} ${row.outcome} ${row.path} ${row.status}`)).toEqual(
      ['/admin/admins', '/admin/admins/root', '/admin/api-keys', '/admin/admins/root', '/admin/api-keys'].map(
        (path) => `desk failure ${path} 403`,
      ),
    );
  });

  it('refuses a POST without the CSRF token', async () => {
    const refused = await root.request('POST', '/admin/admins', {
      form: { username: 'sneaky', password: 'sneaky passphrase 04', role: 'superadmin', active: '1' },
    });
    expect(refused.status).toBe(403);
    expect(await postern.deps.db.one("SELECT username FROM admin WHERE username = 'sneaky'")).toBeUndefined();
  });
});
