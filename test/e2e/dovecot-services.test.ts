// Service names as real Dovecot 2.3 sends them through our Lua passdb: IMAP
// logins follow the mailbox's imap_access, and the services postern does not know for a password
// login (doveadm's own, LMTP) are denied whatever the flags say, as `doveadm auth test` shows.
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningDovecot, startDovecot } from '../support/dovecot.js';
import { startTestPostern, type TestPostern } from '../support/env.js';
import { imapLogin } from '../support/mail-clients.js';
import { seedAppPassword, seedDomain, seedMailbox } from '../support/seed.js';

let postern: TestPostern;
let dovecot: RunningDovecot;

/**
 * `doveadm auth test` against this Dovecot; without -x service it asks as service "doveadm".
 * Asynchronous: postern answers the Lua from this very process.
 */
function doveadmAuthTest(
  user: string,
  password: string,
  service?: string,
): Promise<{ status: number; output: string }> {
  // rip: our Lua sends the client address, and postern refuses a request without one.
  const extra = ['-x', 'rip=203.0.113.7', ...(service ? ['-x', `service=${service}`] : [])];
  const args = ['-c', dovecot.configPath, 'auth', 'test', ...extra, user, password];
  return new Promise((resolve, reject) => {
    execFile('doveadm', args, { encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = (error as { code?: unknown } | null)?.code;
      if (error && typeof code !== 'number') reject(error);
      else resolve({ status: typeof code === 'number' ? code : 0, output: `${stdout}${stderr}` });
    });
  });
}

beforeAll(async () => {
  postern = await startTestPostern('dovecotsvc', { POSTERN_BCRYPT_COST: '5' });
  const { db, hashPool } = postern.deps;
  await seedDomain(db, 'example.org');
  const passwordHash = await hashPool.hash('erin pw', 'SSHA256');
  await seedMailbox(db, { username: 'erin@example.org', passwordHash });
  await seedMailbox(db, {
    username: 'frank@example.org',
    passwordHash: await hashPool.hash('frank pw', 'SSHA256'),
    attributes: { imap_access: '0', smtp_access: '0', pop3_access: '0', sieve_access: '0' },
  });
  await seedAppPassword(db, {
    mailbox: 'frank@example.org',
    passwordHash: await hashPool.hash('frank every app', 'SSHA256'),
    protocols: ['imap_access', 'pop3_access', 'smtp_access', 'sieve_access', 'dav_access', 'eas_access'],
  });
  dovecot = await startDovecot({ authUrl: `${postern.internalUrl}/` });
});

afterAll(async () => {
  await dovecot?.stop();
  await postern?.destroy();
});

describe('service names through real Dovecot', () => {
  it('logs in over IMAP, as service imap, where the mailbox allows it', async () => {
    await expect(imapLogin(dovecot.imapPort, 'erin@example.org', 'erin pw')).resolves.toMatchObject({ ok: true });
    const good = await doveadmAuthTest('erin@example.org', 'erin pw', 'imap');
    expect(good.status, good.output).toBe(0);
  });

  it('refuses IMAP for a mailbox with imap_access off', async () => {
    await expect(imapLogin(dovecot.imapPort, 'frank@example.org', 'frank pw')).resolves.toMatchObject({ ok: false });
  });

  it.each([
    ['doveadm', undefined],
    ['lmtp', 'lmtp'],
    ['imaps', 'imaps'],
    ['constructor', 'constructor'],
  ])('denies service %s for the right password, whatever the flags', async (_label, service) => {
    for (const [user, password] of [
      ['erin@example.org', 'erin pw'],
      ['frank@example.org', 'frank pw'],
      ['frank@example.org', 'frank every app'],
    ]) {
      const result = await doveadmAuthTest(user as string, password as string, service);
      expect(result.status, `${service ?? 'doveadm'} ${user}: ${result.output}`).not.toBe(0);
      expect(result.output).toMatch(/auth failed/i);
      // A denial, not a temporary failure (which a missing address or a fault would give).
      expect(result.output).not.toMatch(/temp_fail/);
    }
  });
});
