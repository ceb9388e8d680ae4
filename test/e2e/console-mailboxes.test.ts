// Mailboxes through /api/v1/mailboxes and the console pages, against real MariaDB and Redis:
// creation with the rows mailcow adds and a POSTERN_PASSWORD_SCHEME hash, mailcow's quota and
// count limits, keyset paging and search, edit/disable/password/auth source, app passwords, last
// logins from sasl_log, delete (rows only; the maildir is Dovecot's), and the ACL on the object.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertMailboxTemplate } from '../../src/storage/templates.js';
import { startTestPostern, type TestPostern } from '../support/env.js';
import { seedAdminAccount, seedAppPassword, seedDomain, seedMailbox } from '../support/seed.js';
import { consoleClient } from './console-client.js';

const ORIGIN = 'https://admin.example.org';
const MIB = 1024 * 1024;
let postern: TestPostern;
const root = consoleClient(() => postern, ORIGIN);
const desk = consoleClient(() => postern, ORIGIN);

async function storedHash(username: string) {
  return (
    await postern.deps.db.one<{ password: string }>('SELECT password FROM mailbox WHERE username = ?', [username])
  )?.password;
}

beforeAll(async () => {
  postern = await startTestPostern('console_mailboxes', {
    POSTERN_PUBLIC_URL: ORIGIN,
    POSTERN_BCRYPT_COST: '4',
    POSTERN_PASSWORD_SCHEME: 'SHA512-CRYPT',
  });
  const { db } = postern.deps;
  await seedDomain(db, 'seeded.example');
  await seedAdminAccount(postern, { username: 'root', password: 'root passphrase 01', superadmin: true });
  await root.signIn('root', 'root passphrase 01');
  for (const domain of ['desk.example', 'other.example']) {
    expect(
      (await root.api('POST', '/domains', { domain, mailboxes: 3, defquota: 512, maxquota: 2048, quota: 4096 })).status,
    ).toBe(201);
  }
  await seedMailbox(db, { username: 'bob@other.example', passwordHash: '{PLAIN}x' });
  await seedAdminAccount(postern, {
    username: 'desk',
    password: 'desk passphrase 02',
    superadmin: false,
    domains: ['desk.example'],
  });
  await desk.signIn('desk', 'desk passphrase 02');
});

afterAll(async () => {
  await postern?.destroy();
});

