// Names from outside match a mailbox, alias domain or app password only exactly,
// after postern's one folding (ASCII lower-casing), on tables with mailcow's collation
// (utf8mb4_general_ci, which equates é with e and ı with i). Real MariaDB and Redis throughout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkNewAddress, foldAddress } from '../src/address.js';
import { createLogger } from '../src/log.js';
import { checkWebPasswordLogin } from '../src/login/password-login.js';
import { provisionSsoMailbox } from '../src/login/provision-sso-mailbox.js';
import { idpSettingsSchema, type KeycloakSettings } from '../src/sources/idp-settings.js';
import type { KeycloakUser } from '../src/sources/keycloak-admin.js';
import { listActiveAppPasswords, listAppPasswords } from '../src/storage/app-passwords.js';
import { findAdminMailbox } from '../src/storage/mailbox-admin.js';
import { findLoginMailbox } from '../src/storage/mailboxes.js';
import { getSyncRun } from '../src/storage/sync-runs.js';
import { insertMailboxTemplate } from '../src/storage/templates.js';
import { applySync, type RecordedAction } from '../src/sync/apply-sync.js';
import { syncSettingsOf } from '../src/sync/plan-sync.js';
import { startTestPostern, type TestPostern } from './support/env.js';
import { countHashes } from './support/hash-count.js';
import { seedAliasDomain, seedAppPassword, seedDomain, seedMailbox } from './support/seed.js';

const RIP = '203.0.113.44';
const API_KEY = 'address-folding-test-api-key-0123456789';
/** Other spellings of erin@example.org that utf8mb4_general_ci considers equal to it. */
const LOOKALIKES = [
  'érin@example.org',
  'erın@example.org',
  'erin@éxample.org',
  'ÉRIN@example.org',
  'erin@example.org ',
];

let postern: TestPostern;
let strayAppPasswordId: number;

const passdb = (username: string, password: string, service = 'imap') =>
  postern.passdb({ username, password, real_rip: RIP, service });

async function mailboxRow(username: string) {
  return postern.deps.db.one<{ username: string; name: string; quota: number; authsource: string }>(
    'SELECT username, name, quota, authsource FROM mailbox WHERE BINARY username = ?',
    [username],
  );
}

beforeAll(async () => {
  postern = await startTestPostern('folding', { POSTERN_BCRYPT_COST: '5', POSTERN_API_KEY: API_KEY });
  const { db, hashPool } = postern.deps;
  const ssha = (pw: string) => hashPool.hash(pw, 'SSHA256');
  await seedDomain(db, 'example.org');
  await seedAliasDomain(db, 'alias.example', 'example.org');
  await seedMailbox(db, { username: 'erin@example.org', passwordHash: await ssha('erin pw') });
  await seedMailbox(db, { username: 'sso-erin@example.org', passwordHash: '', authsource: 'generic-oidc' });
  await seedMailbox(db, { username: 'kc-erin@example.org', passwordHash: '', authsource: 'keycloak' });
  await seedAppPassword(db, {
    mailbox: 'erin@example.org',
    passwordHash: await ssha('erin own app pw'),
    protocols: ['imap_access'],
  });
  // An app password row of another spelling: the foreign key (under the collation) accepts it,
  // which is exactly how it could open erin's mailbox.
  strayAppPasswordId = await seedAppPassword(db, {
    mailbox: 'érin@example.org',
    passwordHash: await ssha('stray app pw'),
    protocols: ['imap_access'],
  });
  await insertMailboxTemplate(db, 'Gold', { quota: 3 * 1024 ** 3, imap_access: '1', active: '1' });
});

afterAll(async () => {
  await postern?.destroy();
});

describe('the folding', () => {
  it.each([
    ['Erin@Example.ORG', 'erin@example.org'],
    ['ÉRIN@example.org', 'Érin@example.org'],
    ['ERİN@example.org', 'erİn@example.org'],
    ['erın@example.org', 'erın@example.org'],
    ['zoë@example.org', 'zoë@example.org'],
  ])('folds %s to %s (A–Z only)', (name, folded) => {
    expect(foldAddress(name)).toBe(folded);
  });

  it.each([
    ['erİn@example.org', 'unfolded_capitals'],
    ['Érin@example.org', 'unfolded_capitals'],
    ['e\u0301rin@example.org', 'not_nfc'],
    ['erin\u202e@example.org', 'invisible_characters'],
  ])('refuses %s as a new mailbox (%s)', (name, problem) => {
    expect(checkNewAddress(name)).toMatchObject({ ok: false, problem });
  });

  it.each(['erin@example.org', 'zoë@example.org', 'straße@example.org', 'ерин@example.org'])('accepts %s', (name) => {
    expect(checkNewAddress(name)).toEqual({ ok: true });
  });
});

