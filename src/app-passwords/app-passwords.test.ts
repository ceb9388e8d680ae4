// App-password management against real MariaDB: the secret exists once, only its hash is
// stored, names and protocols are validated, and nobody revokes someone else's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from '../../test/support/env.js';
import { seedDomain, seedMailbox } from '../../test/support/seed.js';
import { APP_PASSWORD_PROTOCOLS } from '../storage/app-passwords.js';
import {
  type AppPasswordDeps,
  createAppPassword,
  generateAppPasswordSecret,
  listOwnAppPasswords,
  PROTOCOL_CHOICES,
  revokeAppPassword,
} from './app-passwords.js';

let postern: TestPostern;
let deps: AppPasswordDeps;

beforeAll(async () => {
  postern = await startTestPostern('apppw', { POSTERN_BCRYPT_COST: '5' });
  deps = { db: postern.deps.db, hashPool: postern.deps.hashPool, passwordScheme: 'BLF-CRYPT' };
  await seedDomain(postern.deps.db, 'example.org');
  await seedMailbox(postern.deps.db, { username: 'amy@example.org', passwordHash: '', authsource: 'generic-oidc' });
  await seedMailbox(postern.deps.db, { username: 'ben@example.org', passwordHash: '' });
});

afterAll(async () => {
  await postern?.destroy();
});

describe('generateAppPasswordSecret', () => {
  it('makes 24 readable random symbols in four groups, different every time', () => {
    const secrets = new Set(Array.from({ length: 200 }, generateAppPasswordSecret));
    expect(secrets.size).toBe(200);
    for (const secret of secrets) expect(secret).toMatch(/^[a-km-zA-HJ-NP-Z2-9]{6}(-[a-km-zA-HJ-NP-Z2-9]{6}){3}$/);
  });
});

describe('createAppPassword', () => {
  it('maps every app_passwd protocol column to a choice', () => {
    expect(Object.values(PROTOCOL_CHOICES).sort()).toEqual([...APP_PASSWORD_PROTOCOLS].sort());
  });

  it('stores only a hash of the secret, with the mailbox domain and chosen flags', async () => {
    const outcome = await createAppPassword(deps, {
      mailbox: 'amy@example.org',
      name: '  Laptop  ',
      protocols: ['imap', 'sieve', 'imap'],
    });
    if (!outcome.ok) throw new Error(outcome.problems.join('; '));
    expect(outcome).toMatchObject({ name: 'Laptop', protocols: ['imap', 'sieve'] });
    const row = await postern.deps.db.one<Record<string, unknown>>('SELECT * FROM app_passwd WHERE id = ?', [
      outcome.id,
    ]);
    expect(row).toMatchObject({
      mailbox: 'amy@example.org',
      domain: 'example.org',
      active: 1,
      imap_access: 1,
      sieve_access: 1,
      smtp_access: 0,
      pop3_access: 0,
      dav_access: 0,
      eas_access: 0,
    });
    expect(String(row?.password)).not.toContain(outcome.secret);
    await expect(postern.deps.hashPool.verify(String(row?.password), outcome.secret)).resolves.toMatchObject({
      ok: true,
    });
  });

  it.each([
    { case: 'an empty name', name: '   ', protocols: ['imap'], problem: 'Give the app password a name' },
    { case: 'a name over 255 characters', name: 'x'.repeat(256), protocols: ['imap'], problem: 'at most 255' },
    { case: 'no protocol', name: 'Phone', protocols: [], problem: 'at least one protocol' },
    { case: 'an unknown protocol', name: 'Phone', protocols: ['imap', 'telnet'], problem: 'Unknown protocol' },
    { case: 'a non-string name', name: 42, protocols: ['imap'], problem: 'Give the app password a name' },
  ])('refuses $case', async ({ name, protocols, problem }) => {
    const outcome = await createAppPassword(deps, { mailbox: 'amy@example.org', name, protocols });
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) expect(outcome.problems.join(' ')).toContain(problem);
  });

  // `p in PROTOCOL_CHOICES` saw Object.prototype, so these passed the check and
  // made an app password with every flag 0.
  it.each(['constructor', 'hasOwnProperty', 'toString', 'valueOf', '__proto__', 'isPrototypeOf'])(
    'refuses the protocol %j, a name only Object.prototype has, alone or with a real one',
    async (protocol) => {
      const before = await postern.deps.db.many('SELECT id FROM app_passwd WHERE mailbox = ?', ['ben@example.org']);
      for (const protocols of [protocol, [protocol], ['imap', protocol]]) {
        const outcome = await createAppPassword(deps, { mailbox: 'ben@example.org', name: 'Sneaky', protocols });
        expect(outcome, JSON.stringify(protocols)).toMatchObject({ ok: false });
        if (!outcome.ok) expect(outcome.problems.join(' ')).toContain('Unknown protocol');
      }
      const after = await postern.deps.db.many('SELECT id FROM app_passwd WHERE mailbox = ?', ['ben@example.org']);
      expect(after).toEqual(before);
    },
  );

  it('accepts a single protocol given as a string (one checked box)', async () => {
    await expect(
      createAppPassword(deps, { mailbox: 'amy@example.org', name: 'Tablet', protocols: 'eas' }),
    ).resolves.toMatchObject({
      ok: true,
      protocols: ['eas'],
    });
  });
});

describe('listing and revoking', () => {
  it('lists without hashes and revokes only the owner’s own', async () => {
    const mine = await createAppPassword(deps, { mailbox: 'ben@example.org', name: 'Mine', protocols: ['smtp'] });
    if (!mine.ok) throw new Error('create failed');
    const listed = await listOwnAppPasswords(postern.deps.db, 'ben@example.org');
    expect(listed).toEqual([
      { id: mine.id, name: 'Mine', protocols: ['smtp'], active: true, created: expect.any(Date) },
    ]);
    expect(JSON.stringify(listed)).not.toMatch(/BLF|\$2/);

    await expect(revokeAppPassword(postern.deps.db, 'amy@example.org', mine.id)).resolves.toBe(false);
    await expect(revokeAppPassword(postern.deps.db, 'ben@example.org', Number.NaN)).resolves.toBe(false);
    await expect(revokeAppPassword(postern.deps.db, 'ben@example.org', mine.id)).resolves.toBe(true);
    await expect(revokeAppPassword(postern.deps.db, 'ben@example.org', mine.id)).resolves.toBe(false);
    await expect(listOwnAppPasswords(postern.deps.db, 'ben@example.org')).resolves.toEqual([]);
  });
});
