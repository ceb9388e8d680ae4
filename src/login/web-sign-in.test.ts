// Provisioning rules and the local-password sign-in against real MariaDB and Redis (no browser,
// no IdP: the identity is what a validated callback would have produced).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from '../../test/support/env.js';
import { seedAliasDomain, seedDomain, seedMailbox } from '../../test/support/seed.js';
import { type IdpSettings, idpSettingsSchema } from '../sources/idp-settings.js';
import { redirectUriFor } from '../sources/oidc-client.js';
import { insertMailboxTemplate } from '../storage/templates.js';
import type { PasswordLogin } from './password-login.js';
import { provisionSsoMailbox, type SsoIdentity } from './provision-sso-mailbox.js';

const GOLD = { quota: 3 * 1024 ** 3, imap_access: '1', pop3_access: '0', active: '1' };
const SILVER = { quota: 1024 ** 3, imap_access: '0', pop3_access: '1', active: '1' };
const FALLBACK = { quota: 1024 ** 2, imap_access: '1', active: '1' };
const PARKED = { quota: 1024 ** 2, active: '2' };

let postern: TestPostern;
let webLogin: PasswordLogin;

function settingsWith(overrides: Record<string, unknown> = {}): IdpSettings {
  return idpSettingsSchema.parse({
    authsource: 'generic-oidc',
    postern_issuer_url: 'https://idp.example/realms/mail',
    client_id: 'postern',
    client_secret: 'secret',
    redirect_url: 'https://mail.example/',
    mappers: ['gold', 'silver', 'parked'],
    templates: ['Gold', 'Silver', 'Parked'],
    ...overrides,
  });
}

const identity = (email: string, attribute?: unknown, name = 'Some One'): SsoIdentity => ({ email, name, attribute });

async function row(username: string) {
  const found = await postern.deps.db.one<{ authsource: string; quota: number; active: number; attributes: unknown }>(
    'SELECT authsource, quota, active, attributes FROM mailbox WHERE username = ?',
    [username],
  );
  if (!found) return undefined;
  const attributes = typeof found.attributes === 'string' ? JSON.parse(found.attributes) : found.attributes;
  return { ...found, attributes: attributes as Record<string, string> };
}

async function hashOf(template: string): Promise<string> {
  const found = await postern.deps.db.one<{ hash: string }>(
    'SELECT SHA1(attributes) AS hash FROM templates WHERE template = ?',
    [template],
  );
  return String(found?.hash);
}

async function lastAudit(actor: string) {
  return postern.deps.db.one<{ action: string; detail: unknown }>(
    'SELECT action, detail FROM postern_audit WHERE actor = ? ORDER BY id DESC LIMIT 1',
    [actor],
  );
}

beforeAll(async () => {
  postern = await startTestPostern('weblogin', { POSTERN_BCRYPT_COST: '5', POSTERN_BAN_USER_THRESHOLD: '3' });
  const { db, hashPool } = postern.deps;
  await seedDomain(db, 'example.org');
  await seedDomain(db, 'sleepy.example', { active: 0 });
  await insertMailboxTemplate(db, 'Gold', GOLD);
  await insertMailboxTemplate(db, 'Silver', SILVER);
  await insertMailboxTemplate(db, 'Fallback', FALLBACK);
  await insertMailboxTemplate(db, 'Parked', PARKED);
  await seedMailbox(db, { username: 'local@example.org', passwordHash: await hashPool.hash('local pw', 'BLF-CRYPT') });
  await seedMailbox(db, { username: 'kc@example.org', passwordHash: '', authsource: 'keycloak' });
  await seedMailbox(db, {
    username: 'off@example.org',
    passwordHash: await hashPool.hash('off pw', 'SSHA256'),
    active: 0,
  });
  await seedAliasDomain(db, 'alias.example', 'example.org');
  await seedMailbox(db, {
    username: 'spelled@example.org',
    passwordHash: await hashPool.hash('spelled pw', 'SSHA256'),
  });
  await seedMailbox(db, {
    username: 'limited@example.org',
    passwordHash: await hashPool.hash('limited pw', 'SSHA256'),
  });
  await seedMailbox(db, {
    username: 'room@example.org',
    passwordHash: '',
    authsource: 'generic-oidc',
    kind: 'location',
  });
  webLogin = postern.deps.passwordLogin;
});