describe('mailcow collation of the tables', () => {
  it('is utf8mb4_general_ci, which on its own takes the lookalikes for erin@example.org', async () => {
    const { db } = postern.deps;
    const column = await db.one<{ COLLATION_NAME: string }>(
      `SELECT COLLATION_NAME FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mailbox' AND COLUMN_NAME = 'username'`,
    );
    expect(column?.COLLATION_NAME).toBe('utf8mb4_general_ci');
    for (const name of LOOKALIKES) {
      const plain = await db.one<{ username: string }>('SELECT username FROM mailbox WHERE username = ?', [name]);
      expect(plain?.username, name).toBe('erin@example.org');
    }
  });

  it('keeps the primary key in use for the login lookup (EXPLAIN)', async () => {
    const plan = await postern.deps.db.many<{ table: string; key: string | null; type: string }>(
      `EXPLAIN SELECT m.username FROM mailbox m JOIN domain d ON d.domain = m.domain
        WHERE m.username = ? AND BINARY m.username = ?`,
      ['erin@example.org', 'erin@example.org'],
    );
    const mailbox = plan.find((row) => row.table === 'm');
    expect(mailbox?.key).toBe('PRIMARY');
    expect(['const', 'eq_ref', 'ref']).toContain(mailbox?.type);
    const alias = await postern.deps.db.many<{ table: string; key: string | null }>(
      `EXPLAIN SELECT a.alias_domain FROM alias_domain a WHERE a.alias_domain = ? AND BINARY a.alias_domain = ?`,
      ['alias.example', 'alias.example'],
    );
    expect(alias[0]?.key).toBe('PRIMARY');
  });
});

describe('storage lookups match the folded name exactly', () => {
  it('finds the mailbox under ASCII case changes and through the alias domain', async () => {
    const { db } = postern.deps;
    await expect(findLoginMailbox(db, 'Erin@Example.ORG')).resolves.toMatchObject({ username: 'erin@example.org' });
    await expect(findLoginMailbox(db, 'ERIN@ALIAS.EXAMPLE')).resolves.toMatchObject({
      username: 'erin@example.org',
    });
  });

  it.each([...LOOKALIKES, 'érin@alias.example', 'erin@alİas.example', 'erin@àlias.example'])(
    'finds no mailbox for %s',
    async (name) => {
      await expect(findLoginMailbox(postern.deps.db, name)).resolves.toBeUndefined();
    },
  );

  it('lists only the app passwords of the exact mailbox', async () => {
    const { db } = postern.deps;
    const active = await listActiveAppPasswords(db, 'erin@example.org');
    expect(active.map((record) => record.mailbox)).toEqual(['erin@example.org']);
    expect((await listAppPasswords(db, 'erin@example.org')).map((record) => record.id)).not.toContain(
      strayAppPasswordId,
    );
  });

  it('gives the admin API no mailbox for a lookalike', async () => {
    await expect(findAdminMailbox(postern.deps.db, 'ERIN@example.org')).resolves.toMatchObject({
      username: 'erin@example.org',
    });
    await expect(findAdminMailbox(postern.deps.db, 'érin@example.org')).resolves.toBeUndefined();
    const response = await fetch(`${postern.webUrl}/api/v1/mailboxes/${encodeURIComponent('erın@example.org')}`, {
      headers: { 'x-api-key': API_KEY },
    });
    expect(response.status).toBe(404);
  });
});