describe('mailboxes API', () => {
  it('creates a mailbox with the rows mailcow adds and a hash of the configured scheme', async () => {
    const created = await desk.api('POST', '/mailboxes', {
      local_part: 'Alice',
      domain: 'desk.example',
      name: 'Alice A.',
      password: 'alice password 1',
      quota: 1024,
    });
    expect(created.status).toBe(201);
    expect(created.json()).toMatchObject({
      username: 'alice@desk.example',
      name: 'Alice A.',
      quota: 1024 * MIB,
      active: 1,
      authsource: 'mailcow',
      has_local_password: true,
    });
    const { db, hashPool } = postern.deps;
    const hash = (await storedHash('alice@desk.example')) ?? '';
    expect(hash.startsWith('{SHA512-CRYPT}$6$')).toBe(true);
    expect(await hashPool.verify(hash, 'alice password 1')).toMatchObject({ ok: true });
    expect(await db.one('SELECT goto FROM alias WHERE address = ?', ['alice@desk.example'])).toEqual({
      goto: 'alice@desk.example',
    });
    expect(await db.one('SELECT bytes FROM quota2 WHERE username = ?', ['alice@desk.example'])).toBeDefined();
    expect(await db.one('SELECT bytes FROM quota2replica WHERE username = ?', ['alice@desk.example'])).toBeDefined();
    expect(await db.one('SELECT app_passwds FROM user_acl WHERE username = ?', ['alice@desk.example'])).toBeDefined();
    const audit = await db.many<{ action: string; after_values: unknown; actor_kind: string }>(
      "SELECT action, after_values, actor_kind FROM postern_audit WHERE target = 'alice@desk.example'",
    );
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ action: 'mailbox.create', actor_kind: 'admin' });
    expect(JSON.stringify(audit)).not.toContain('alice password 1');
  });

  it("refuses what mailcow refuses: quota over the domain's limits, unlimited for a domain admin, too many mailboxes", async () => {
    const base = { domain: 'desk.example', password: 'long enough pw' };
    expect((await desk.api('POST', '/mailboxes', { ...base, local_part: 'big', quota: 4096 })).text).toContain(
      'largest mailbox quota (2048 MiB)',
    );
    expect((await desk.api('POST', '/mailboxes', { ...base, local_part: 'free', quota: 0 })).status).toBe(403);
    expect((await desk.api('POST', '/mailboxes', { ...base, local_part: 'short', password: 'short' })).status).toBe(
      400,
    );
    expect((await desk.api('POST', '/mailboxes', { ...base, local_part: 'alice' })).status).toBe(409);
    expect((await desk.api('POST', '/mailboxes', { ...base, local_part: 'b2', quota: 2048 })).status).toBe(201);
    const left = await desk.api('POST', '/mailboxes', { ...base, local_part: 'b3', quota: 2048 });
    expect(left.status).toBe(409);
    expect(left.text).toContain('only 1024 MiB');
    expect((await desk.api('POST', '/mailboxes', { ...base, local_part: 'b3', quota: 512 })).status).toBe(201);
    const full = await desk.api('POST', '/mailboxes', { ...base, local_part: 'b4', quota: 1 });
    expect(full.status).toBe(409);
    expect(full.text).toContain('already has 3 of 3 mailboxes');
    expect((await desk.api('POST', '/mailboxes', { ...base, domain: 'other.example', local_part: 'x' })).status).toBe(
      404,
    );
  });

  it('lists by address with keyset paging, search and a domain filter; a domain admin sees its domain only', async () => {
    const first = await root.api('GET', '/mailboxes?limit=2');
    const page1 = first.json() as { mailboxes: { username: string }[]; next: string };
    expect(page1.mailboxes.map((row) => row.username)).toEqual(['alice@desk.example', 'b2@desk.example']);
    const page2 = (await root.api('GET', `/mailboxes?limit=2&after=${encodeURIComponent(page1.next)}`)).json() as {
      mailboxes: { username: string }[];
    };
    expect(page2.mailboxes.map((row) => row.username)).toEqual(['b3@desk.example', 'bob@other.example']);
    const search = (await root.api('GET', '/mailboxes?search=B')).json() as { mailboxes: { username: string }[] };
    expect(search.mailboxes.map((row) => row.username)).toEqual([
      'b2@desk.example',
      'b3@desk.example',
      'bob@other.example',
    ]);
    const byDomain = (await root.api('GET', '/mailboxes?domain=other.example')).json() as {
      mailboxes: { username: string }[];
    };
    expect(byDomain.mailboxes.map((row) => row.username)).toEqual(['bob@other.example']);
    const mine = (await desk.api('GET', '/mailboxes')).json() as { mailboxes: { username: string }[] };
    expect(mine.mailboxes.map((row) => row.username)).not.toContain('bob@other.example');
    expect((await desk.api('GET', '/mailboxes?domain=other.example')).json()).toMatchObject({ mailboxes: [] });
  });

  it('edits name, quota, state and protocol flags, auditing before and after', async () => {
    const edited = await desk.api('PATCH', '/mailboxes/alice@desk.example', {
      name: 'Alice B.',
      quota: 512,
      active: 0,
      protocols: { imap_access: false, pop3_access: false },
    });
    expect(edited.status).toBe(200);
    expect(edited.json()).toMatchObject({ name: 'Alice B.', quota: 512 * MIB, active: 0 });
    expect((edited.json().attributes as Record<string, string>).imap_access).toBe('0');
    const row = await postern.deps.db.one<{ before_values: unknown; after_values: unknown; action: string }>(
      "SELECT action, before_values, after_values FROM postern_audit WHERE target = 'alice@desk.example' ORDER BY id DESC LIMIT 1",
    );
    const json = (value: unknown) => (typeof value === 'string' ? JSON.parse(value) : value);
    expect(row?.action).toBe('mailbox.disable');
    expect(json(row?.before_values)).toEqual({
      name: 'Alice A.',
      quota_mib: 1024,
      active: 1,
      imap_access: true,
      pop3_access: true,
    });
    expect(json(row?.after_values)).toEqual({
      name: 'Alice B.',
      quota_mib: 512,
      active: 0,
      imap_access: false,
      pop3_access: false,
    });
    expect((await desk.api('PATCH', '/mailboxes/alice@desk.example', { quota: 4096 })).status).toBe(400);
    await desk.api('PATCH', '/mailboxes/alice@desk.example', { active: 1, protocols: { imap_access: true } });
  });

  it('sets a new password (hashed), refuses one for an IdP mailbox and a switch to an unconfigured IdP', async () => {
    const before = await storedHash('alice@desk.example');
    expect(
      (await desk.api('PUT', '/mailboxes/alice@desk.example/password', { password: 'new alice pw 2' })).status,
    ).toBe(200);
    const after = (await storedHash('alice@desk.example')) ?? '';
    expect(after).not.toBe(before);
    expect(await postern.deps.hashPool.verify(after, 'new alice pw 2')).toMatchObject({ ok: true });
    expect((await desk.api('PUT', '/mailboxes/alice@desk.example/authsource', { authsource: 'keycloak' })).status).toBe(
      409,
    );
    await postern.deps.db.execute("UPDATE mailbox SET authsource = 'keycloak' WHERE username = 'b3@desk.example'");
    const idp = await desk.api('PUT', '/mailboxes/b3@desk.example/password', { password: 'whatever pw 3' });
    expect(idp.status).toBe(409);
    expect(idp.text).toContain('signs in through keycloak');
    expect((await desk.api('PUT', '/mailboxes/b3@desk.example/authsource', { authsource: 'mailcow' })).status).toBe(
      200,
    );
  });

  it('answers a domain admin 404 for another domain’s mailbox on every route, like a missing one', async () => {
    for (const [method, path, body] of [
      ['GET', '/mailboxes/bob@other.example', undefined],
      ['PATCH', '/mailboxes/bob@other.example', { name: 'x' }],
      ['PUT', '/mailboxes/bob@other.example/password', { password: 'long enough pw' }],
      ['DELETE', '/mailboxes/bob@other.example', undefined],
      ['GET', '/mailboxes/bob@other.example/logins', undefined],
    ] as const) {
      expect((await desk.api(method, path, body)).status).toBe(404);
    }
  });

  it('shows last logins from sasl_log', async () => {
    await postern.deps.db.execute(
      "INSERT INTO sasl_log (service, app_password, username, real_rip, datetime) VALUES ('imap', NULL, 'alice@desk.example', '192.0.2.7', NOW())",
    );
    const logins = (await desk.api('GET', '/mailboxes/alice@desk.example/logins')).json();
    expect(logins).toMatchObject({ logins: [{ service: 'imap', ip: '192.0.2.7', app_password: null }] });
    // The mailbox's console page shows them, and its audit entries.
    const page = await desk.request('GET', '/admin/mailboxes/alice%40desk.example');
    expect(page.status).toBe(200);
    const table = (id: string) =>
      [...(new RegExp(`<table id="${id}">(.*?)</table>`, 's').exec(page.text)?.[1] ?? '').matchAll(/<tr>(.*?)<\/tr>/gs)]
        .slice(1)
        .map((row) => [...(row[1] ?? '').matchAll(/<td>(.*?)<\/td>/g)].map((cell) => cell[1]));
    expect(table('last-logins')).toEqual([[expect.stringMatching(/ UTC$/), 'imap', '192.0.2.7', 'password']]);
    expect(table('mailbox-audit').map((row) => row.slice(1))).toEqual(
      expect.arrayContaining([
        ['desk', 'mailbox.create', 'success'],
        ['desk', 'mailbox.disable', 'success'],
      ]),
    );
  });

  it('deletes a mailbox with its rows, takes it out of other aliases, leaves the maildir to Dovecot', async () => {
    const { db } = postern.deps;
    await db.execute(
      "INSERT INTO alias (address, goto, domain, active) VALUES ('team@desk.example', 'b2@desk.example,alice@desk.example', 'desk.example', 1)",
    );
    const deleted = await desk.api('DELETE', '/mailboxes/b2@desk.example');
    expect(deleted.json()).toMatchObject({ success: true, maildir: expect.stringContaining('Dovecot') });
    expect(await db.one("SELECT username FROM mailbox WHERE username = 'b2@desk.example'")).toBeUndefined();
    expect(await db.one("SELECT address FROM alias WHERE address = 'b2@desk.example'")).toBeUndefined();
    expect(await db.one("SELECT username FROM quota2 WHERE username = 'b2@desk.example'")).toBeUndefined();
    expect(await db.one("SELECT goto FROM alias WHERE address = 'team@desk.example'")).toEqual({
      goto: 'alice@desk.example',
    });
  });
});