afterAll(async () => {
  await postern?.destroy();
});

describe('provisionSsoMailbox', () => {
  it('creates a missing mailbox from the mapped template with the IdP as its auth source', async () => {
    const outcome = await provisionSsoMailbox(
      postern.deps,
      settingsWith(),
      identity('New.One@Example.org', 'gold', 'New One'),
    );
    expect(outcome).toEqual({
      ok: true,
      username: 'new.one@example.org',
      provisioned: true,
      template: 'Gold',
      templateApplied: true,
    });
    const created = await row('new.one@example.org');
    expect(created).toMatchObject({ authsource: 'generic-oidc', quota: GOLD.quota, active: 1 });
    expect(created?.attributes).toMatchObject({
      imap_access: '1',
      pop3_access: '0',
      force_pw_update: '0',
      attribute_hash: await hashOf('Gold'),
    });
    expect((await lastAudit('new.one@example.org'))?.action).toBe('sso.login');
  });

  it('takes the first mapping for a Keycloak-style array attribute', async () => {
    const outcome = await provisionSsoMailbox(
      postern.deps,
      settingsWith(),
      identity('arr@example.org', ['silver', 'gold']),
    );
    expect(outcome).toMatchObject({ ok: true, template: 'Silver' });
  });

  it('uses the default template only to create', async () => {
    const settings = settingsWith({ default_template: 'Fallback' });
    await expect(
      provisionSsoMailbox(postern.deps, settings, identity('dflt@example.org', 'nothing-maps')),
    ).resolves.toMatchObject({
      ok: true,
      provisioned: true,
      template: 'Fallback',
    });
    // Later logins without a mapping leave the mailbox as it is.
    await expect(
      provisionSsoMailbox(postern.deps, settings, identity('dflt@example.org', 'nothing-maps')),
    ).resolves.toMatchObject({
      ok: true,
      provisioned: false,
      templateApplied: false,
    });
    expect((await row('dflt@example.org'))?.attributes.attribute_hash).toBe(await hashOf('Fallback'));
  });

  it.each([
    {
      case: 'no template maps and there is no default',
      email: 'nomap@example.org',
      attribute: 'bronze',
      settings: {},
      status: 403,
      reason: 'no_template',
    },
    {
      case: 'provisioning is off',
      email: 'noprov@example.org',
      attribute: 'gold',
      settings: { login_provisioning: false },
      status: 403,
      reason: 'provisioning_off',
    },
    {
      case: 'the domain is unknown',
      email: 'x@nowhere.test',
      attribute: 'gold',
      settings: {},
      status: 403,
      reason: 'unknown_domain',
    },
    {
      case: 'the domain is inactive',
      email: 'x@sleepy.example',
      attribute: 'gold',
      settings: {},
      status: 403,
      reason: 'inactive_domain',
    },
    {
      case: 'the mapped template does not exist',
      email: 'ghost@example.org',
      attribute: 'gold',
      settings: { templates: ['Deleted'], mappers: ['gold'] },
      status: 403,
      reason: 'no_template',
    },
  ])('refuses to create a mailbox when $case', async ({ email, attribute, settings, status, reason }) => {
    const outcome = await provisionSsoMailbox(postern.deps, settingsWith(settings), identity(email, attribute), {
      ip: '198.51.100.4',
    });
    expect(outcome).toMatchObject({ ok: false, status, reason });
    expect(await row(email)).toBeUndefined();
    const audit = await lastAudit(email);
    expect(audit?.action).toBe('sso.refused');
  });

  it('never takes over a local mailbox with the same address', async () => {
    const outcome = await provisionSsoMailbox(postern.deps, settingsWith(), identity('LOCAL@example.org', 'gold'));
    expect(outcome).toMatchObject({ ok: false, status: 409, reason: 'local_mailbox' });
    if (!outcome.ok) expect(outcome.message).toContain('Ask an admin to switch it');
    expect(await row('local@example.org')).toMatchObject({ authsource: 'mailcow', quota: 1024 ** 3 });
  });

  it('refuses a mailbox of another IdP type', async () => {
    await expect(
      provisionSsoMailbox(postern.deps, settingsWith(), identity('kc@example.org', 'gold')),
    ).resolves.toMatchObject({
      ok: false,
      status: 409,
      reason: 'other_source',
    });
  });

  it('refuses resource mailboxes', async () => {
    await expect(
      provisionSsoMailbox(postern.deps, settingsWith(), identity('room@example.org', 'gold')),
    ).resolves.toMatchObject({
      ok: false,
      reason: 'resource_mailbox',
    });
  });

  it('re-applies the mapped template when the attribute changes, and only then', async () => {
    await provisionSsoMailbox(postern.deps, settingsWith(), identity('mover@example.org', 'gold', 'Mover'));
    await expect(
      provisionSsoMailbox(postern.deps, settingsWith(), identity('mover@example.org', 'gold', 'Mover')),
    ).resolves.toMatchObject({
      ok: true,
      templateApplied: false,
    });
    await expect(
      provisionSsoMailbox(postern.deps, settingsWith(), identity('mover@example.org', 'silver', 'Mover')),
    ).resolves.toMatchObject({
      ok: true,
      provisioned: false,
      template: 'Silver',
      templateApplied: true,
    });
    const moved = await row('mover@example.org');
    expect(moved).toMatchObject({ quota: SILVER.quota });
    expect(moved?.attributes).toMatchObject({
      imap_access: '0',
      pop3_access: '1',
      attribute_hash: await hashOf('Silver'),
    });
  });

  it('never re-enables a mailbox an admin disabled, and refuses its login', async () => {
    await provisionSsoMailbox(postern.deps, settingsWith(), identity('banned@example.org', 'gold'));
    await postern.deps.db.execute("UPDATE mailbox SET active = 0 WHERE username = 'banned@example.org'");
    const outcome = await provisionSsoMailbox(postern.deps, settingsWith(), identity('banned@example.org', 'silver'));
    expect(outcome).toMatchObject({ ok: false, status: 403, reason: 'mailbox_inactive' });
    expect(await row('banned@example.org')).toMatchObject({ active: 0, quota: SILVER.quota });
  });

  it('creates but does not sign in a mailbox whose template parks it (active = 2)', async () => {
    const outcome = await provisionSsoMailbox(postern.deps, settingsWith(), identity('parked@example.org', 'parked'));
    expect(outcome).toMatchObject({ ok: false, status: 403, reason: 'mailbox_inactive' });
    expect(await row('parked@example.org')).toMatchObject({ active: 2 });
  });
});

