// Domains and alias domains through /api/v1/domains, /api/v1/alias-domains and the console
// pages, against real MariaDB and Redis: mailcow's limits and rules, the role and ACL checks on
// the object itself (a domain admin gets 404 for another domain), and an audit row per change.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from '../support/env.js';
import { seedAdminAccount, seedDomain, seedMailbox } from '../support/seed.js';
import { consoleClient } from './console-client.js';

const ORIGIN = 'https://admin.example.org';
let postern: TestPostern;
const root = consoleClient(() => postern, ORIGIN);
const desk = consoleClient(() => postern, ORIGIN);

async function auditOf(target: string) {
  const rows = await postern.deps.db.many<{
    actor: string;
    actor_kind: string;
    action: string;
    domain: string | null;
    before_values: unknown;
    after_values: unknown;
  }>(
    'SELECT actor, actor_kind, action, domain, before_values, after_values FROM postern_audit WHERE target = ? ORDER BY id',
    [target],
  );
  const json = (value: unknown) => (typeof value === 'string' ? JSON.parse(value) : value);
  return rows.map((row) => ({ ...row, before: json(row.before_values), after: json(row.after_values) }));
}

beforeAll(async () => {
  postern = await startTestPostern('console_domains', { POSTERN_PUBLIC_URL: ORIGIN, POSTERN_BCRYPT_COST: '4' });
  const { db } = postern.deps;
  await seedDomain(db, 'desk.example');
  await seedDomain(db, 'other.example');
  await seedMailbox(db, { username: 'bob@other.example', passwordHash: '{PLAIN}x' });
  await seedAdminAccount(postern, { username: 'root', password: 'root passphrase 01', superadmin: true });
  await seedAdminAccount(postern, {
    username: 'desk',
    password: 'desk passphrase 02',
    superadmin: false,
    domains: ['desk.example'],
  });
  await root.signIn('root', 'root passphrase 01');
  await desk.signIn('desk', 'desk passphrase 02');
});

afterAll(async () => {
  await postern?.destroy();
});