describe('mailbox pages', () => {
  it('creates a mailbox from the form, with labelled inputs and the two passwords compared', async () => {
    const form = await desk.request('GET', '/admin/mailboxes/new?domain=desk.example');
    for (const name of ['local_part', 'domain', 'name', 'password', 'password2', 'quota']) {
      expect(form.text).toContain(`<label for="f-${name}">`);
    }
    expect(form.text).not.toContain('other.example');
    const differ = await desk.post('/admin/mailboxes', {
      local_part: 'carol',
      domain: 'desk.example',
      password: 'carol password 1',
      password2: 'carol password 2',
    });
    expect(differ.status).toBe(400);
    expect(differ.text).toContain('The two passwords differ.');
    const created = await desk.post('/admin/mailboxes', {
      local_part: 'carol',
      domain: 'desk.example',
      name: 'Carol',
      password: 'carol password 1',
      password2: 'carol password 1',
      quota: '',
    });
    expect(created).toMatchObject({ status: 303, location: '/admin/mailboxes/carol%40desk.example?notice=created' });
    const page = await desk.request('GET', '/admin/mailboxes/carol%40desk.example');
    expect(page.status).toBe(200);
    // No quota typed: the domain's default quota of a new mailbox (defquota, 512 MiB here).
    expect(page.text).toContain('name="quota" value="512"');
    expect(page.text).toContain('<legend>Protocols this mailbox may use</legend>');
  });

  it('offers the mailbox templates and creates the mailbox from the chosen one', async () => {
    const { db } = postern.deps;
    await insertMailboxTemplate(db, 'Default', { quota: 0, imap_access: 1, pop3_access: 1 });
    await insertMailboxTemplate(db, 'No POP', { imap_access: 1, pop3_access: 0, acl_app_passwds: 0 });
    // desk.example holds its 3 mailboxes by now; make room for one more.
    expect((await root.api('PATCH', '/domains/desk.example', { mailboxes: 4 })).status).toBe(200);
    const form = await desk.request('GET', '/admin/mailboxes/new');
    expect(form.text).toContain('<label for="f-template">');
    expect(form.text).toContain('<option value="No POP">No POP</option>');
    const created = await desk.post('/admin/mailboxes', {
      local_part: 'dana',
      domain: 'desk.example',
      password: 'dana password 1',
      password2: 'dana password 1',
      template: 'No POP',
    });
    expect(created.status).toBe(303);
    const row = await db.one<{ attributes: unknown }>(
      "SELECT attributes FROM mailbox WHERE username = 'dana@desk.example'",
    );
    const attributes = typeof row?.attributes === 'string' ? JSON.parse(row.attributes) : row?.attributes;
    expect(attributes).toMatchObject({ imap_access: '1', pop3_access: '0' });
    expect(await db.one("SELECT app_passwds FROM user_acl WHERE username = 'dana@desk.example'")).toEqual({
      app_passwds: 0,
    });
    expect((await desk.api('DELETE', '/mailboxes/dana@desk.example')).status).toBe(200);
  });

  it('lists mailboxes, 404s another domain’s mailbox page, revokes an app password, deletes after confirmation', async () => {
    const list = await desk.request('GET', '/admin/mailboxes');
    expect(list.text).toContain('carol@desk.example');
    expect(list.text).not.toContain('bob@other.example');
    expect((await desk.request('GET', '/admin/mailboxes/bob%40other.example')).status).toBe(404);
    expect((await desk.post('/admin/mailboxes/bob%40other.example/delete')).status).toBe(404);
    const id = await seedAppPassword(postern.deps.db, {
      mailbox: 'carol@desk.example',
      passwordHash: '{PLAIN}app',
      protocols: ['imap_access'],
      name: 'phone',
    });
    expect((await desk.request('GET', '/admin/mailboxes/carol%40desk.example')).text).toContain('phone');
    expect((await desk.post(`/admin/mailboxes/carol%40desk.example/app-passwords/${id}/revoke`)).location).toContain(
      'notice=revoked',
    );
    const confirm = await desk.request('GET', '/admin/mailboxes/carol%40desk.example/delete');
    expect(confirm.text).toContain('the maildir is Dovecot&#39;s business');
    expect((await desk.post('/admin/mailboxes/carol%40desk.example/delete')).location).toBe(
      '/admin/mailboxes?notice=deleted',
    );
    expect((await desk.request('GET', '/admin/mailboxes/carol%40desk.example')).status).toBe(404);
  });
});
