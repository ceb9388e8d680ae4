// Test data in mailcow's tables, written the way mailcow writes it.
import { createAdminAccount } from '../../src/admin/admin-accounts.js';
import type { AppPasswordProtocol } from '../../src/storage/app-passwords.js';
import { insertAppPassword } from '../../src/storage/app-passwords.js';
import type { Db } from '../../src/storage/db.js';
import { DEFAULT_MAILBOX_ATTRIBUTES } from '../../src/storage/templated-mailboxes.js';
import type { TestPostern } from './env.js';
import { registerSecret } from './secret-registry.js';

export async function seedDomain(db: Db, domain: string, options: { active?: number } = {}): Promise<void> {
  await db.execute(
    'INSERT INTO domain (domain, description, active, created, modified) VALUES (?, ?, ?, NOW(), NOW())',
    [domain, `test domain ${domain}`, options.active ?? 1],
  );
}

export async function seedAliasDomain(db: Db, alias: string, target: string, options: { active?: number } = {}) {
  await db.execute(
    'INSERT INTO alias_domain (alias_domain, target_domain, active, created, modified) VALUES (?, ?, ?, NOW(), NOW())',
    [alias, target, options.active ?? 1],
  );
}

export interface SeedMailbox {
  username: string;
  passwordHash: string;
  active?: number;
  authsource?: 'mailcow' | 'keycloak' | 'generic-oidc' | 'ldap';
  kind?: string;
  attributes?: Record<string, string>;
}

/** A seeded mailbox starts with the attributes postern's own mailbox creation writes (one source). */
export const DEFAULT_ATTRIBUTES = DEFAULT_MAILBOX_ATTRIBUTES;

export async function seedMailbox(db: Db, mailbox: SeedMailbox): Promise<void> {
  registerSecret('seeded mailbox password hash', mailbox.passwordHash);
  const [localPart, domain] = mailbox.username.split('@') as [string, string];
  await db.execute(
    `INSERT INTO mailbox (username, password, name, local_part, domain, quota, attributes, kind, authsource, active, created, modified)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NOW(), NOW())`,
    [
      mailbox.username,
      mailbox.passwordHash,
      localPart,
      localPart,
      domain,
      1024 * 1024 * 1024,
      JSON.stringify({ ...DEFAULT_ATTRIBUTES, ...mailbox.attributes }),
      mailbox.kind ?? '',
      mailbox.authsource ?? 'mailcow',
      mailbox.active ?? 1,
    ],
  );
}

export async function seedAppPassword(
  db: Db,
  input: { mailbox: string; passwordHash: string; protocols: AppPasswordProtocol[]; name?: string; active?: boolean },
): Promise<number> {
  registerSecret('seeded app password hash', input.passwordHash);
  const domain = input.mailbox.split('@')[1] ?? '';
  const id = await insertAppPassword(db, {
    mailbox: input.mailbox,
    domain,
    name: input.name ?? 'test client',
    passwordHash: input.passwordHash,
    protocols: input.protocols,
  });
  if (input.active === false) await db.execute('UPDATE app_passwd SET active = 0 WHERE id = ?', [id]);
  return id;
}

const SEEDED_TOTP_SECRET = 'JBSWY3DPEHPK3PXP';

/** A row of mailcow's `tfa` table (one authenticator of a user), as mailcow's set_tfa() writes it. */
export async function seedTfa(
  db: Db,
  input: { username: string; authmech: 'yubi_otp' | 'u2f' | 'hotp' | 'totp' | 'webauthn'; active: number },
): Promise<number> {
  registerSecret('seeded TOTP secret', SEEDED_TOTP_SECRET);
  const { insertId } = await db.execute(
    'INSERT INTO tfa (key_id, username, authmech, secret, active) VALUES (?, ?, ?, ?, ?)',
    ['test key', input.username, input.authmech, SEEDED_TOTP_SECRET, input.active],
  );
  return insertId;
}

/** An admin account made through postern's own use-case (hashed as BLF-CRYPT). */
export async function seedAdminAccount(
  postern: Pick<TestPostern, 'deps'>,
  account: { username: string; password: string; superadmin: boolean; domains?: string[] },
) {
  registerSecret('seeded admin password', account.password);
  const outcome = await createAdminAccount(
    { db: postern.deps.db, hashPool: postern.deps.hashPool, passwordScheme: 'BLF-CRYPT' },
    { ...account, domains: account.domains ?? [] },
  );
  if (!outcome.ok) throw new Error(outcome.message);
}