describe('domains API', () => {
  it("creates a domain with mailcow's defaults, IDN names in ASCII, and audits it", async () => {
    const created = await root.api('POST', '/domains', { domain: ' Bücher.Example ' });
    expect(created.status).toBe(201);
    expect(created.json()).toMatchObject({
      domain: 'xn--bcher-kva.example',
      description: 'xn--bcher-kva.example',
      active: 1,
      mailboxes: 10,
      aliases: 400,
      defquota: 3072,
      maxquota: 10240,
      quota: 10240,
    });
    const audit = await auditOf('xn--bcher-kva.example');
    expect(audit).toMatchObject([
      { actor: 'root', action: 'domain.create', domain: 'xn--bcher-kva.example', after: { quota: 10240 } },
    ]);
  });

  it("refuses mailcow's invalid limits and a taken name, with the field named", async () => {
    const tooBig = await root.api('POST', '/domains', { domain: 'limits.example', defquota: 2000, maxquota: 1000 });
    expect(tooBig.status).toBe(400);
    expect(tooBig.text).toContain('default mailbox quota exceeds the largest');
    const overDomain = await root.api('POST', '/domains', { domain: 'limits.example', maxquota: 5000, quota: 4000 });
    expect(overDomain.text).toContain('largest mailbox quota exceeds the domain quota');
    const zero = await root.api('POST', '/domains', { domain: 'limits.example', defquota: 0 });
    expect(zero.status).toBe(400);
    expect((await root.api('POST', '/domains', { domain: 'not a domain' })).status).toBe(400);
    const taken = await root.api('POST', '/domains', { domain: 'other.example' });
    expect(taken.status).toBe(409);
    expect((await root.api('POST', '/domains', { domain: 'limits.example', colour: 'red' })).status).toBe(400);
  });

  it('edits limits, refuses limits below what the domain holds', async () => {
    await postern.deps.db.execute("UPDATE mailbox SET quota = 2048 * 1048576 WHERE username = 'bob@other.example'");
    const edited = await root.api('PATCH', '/domains/other.example', { description: 'Other', mailboxes: 5, active: 0 });
    expect(edited.json()).toMatchObject({ description: 'Other', mailboxes: 5, active: 0 });
    const below = await root.api('PATCH', '/domains/other.example', { defquota: 1000, maxquota: 1024 });
    expect(below.status).toBe(409);
    expect(below.text).toContain('already has 2048 MiB');
    const tooFew = await root.api('PATCH', '/domains/other.example', { mailboxes: 0 });
    expect(tooFew.text).toContain('already has 1 mailboxes');
    const audit = await auditOf('other.example');
    expect(audit.map((row) => row.action)).toEqual(['domain.update']);
    expect(audit[0]).toMatchObject({
      actor: 'root',
      actor_kind: 'admin',
      domain: 'other.example',
      before: { description: 'test domain other.example', mailboxes: 0, active: 1 },
      after: { description: 'Other', mailboxes: 5, active: 0 },
    });
    await root.api('PATCH', '/domains/other.example', { active: true });
  });

  it('deletes a domain only when it has no mailbox', async () => {
    const refused = await root.api('DELETE', '/domains/other.example');
    expect(refused.status).toBe(409);
    expect(refused.text).toContain('still has 1 mailbox');
    await root.api('POST', '/domains', { domain: 'empty.example' });
    await root.api('POST', '/alias-domains', { alias_domain: 'empty-alias.example', target_domain: 'empty.example' });
    expect((await root.api('DELETE', '/domains/empty.example')).status).toBe(200);
    expect((await root.api('GET', '/domains/empty.example')).status).toBe(404);
    expect((await root.api('GET', '/alias-domains/empty-alias.example')).status).toBe(404);
    expect((await auditOf('empty.example')).map((row) => row.action)).toEqual(['domain.create', 'domain.delete']);
  });

  it('shows a domain admin only its domains, 404 for others, and lets it change only the description', async () => {
    const list = await desk.api('GET', '/domains');
    expect((list.json().domains as { domain: string }[]).map((row) => row.domain)).toEqual(['desk.example']);
    const outside = await desk.api('GET', '/domains/other.example');
    const missing = await desk.api('GET', '/domains/missing.example');
    expect(outside.status).toBe(404);
    expect(outside.text.replace('other.example', 'X')).toBe(missing.text.replace('missing.example', 'X'));
    expect((await desk.api('PATCH', '/domains/other.example', { description: 'x' })).status).toBe(404);
    expect((await desk.api('PATCH', '/domains/desk.example', { description: 'Desk' })).json()).toMatchObject({
      description: 'Desk',
    });
    expect((await desk.api('PATCH', '/domains/desk.example', { quota: 1 })).status).toBe(403);
    expect((await desk.api('POST', '/domains', { domain: 'mine.example' })).status).toBe(403);
    expect((await desk.api('DELETE', '/domains/desk.example')).status).toBe(403);
  });
});

describe('alias domains API', () => {
  it('creates, deactivates, activates and deletes an alias domain, each audited', async () => {
    const created = await desk.api('POST', '/alias-domains', {
      alias_domain: 'desk.example.net',
      target_domain: 'desk.example',
    });
    expect(created.status).toBe(201);
    expect(created.json()).toMatchObject({
      alias_domain: 'desk.example.net',
      target_domain: 'desk.example',
      active: 1,
    });
    expect((await desk.api('PATCH', '/alias-domains/desk.example.net', { active: false })).json()).toMatchObject({
      active: 0,
    });
    expect((await desk.api('PATCH', '/alias-domains/desk.example.net', { active: true })).json()).toMatchObject({
      active: 1,
    });
    expect((await desk.api('DELETE', '/alias-domains/desk.example.net')).status).toBe(200);
    expect((await auditOf('desk.example.net')).map((row) => `${row.actor} ${row.action}`)).toEqual([
      'desk alias_domain.create',
      'desk alias_domain.deactivate',
      'desk alias_domain.activate',
      'desk alias_domain.delete',
    ]);
  });

  it("refuses mailcow's invalid alias domains; a domain admin cannot point one at another domain", async () => {
    expect(
      (await root.api('POST', '/alias-domains', { alias_domain: 'desk.example', target_domain: 'desk.example' }))
        .status,
    ).toBe(400);
    expect(
      (await root.api('POST', '/alias-domains', { alias_domain: 'other.example', target_domain: 'desk.example' }))
        .status,
    ).toBe(409);
    expect(
      (await root.api('POST', '/alias-domains', { alias_domain: 'x.example', target_domain: 'missing.example' }))
        .status,
    ).toBe(404);
    expect(
      (await desk.api('POST', '/alias-domains', { alias_domain: 'y.example', target_domain: 'other.example' })).status,
    ).toBe(404);
    await root.api('POST', '/alias-domains', { alias_domain: 'other.example.net', target_domain: 'other.example' });
    expect((await desk.api('GET', '/alias-domains/other.example.net')).status).toBe(404);
    expect((await desk.api('DELETE', '/alias-domains/other.example.net')).status).toBe(404);
    const mine = await desk.api('GET', '/alias-domains');
    expect(mine.json().alias_domains).toEqual([]);
  });
});