describe('passdb (POST /)', () => {
  it('still logs erin in under ASCII case changes and the alias domain', async () => {
    await expect(passdb('ERIN@Example.org', 'erin pw')).resolves.toMatchObject({
      status: 200,
      body: { username: 'erin@example.org' },
    });
    await expect(
      postern.passdb({
        username: 'erin@alias.example',
        password: 'erin own app pw',
        real_rip: RIP,
        service: 'imap',
        resolve_alias_domains: true,
      }),
    ).resolves.toMatchObject({ status: 200 });
  });

  it.each([...LOOKALIKES.filter((name) => name.trim() === name), 'érin@alias.example'])(
    'answers user_unknown for %s with erin’s password',
    async (name) => {
      // Also for a caller that resolves alias domains (our Lua), where the alias spelling counts.
      await expect(
        postern.passdb({
          username: name,
          password: 'erin pw',
          real_rip: RIP,
          service: 'imap',
          resolve_alias_domains: true,
        }),
      ).resolves.toMatchObject({ status: 401, body: { success: false, result: 'user_unknown' } });
      await expect(passdb(name, 'erin pw')).resolves.toMatchObject({
        status: 401,
        body: { success: false, result: 'user_unknown' },
      });
    },
  );

  it('shares one remembered success between ASCII case spellings, and none with a lookalike', async () => {
    await expect(passdb('erin@example.org', 'erin pw', 'smtp')).resolves.toMatchObject({ status: 200 });
    const hashes = countHashes(postern);
    try {
      await expect(passdb('ERIN@EXAMPLE.ORG', 'erin pw', 'smtp')).resolves.toMatchObject({ status: 200 });
      expect(hashes.count).toBe(0);
      await expect(passdb('érin@example.org', 'erin pw', 'smtp')).resolves.toMatchObject({
        body: { result: 'user_unknown' },
      });
    } finally {
      hashes.restore();
    }
  });

  it('refuses a name with a trailing space (the collation would pad it) as malformed', async () => {
    await expect(passdb('erin@example.org ', 'erin pw')).resolves.toMatchObject({ status: 400 });
  });

  it('never accepts an app password stored under another spelling', async () => {
    await expect(passdb('erin@example.org', 'stray app pw')).resolves.toMatchObject({
      status: 401,
      body: { result: 'password_mismatch' },
    });
  });
});

describe('SOGo verify (DAV with Basic credentials)', () => {
  const verify = (user: string, password: string) =>
    fetch(`${postern.internalUrl}/sogo/verify`, {
      headers: {
        'x-original-uri': '/SOGo/dav/',
        'x-real-ip': RIP,
        'x-original-authorization': `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`,
      },
    });

  it('accepts erin and refuses every lookalike with the same password', async () => {
    const good = await verify('erin@example.org', 'erin pw');
    expect(good.status).toBe(200);
    for (const name of ['érin@example.org', 'erın@example.org', 'erin@éxample.org']) {
      expect((await verify(name, 'erin pw')).status, name).toBe(401);
    }
  });
});

describe('web password sign-in', () => {
  it('signs erin in, and no lookalike with her password', async () => {
    const deps = { ...postern.deps, limiter: postern.deps.webLoginLimiter };
    const verifier = postern.deps.verifier;
    const login = (username: string) =>
      checkWebPasswordLogin({ ...deps, verifier }, { username, password: 'erin pw', ip: RIP });
    await expect(login(' Erin@example.org')).resolves.toEqual({ ok: true, username: 'erin@example.org' });
    for (const name of ['érin@example.org', 'erın@example.org', 'erin@éxample.org']) {
      await expect(login(name), name).resolves.toMatchObject({ ok: false, status: 401 });
    }
  });
});

describe('SSO provisioning', () => {
  const settings = idpSettingsSchema.parse({
    authsource: 'generic-oidc',
    postern_issuer_url: 'https://idp.example/realms/mail',
    client_id: 'postern',
    client_secret: 'secret',
    redirect_url: 'https://mail.example/',
    default_template: 'Gold',
  });
  const deps = () => ({ db: postern.deps.db, log: createLogger('silent') });

  it.each([
    ['sso-érin@example.org', 409, 'address_collides'],
    ['sso-erın@example.org', 409, 'address_collides'],
    ['sso-erin@éxample.org', 403, 'unknown_domain'],
    ['sso-erİn@example.org', 403, 'unusable_address'],
    ['sso-e\u0301rin@example.org', 403, 'unusable_address'],
    ['SSO-ERİN@example.org', 403, 'unusable_address'],
  ])('does not sign %s in as sso-erin@example.org', async (email, status, reason) => {
    const outcome = await provisionSsoMailbox(deps(), settings, { email, name: 'Intruder', attribute: undefined });
    expect(outcome).toMatchObject({ ok: false, status, reason });
    expect(await mailboxRow('sso-erin@example.org')).toMatchObject({ name: 'sso-erin', authsource: 'generic-oidc' });
    expect(await mailboxRow(email)).toBeUndefined();
    expect(await mailboxRow('sso-eri\u0307n@example.org')).toBeUndefined();
  });

  it('still signs the exact address in, in any ASCII case', async () => {
    const outcome = await provisionSsoMailbox(deps(), settings, {
      email: 'SSO-Erin@Example.org',
      name: 'Erin',
      attribute: undefined,
    });
    expect(outcome).toMatchObject({ ok: true, username: 'sso-erin@example.org', provisioned: false });
  });

  it('creates a mailbox with a lower-case NFC name outside ASCII', async () => {
    const outcome = await provisionSsoMailbox(deps(), settings, {
      email: 'zoë@example.org',
      name: 'Zoë',
      attribute: undefined,
    });
    expect(outcome).toMatchObject({ ok: true, username: 'zoë@example.org', provisioned: true });
    expect(await mailboxRow('zoë@example.org')).toMatchObject({ username: 'zoë@example.org' });
  });
});

