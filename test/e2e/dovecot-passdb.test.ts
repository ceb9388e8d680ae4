// End to end through a real Dovecot 2.3 and our Lua passdb: IMAP and submission clients log in
// against mailboxes in MariaDB, decided by an in-process postern. The harness fails loudly if
// Dovecot or its Lua plugin is missing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningDovecot, startDovecot } from '../support/dovecot.js';
import { MYSQL_ROOT_URL, startTestPostern, type TestPostern } from '../support/env.js';
import { imapLogin, imapSelectInbox, submissionAuthPlain } from '../support/mail-clients.js';
import { seedAliasDomain, seedAppPassword, seedDomain, seedMailbox } from '../support/seed.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const TOKEN = 'dovecot-e2e-internal-token-0123456789';
let proxy: TcpProxy;
let postern: TestPostern;
let dovecot: RunningDovecot;

beforeAll(async () => {
  // MySQL is reached through a proxy so the test can take it away and bring it back.
  const mysqlUrl = new URL(MYSQL_ROOT_URL);
  proxy = await startTcpProxy({ host: mysqlUrl.hostname, port: Number(mysqlUrl.port || 3306) });
  postern = await startTestPostern(
    'dovecot',
    { POSTERN_INTERNAL_TOKEN: TOKEN, POSTERN_BCRYPT_COST: '10' },
    { mysqlPort: proxy.port },
  );
  const { db, hashPool } = postern.deps;
  await seedDomain(db, 'example.org');
  await seedAliasDomain(db, 'example.net', 'example.org');
  // BLF-CRYPT cost 10 ($2y$) is what mailcow writes.
  await seedMailbox(db, {
    username: 'carol@example.org',
    passwordHash: await hashPool.hash('Carol pässwörd "1"', 'BLF-CRYPT'),
  });
  await seedAppPassword(db, {
    mailbox: 'carol@example.org',
    passwordHash: await hashPool.hash('carol-imap-only-app', 'BLF-CRYPT'),
    protocols: ['imap_access'],
  });
  await seedMailbox(db, {
    username: 'dave@example.org',
    passwordHash: await hashPool.hash('dave local', 'SHA512-CRYPT'),
    authsource: 'keycloak',
  });
  await seedAppPassword(db, {
    mailbox: 'dave@example.org',
    passwordHash: await hashPool.hash('dave-mail-app', 'BLF-CRYPT'),
    protocols: ['imap_access', 'smtp_access'],
  });
  dovecot = await startDovecot({ authUrl: `${postern.internalUrl}/`, internalToken: TOKEN, submission: true });
});

afterAll(async () => {
  await dovecot?.stop();
  await proxy?.restore().catch(() => undefined);
  await postern?.destroy();
  await proxy?.close();
});

describe('IMAP and submission logins through real Dovecot', () => {
  it.each(['LOGIN', 'PLAIN'] as const)(
    'logs in with the right mailbox password over IMAP %s and opens INBOX',
    async (mechanism) => {
      const result = await imapSelectInbox(dovecot.imapPort, 'carol@example.org', 'Carol pässwörd "1"', { mechanism });
      expect(result.login.line).toMatch(/^a1 OK .*Logged in/);
      expect(result.select?.ok).toBe(true);
    },
  );

  it('refuses a wrong password as an authentication failure', async () => {
    const result = await imapLogin(dovecot.imapPort, 'carol@example.org', 'carol password', { mechanism: 'PLAIN' });
    expect(result.ok).toBe(false);
    expect(result.line).toMatch(/NO \[AUTHENTICATIONFAILED\]/);
  });

  it('logs in through an alias domain as the real mailbox', async () => {
    const result = await imapLogin(dovecot.imapPort, 'carol@example.net', 'Carol pässwörd "1"');
    expect(result.line).toMatch(/^a1 OK .*Logged in/);
  });

  it('accepts an app password on the protocol it allows (IMAP)', async () => {
    expect((await imapLogin(dovecot.imapPort, 'carol@example.org', 'carol-imap-only-app')).ok).toBe(true);
  });

  it('refuses that app password on a protocol it does not allow (submission)', async () => {
    const result = await submissionAuthPlain(
      dovecot.submissionPort as number,
      'carol@example.org',
      'carol-imap-only-app',
    );
    expect(result.code).toBe(535);
  });

  it('accepts the mailbox password over submission AUTH PLAIN', async () => {
    const result = await submissionAuthPlain(
      dovecot.submissionPort as number,
      'carol@example.org',
      'Carol pässwörd "1"',
    );
    expect(result.code).toBe(235);
  });

  it('refuses the local password of an IdP-sourced mailbox, and accepts its app password', async () => {
    expect((await imapLogin(dovecot.imapPort, 'dave@example.org', 'dave local')).line).toMatch(/AUTHENTICATIONFAILED/);
    expect((await imapLogin(dovecot.imapPort, 'dave@example.org', 'dave-mail-app')).ok).toBe(true);
    expect(
      (await submissionAuthPlain(dovecot.submissionPort as number, 'dave@example.org', 'dave-mail-app')).code,
    ).toBe(235);
  });

  it('says "temporary failure", not "wrong password", while MySQL is unreachable, and recovers', async () => {
    await proxy.cut();
    try {
      const imap = await imapLogin(dovecot.imapPort, 'carol@example.org', 'Carol pässwörd "1"');
      expect(imap.line).toMatch(/NO \[UNAVAILABLE\] Temporary authentication failure/);
      const smtp = await submissionAuthPlain(
        dovecot.submissionPort as number,
        'carol@example.org',
        'Carol pässwörd "1"',
      );
      expect(smtp.code).toBe(454);
    } finally {
      await proxy.restore();
    }
    await expect
      .poll(async () => (await imapLogin(dovecot.imapPort, 'carol@example.org', 'Carol pässwörd "1"')).ok, {
        timeout: 15_000,
      })
      .toBe(true);
  });

  it("never writes a password into Dovecot's log", () => {
    const logs = dovecot.logs();
    for (const secret of ['Carol pässwörd', 'carol-imap-only-app', 'dave-mail-app', 'carol password']) {
      expect(logs).not.toContain(secret);
    }
  });
});
