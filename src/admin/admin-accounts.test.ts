// Admin accounts against the real MariaDB: rows as mailcow writes them, input denials, and the
// rule that the last active superadmin can be neither deleted, disabled nor demoted, even when
// two changes race.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dropDatabase, MYSQL_ROOT_URL, uniqueName } from '../../test/support/env.js';
import { createLogger } from '../log.js';
import { hashPassword } from '../passwords/hash-password.js';
import { verifyPasswordHash } from '../passwords/verify-password-hash.js';
import { findAdminCredential } from '../storage/admins.js';
import { createDb, type Db } from '../storage/db.js';
import { applyMigrations } from '../storage/migrate.js';
import {
  type AdminAccountDeps,
  changeAdminAccount,
  createAdminAccount,
  deleteAdminAccount,
  setAdminPassword,
} from './admin-accounts.js';

const name = uniqueName('admins');
let db: Db;
let deps: AdminAccountDeps;
const PASSWORD = 'correct horse battery';

beforeAll(async () => {
  db = await createDb({ url: `${MYSQL_ROOT_URL}/${name}`, poolSize: 4, createDatabase: true });
  await applyMigrations(db, createLogger('silent'));
  deps = {
    db,
    hashPool: { hash: (password, scheme) => hashPassword(password, scheme, { bcryptCost: 4 }) },
    passwordScheme: 'BLF-CRYPT',
  };
  await db.execute("INSERT INTO domain (domain) VALUES ('example.org'), ('two.example')");
});

afterAll(async () => {
  await db?.close();
  await dropDatabase(name);
});

beforeEach(async () => {
  await db.execute('DELETE FROM domain_admins');
  await db.execute('DELETE FROM admin');
});

async function create(username: string, superadmin: boolean, domains: string[] = []) {
  const outcome = await createAdminAccount(deps, { username, password: PASSWORD, superadmin, domains });
  if (!outcome.ok) throw new Error(outcome.message);
  return outcome.value;
}

describe('createAdminAccount', () => {
  it("writes a superadmin as mailcow does: superadmin = 1, a BLF-CRYPT hash, domain_admins 'ALL'", async () => {
    const account = await create('Root', true);
    expect(account).toMatchObject({ username: 'root', superadmin: true, active: true, domains: [] });
    const row = await db.one<{ superadmin: number; active: number; attributes: unknown }>(
      'SELECT superadmin, active, attributes FROM admin WHERE username = ?',
      ['root'],
    );
    expect(row).toMatchObject({ superadmin: 1, active: 1 });
    const attributes = typeof row?.attributes === 'string' ? JSON.parse(row.attributes) : row?.attributes;
    expect(attributes).toEqual({ force_tfa: 0, force_pw_update: 0 });
    expect(await db.many('SELECT domain, active FROM domain_admins WHERE username = ?', ['root'])).toEqual([
      { domain: 'ALL', active: 1 },
    ]);
    const credential = await findAdminCredential(db, 'root');
    expect(credential?.passwordHash).toMatch(/^\{BLF-CRYPT\}\$2[by]\$04\$/);
    expect(await verifyPasswordHash(credential?.passwordHash ?? '', PASSWORD, { allowPlaintext: false })).toMatchObject(
      { ok: true },
    );
  });

  it('writes a domain admin with superadmin = 0 and one domain_admins row per domain', async () => {
    const account = await create('helpdesk', false, ['Two.Example', 'example.org', 'example.org']);
    expect(account).toMatchObject({ superadmin: false, domains: ['example.org', 'two.example'] });
    expect(await db.many('SELECT domain FROM domain_admins WHERE username = ? ORDER BY domain', ['helpdesk'])).toEqual([
      { domain: 'example.org' },
      { domain: 'two.example' },
    ]);
  });

  it.each([
    ['a username with a space', { username: 'two words' }, 'invalid_username'],
    ['a username with @', { username: 'a@example.org' }, 'invalid_username'],
    ["mailcow's reserved API", { username: 'API' }, 'invalid_username'],
    ['a short password', { password: 'short' }, 'weak_password'],
    ['a domain admin without domains', { superadmin: false, domains: [] }, 'no_domains'],
    ['a domain that does not exist', { superadmin: false, domains: ['nowhere.example'] }, 'unknown_domain'],
  ])('refuses %s', async (_title, override, denial) => {
    const outcome = await createAdminAccount(deps, {
      username: 'someone',
      password: PASSWORD,
      superadmin: true,
      ...override,
    });
    expect(outcome).toMatchObject({ ok: false, denial });
    expect(await db.many('SELECT username FROM admin')).toEqual([]);
  });

  it('refuses a second account of the same name', async () => {
    await create('root', true);
    expect(await createAdminAccount(deps, { username: 'ROOT', password: PASSWORD, superadmin: true })).toMatchObject({
      ok: false,
      denial: 'exists',
    });
  });
});