describe('domain pages', () => {
  it('creates a domain from the form and shows it in the list', async () => {
    const form = await root.request('GET', '/admin/domains/new');
    expect(form.status).toBe(200);
    for (const name of ['domain', 'description', 'mailboxes', 'aliases', 'defquota', 'maxquota', 'quota']) {
      expect(form.text).toContain(`<label for="f-${name}">`);
    }
    const created = await root.post('/admin/domains', {
      domain: 'form.example',
      description: 'From the form',
      active: '1',
      gal: '1',
      mailboxes: '20',
      aliases: '50',
      defquota: '1024',
      maxquota: '2048',
      quota: '8192',
    });
    expect(created).toMatchObject({ status: 303, location: '/admin/domains/form.example?notice=created' });
    const page = await root.request('GET', '/admin/domains/form.example?notice=created');
    expect(page.text).toContain('The domain was created.');
    expect(page.text).toContain('value="From the form"');
    const list = await root.request('GET', '/admin/domains?q=form');
    expect(list.text).toContain('<a href="/admin/domains/form.example">form.example</a>');
    expect(list.text).not.toContain('desk.example</a>');
  });

  it('shows form errors next to the form, keeping what was typed', async () => {
    const refused = await root.post('/admin/domains', {
      domain: 'bad.example',
      mailboxes: '1',
      aliases: '1',
      defquota: '4096',
      maxquota: '1024',
      quota: '8192',
    });
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('role="alert"');
    expect(refused.text).toContain('the default mailbox quota exceeds the largest mailbox quota');
    expect(refused.text).toContain('value="bad.example"');
  });

  it('refuses the form without the token or from another origin', async () => {
    const noToken = await root.request('POST', '/admin/domains', { form: { domain: 'csrf.example' } });
    expect(noToken.status).toBe(403);
    const foreign = await root.request(
      'POST',
      '/admin/domains',
      { form: { csrf: root.csrf, domain: 'csrf.example' } },
      { origin: 'https://evil.example' },
    );
    expect(foreign.status).toBe(403);
    expect((await root.api('GET', '/domains/csrf.example')).status).toBe(404);
  });

  it("gives a domain admin its domain's page, 404 for another's, and no new-domain form", async () => {
    const list = await desk.request('GET', '/admin/domains');
    expect(list.text).toContain('desk.example');
    expect(list.text).not.toContain('other.example');
    expect(list.text).not.toContain('/admin/domains/new');
    expect((await desk.request('GET', '/admin/domains/other.example')).status).toBe(404);
    expect((await desk.request('GET', '/admin/domains/new')).status).toBe(403);
    expect((await desk.post('/admin/domains/other.example', { description: 'x' })).status).toBe(404);
    const saved = await desk.post('/admin/domains/desk.example', { description: 'Desk team' });
    expect(saved.location).toBe('/admin/domains/desk.example?notice=saved');
  });

  it('deletes an empty domain after a confirmation page', async () => {
    const confirm = await root.request('GET', '/admin/domains/form.example/delete');
    expect(confirm.text).toContain('It cannot be undone.');
    expect(await root.post('/admin/domains/form.example/delete')).toMatchObject({
      status: 303,
      location: '/admin/domains?notice=deleted',
    });
    expect((await root.request('GET', '/admin/domains/form.example')).status).toBe(404);
  });

  it('adds, deactivates and deletes an alias domain from the domain page', async () => {
    expect(
      await root.post('/admin/alias-domains', {
        alias_domain: 'form-alias.example',
        target_domain: 'desk.example',
        active: '1',
      }),
    ).toMatchObject({ status: 303, location: '/admin/domains/desk.example?notice=alias-created' });
    expect((await root.post('/admin/alias-domains/form-alias.example/active', { active: '0' })).location).toContain(
      'alias-deactivated',
    );
    const page = await desk.request('GET', '/admin/domains/desk.example');
    expect(page.text).toContain('form-alias.example');
    expect(page.text).toContain('inactive');
    expect((await desk.post('/admin/alias-domains/form-alias.example/delete')).location).toContain('alias-deleted');
  });
});