describe('redirectUriFor', () => {
  it.each([
    { configured: 'https://mail.example/', expected: 'https://public.example/login/sso/callback' },
    { configured: 'https://mail.example/login/sso/callback', expected: 'https://mail.example/login/sso/callback' },
  ])('$configured → $expected', ({ configured, expected }) => {
    expect(redirectUriFor(settingsWith({ redirect_url: configured }), 'https://public.example')).toBe(expected);
  });
});

describe('local-password sign-in', () => {
  const IP = '203.0.113.50';

  it('signs a mailcow mailbox in with its password, case-insensitively by address', async () => {
    const newest = () =>
      postern.deps.db.one<{ id: number }>('SELECT MAX(id) AS id FROM postern_audit WHERE actor = ?', [
        'local@example.org',
      ]);
    const before = await newest();
    await expect(
      webLogin.checkPassword({ username: ' Local@Example.org ', password: 'local pw', ip: IP }),
    ).resolves.toEqual({
      ok: true,
      username: 'local@example.org',
    });
    // The password is only the first factor: the sign-in is audited when the route grants the
    // session (test/portal-two-factor.test.ts), never by the password check itself.
    expect(await newest()).toEqual(before);
  });

  it('gives wrong passwords, unknown addresses and IdP mailboxes the same refusal', async () => {
    const outcomes = await Promise.all([
      webLogin.checkPassword({ username: 'local@example.org', password: 'nope', ip: IP }),
      webLogin.checkPassword({ username: 'nobody@example.org', password: 'nope', ip: IP }),
      webLogin.checkPassword({ username: 'kc@example.org', password: '', ip: IP }),
      webLogin.checkPassword({ username: 'new.one@example.org', password: 'anything', ip: IP }),
    ]);
    const [first, ...rest] = outcomes;
    expect(first).toMatchObject({ ok: false, status: 401, reason: 'invalid_credentials' });
    for (const outcome of rest) expect(outcome).toEqual(first);
  });

  it('audits a failed portal password as a failed sign-in, never with the password or a typed unknown name', async () => {
    const { db } = postern.deps;
    const mark = Number((await db.one<{ id: number | null }>('SELECT MAX(id) AS id FROM postern_audit'))?.id ?? 0);
    const ip = '203.0.113.51';
    await webLogin.checkPassword({ username: 'Local@example.org', password: 'not it at all', ip });
    await webLogin.checkPassword({ username: 'kc@example.org', password: 'not it at all', ip });
    await webLogin.checkPassword({ username: 'not it at all', password: 'x', ip });
    const rows = await db.many(
      'SELECT actor, actor_kind, action, outcome, target, ip, detail FROM postern_audit WHERE id > ? ORDER BY id',
      [mark],
    );
    const failed = { actor_kind: 'mailbox', action: 'web.login.failed', outcome: 'failure', ip };
    expect(rows).toEqual([
      {
        ...failed,
        actor: 'local@example.org',
        target: 'local@example.org',
        detail: { reason: 'wrong_password', factor: 'password' },
      },
      {
        ...failed,
        actor: 'kc@example.org',
        target: 'kc@example.org',
        detail: { reason: 'no_local_password', factor: 'password' },
      },
      // People type passwords into the username field: an unknown name is not recorded.
      { ...failed, actor: 'anonymous', target: null, detail: { reason: 'unknown_user', factor: 'password' } },
    ]);
  });

  it('tells only the password holder that the mailbox is disabled', async () => {
    await expect(
      webLogin.checkPassword({ username: 'off@example.org', password: 'wrong', ip: IP }),
    ).resolves.toMatchObject({ status: 401 });
    await expect(
      webLogin.checkPassword({ username: 'off@example.org', password: 'off pw', ip: IP }),
    ).resolves.toMatchObject({
      status: 403,
      reason: 'mailbox_inactive',
    });
  });

  it('bans a username after distinct wrong passwords, even for the right one afterwards', async () => {
    const attacker = '198.51.100.99';
    for (const password of ['a', 'b', 'c']) {
      await expect(
        webLogin.checkPassword({ username: 'limited@example.org', password, ip: attacker }),
      ).resolves.toMatchObject({ status: 401 });
    }
    await expect(
      webLogin.checkPassword({ username: 'limited@example.org', password: 'limited pw', ip: attacker }),
    ).resolves.toMatchObject({
      status: 429,
      reason: 'rate_limited',
    });
  });

  // Each spelling of one mailbox got a budget of its own, so an attacker could
  // keep guessing by switching spellings. One mailbox, one budget, as in the passdb.
  it('counts wrong passwords against the mailbox whatever spelling of it was typed', async () => {
    const attacker = '198.51.100.98';
    const spellings = ['spelled@example.org', 'spelled@alias.example', 'SPELLED@Alias.Example'];
    for (const [index, username] of spellings.entries()) {
      await expect(
        webLogin.checkPassword({ username, password: `guess ${index}`, ip: attacker }),
      ).resolves.toMatchObject({ status: 401 });
    }
    for (const username of [...spellings, ' spelled@ALIAS.example ']) {
      await expect(
        webLogin.checkPassword({ username, password: 'spelled pw', ip: attacker }),
        username,
      ).resolves.toMatchObject({ status: 429, reason: 'rate_limited' });
    }
  });
});