describe('the last active superadmin', () => {
  it.each([
    ['deleted', () => deleteAdminAccount(deps, 'root')],
    ['disabled', () => changeAdminAccount(deps, 'root', { active: false })],
    ['demoted', () => changeAdminAccount(deps, 'root', { superadmin: false, domains: ['example.org'] })],
  ])('cannot be %s, and is left as it was', async (_verb, attempt) => {
    await create('root', true);
    await create('helpdesk', false, ['example.org']);
    const outcome = await attempt();
    expect(outcome).toMatchObject({ ok: false, denial: 'last_superadmin' });
    expect(outcome.ok || outcome.message).toMatch(/last active superadmin/);
    expect(await db.one('SELECT superadmin, active FROM admin WHERE username = ?', ['root'])).toEqual({
      superadmin: 1,
      active: 1,
    });
  });

  it('can be changed once another active superadmin exists; a disabled one does not count', async () => {
    await create('root', true);
    await create('second', true);
    expect(await changeAdminAccount(deps, 'second', { active: false })).toMatchObject({ ok: true });
    expect(await deleteAdminAccount(deps, 'root')).toMatchObject({ ok: false, denial: 'last_superadmin' });
    expect(await changeAdminAccount(deps, 'second', { active: true })).toMatchObject({ ok: true });
    expect(await deleteAdminAccount(deps, 'root')).toMatchObject({ ok: true });
    expect(await db.many('SELECT username FROM domain_admins WHERE username = ?', ['root'])).toEqual([]);
  });

  it('survives two superadmins demoting each other at the same time: exactly one change wins', async () => {
    await create('alpha', true);
    await create('beta', true);
    const outcomes = await Promise.all([
      changeAdminAccount(deps, 'alpha', { superadmin: false, domains: ['example.org'] }),
      changeAdminAccount(deps, 'beta', { superadmin: false, domains: ['example.org'] }),
    ]);
    expect(outcomes.filter((outcome) => outcome.ok)).toHaveLength(1);
    expect(outcomes.filter((outcome) => !outcome.ok && outcome.denial === 'last_superadmin')).toHaveLength(1);
    expect(await db.many('SELECT username FROM admin WHERE superadmin = 1 AND active = 1')).toHaveLength(1);
  });

  it('lets a domain admin be disabled, re-scoped and deleted freely', async () => {
    await create('root', true);
    await create('helpdesk', false, ['example.org']);
    const changed = await changeAdminAccount(deps, 'helpdesk', { domains: ['two.example'], active: false });
    expect(changed).toMatchObject({
      ok: true,
      value: { before: { domains: ['example.org'], active: true }, after: { domains: [], active: false } },
    });
    expect(await db.many('SELECT domain, active FROM domain_admins WHERE username = ?', ['helpdesk'])).toEqual([
      { domain: 'two.example', active: 0 },
    ]);
    expect(await deleteAdminAccount(deps, 'helpdesk')).toMatchObject({ ok: true });
  });
});

describe('setAdminPassword', () => {
  it('replaces the hash; the old password stops matching', async () => {
    await create('root', true);
    expect(await setAdminPassword(deps, 'root', 'a brand new passphrase')).toMatchObject({ ok: true });
    const hash = (await findAdminCredential(db, 'root'))?.passwordHash ?? '';
    expect(await verifyPasswordHash(hash, PASSWORD, { allowPlaintext: false })).toMatchObject({ ok: false });
    expect(await verifyPasswordHash(hash, 'a brand new passphrase', { allowPlaintext: false })).toMatchObject({
      ok: true,
    });
  });

  it('says not_found for an unknown admin', async () => {
    expect(await setAdminPassword(deps, 'ghost', PASSWORD)).toMatchObject({ ok: false, denial: 'not_found' });
  });
});