describe('Keycloak sync', () => {
  it('neither updates kc-erin@example.org from a lookalike user nor creates the lookalike', async () => {
    const kcSettings = idpSettingsSchema.parse({
      authsource: 'keycloak',
      server_url: 'https://kc.example',
      realm: 'mail',
      version: '26.0.0',
      client_id: 'postern',
      client_secret: 'secret',
      redirect_url: 'https://mail.example/',
      import_users: true,
      periodic_sync: true,
      default_template: 'Gold',
    }) as KeycloakSettings;
    // What Keycloak's users listing returns (UserRepresentation: id, username, email,
    // emailVerified, enabled, firstName, lastName, attributes).
    const users: KeycloakUser[] = [
      { id: 'u1', username: 'kc-erin', email: 'kc-erin@example.org', emailVerified: true, enabled: true },
      {
        id: 'u2',
        username: 'intruder',
        email: 'kc-érin@example.org',
        emailVerified: true,
        enabled: true,
        firstName: 'In',
        lastName: 'Truder',
      },
      {
        id: 'u3',
        username: 'intruder2',
        email: 'kc-erin@éxample.org',
        emailVerified: true,
        enabled: true,
        firstName: 'Two',
      },
      // A federated user keeps its case in Keycloak; Unicode lower-casing would turn İ into i + U+0307.
      { id: 'u4', username: 'intruder3', email: 'KC-ERİN@example.org', emailVerified: true, enabled: true },
    ];
    const before = await mailboxRow('kc-erin@example.org');
    const report = await applySync(
      { db: postern.deps.db, redis: postern.deps.redis, log: createLogger('silent') },
      {
        client: {
          async *listUserPages() {
            yield users;
          },
          // Keycloak's ?email=…&exact=true ignores case (JpaUserProvider lower-cases both sides).
          async findUsersByEmail(email: string) {
            return users.filter((user) => user.email?.toLowerCase() === email.toLowerCase());
          },
        },
        settings: syncSettingsOf(kcSettings),
        dryRun: false,
        triggeredBy: 'test',
        cronLogKey: `${postern.name}:cron`,
      },
    );
    expect(report.counts.created).toBe(0);
    const actions = ((await getSyncRun(postern.deps.db, report.runId))?.actions ?? []) as RecordedAction[];
    const notes = actions.filter((action) => action.type === 'create').map((action) => [action.email, action.note]);
    expect(notes).toEqual(
      expect.arrayContaining([
        ['kc-érin@example.org', 'collides'],
        ['kc-erİn@example.org', 'unusable_address'],
      ]),
    );
    const after = await mailboxRow('kc-erin@example.org');
    expect(after?.name).not.toMatch(/Truder|Two/);
    expect(after?.name).toBe(before?.name);
    expect(await mailboxRow('kc-érin@example.org')).toBeUndefined();
    expect(await mailboxRow('kc-eri\u0307n@example.org')).toBeUndefined();
    expect(await mailboxRow('kc-erin@éxample.org')).toBeUndefined();
    const plain = await postern.deps.db.many<{ username: string }>(
      "SELECT username FROM mailbox WHERE username LIKE 'kc-%' ORDER BY username",
    );
    expect(plain.map((row) => row.username)).toEqual(['kc-erin@example.org']);
  });
});
