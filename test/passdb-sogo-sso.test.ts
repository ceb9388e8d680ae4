// mailcow's static SOGo SSO password, opt-in through POSTERN_SOGO_SSO_PASS_FILE:
// mailcowauth.php accepts the contents of sogo-sso.pass as any user's password when the request
// comes from SOGo's address (data/conf/dovecot/auth/mailcowauth.php, `$isSOGoRequest`), and
// mailcow's Dovecot entrypoint writes a new one on every start (`echo -n ${RAND_PASS} >
// /etc/phpfpm/sogo-sso.pass`, data/Dockerfiles/dovecot/docker-entrypoint.sh).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from './support/env.js';
import { seedDomain, seedMailbox } from './support/seed.js';

const SOGO_IP = '172.22.1.248';
const OTHER_IP = '172.22.1.249';
let dir: string;
let passFile: string;
let postern: TestPostern;
let withoutOptIn: TestPostern;

/** What mailcow writes: 32 characters of a-z0-9, no newline. */
const mailcowSsoPassword = () =>
  Array.from(randomBytes(32), (byte) => 'abcdefghijklmnopqrstuvwxyz0123456789'[byte % 36]).join('');
let ssoPassword = mailcowSsoPassword();

const login = (target: TestPostern, username: string, password: string, realRip = SOGO_IP) =>
  target.passdb({ username, password, real_rip: realRip, service: 'imap' });

async function seed(target: TestPostern) {
  const { db, hashPool } = target.deps;
  await seedDomain(db, 'example.org');
  await seedMailbox(db, { username: 'gina@example.org', passwordHash: await hashPool.hash('gina pw', 'SSHA256') });
  await seedMailbox(db, {
    username: 'nowebmail@example.org',
    passwordHash: await hashPool.hash('nowebmail pw', 'SSHA256'),
    attributes: { sogo_access: '0' },
  });
  await seedMailbox(db, { username: 'off@example.org', passwordHash: '', active: 0 });
}

async function auditRows(target: TestPostern) {
  return target.deps.db.many<{ actor: string; action: string; target: string; ip: string; detail: unknown }>(
    "SELECT actor, action, target, ip, detail FROM postern_audit WHERE action LIKE 'sogo_sso.%' ORDER BY id",
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-sogo-sso-'));
  passFile = join(dir, 'sogo-sso.pass');
  writeFileSync(passFile, ssoPassword, { mode: 0o600 });
  postern = await startTestPostern('sogo_sso', {
    POSTERN_SOGO_SSO_PASS_FILE: passFile,
    POSTERN_SOGO_NETWORKS: `${SOGO_IP}`,
    POSTERN_BCRYPT_COST: '5',
  });
  withoutOptIn = await startTestPostern('sogo_sso_off', { POSTERN_SOGO_NETWORKS: SOGO_IP, POSTERN_BCRYPT_COST: '5' });
  await seed(postern);
  await seed(withoutOptIn);
});

afterAll(async () => {
  await postern?.destroy();
  await withoutOptIn?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("mailcow's SOGo SSO password", () => {
  it("logs a mailbox in from SOGo's address, and audits it", async () => {
    await expect(login(postern, 'gina@example.org', ssoPassword)).resolves.toEqual({
      status: 200,
      body: { success: true, result: 'ok', username: 'gina@example.org' },
    });
    const rows = await auditRows(postern);
    expect(rows).toEqual([
      { actor: 'sogo-sso', action: 'sogo_sso.login', target: 'gina@example.org', ip: SOGO_IP, detail: null },
    ]);
    expect(JSON.stringify(rows)).not.toContain(ssoPassword);
  });

  it('writes one audit row per mailbox and address per ten minutes of use, not one per IMAP connection', async () => {
    const before = (await auditRows(postern)).length;
    for (let i = 0; i < 3; i += 1) expect((await login(postern, 'gina@example.org', ssoPassword)).status).toBe(200);
    expect((await auditRows(postern)).length).toBe(before);
  });

  it('is refused from any address outside POSTERN_SOGO_NETWORKS', async () => {
    const reply = await login(postern, 'gina@example.org', ssoPassword, OTHER_IP);
    expect(reply).toEqual({ status: 401, body: { success: false, result: 'password_mismatch' } });
    expect((await login(postern, 'gina@example.org', ssoPassword, '203.0.113.9')).status).toBe(401);
  });

  it.each([
    ['a prefix of it', () => ssoPassword.slice(0, -1)],
    ['it with a newline', () => `${ssoPassword}\n`],
    ['it upper-cased', () => ssoPassword.toUpperCase()],
    ['an empty password', () => ''],
  ])('refuses %s from SOGo', async (_name, password) => {
    expect((await login(postern, 'gina@example.org', password())).status).toBe(401);
  });

  it('still lets the mailbox password and refuses unknown or unusable mailboxes from SOGo', async () => {
    expect((await login(postern, 'gina@example.org', 'gina pw')).status).toBe(200);
    await expect(login(postern, 'nobody@example.org', ssoPassword)).resolves.toMatchObject({
      status: 401,
      body: { result: 'user_unknown' },
    });
    await expect(login(postern, 'nowebmail@example.org', ssoPassword)).resolves.toMatchObject({
      status: 401,
      body: { result: 'user_disabled' },
    });
    await expect(login(postern, 'off@example.org', ssoPassword)).resolves.toMatchObject({
      status: 401,
      body: { result: 'user_disabled' },
    });
  });

  it('follows the file when mailcow writes a new password (Dovecot restart)', async () => {
    const old = ssoPassword;
    ssoPassword = mailcowSsoPassword();
    writeFileSync(passFile, ssoPassword);
    expect((await login(postern, 'gina@example.org', old)).status).toBe(401);
    expect((await login(postern, 'gina@example.org', ssoPassword)).status).toBe(200);
  });

  it('answers a temporary failure, never a login, while the file cannot be read', async () => {
    rmSync(passFile);
    try {
      expect((await login(postern, 'gina@example.org', ssoPassword)).status).toBe(503);
      // Logins from elsewhere never read the file.
      expect((await login(postern, 'gina@example.org', 'gina pw', OTHER_IP)).status).toBe(200);
    } finally {
      writeFileSync(passFile, ssoPassword);
    }
  });

  it('is not accepted at all without POSTERN_SOGO_SSO_PASS_FILE (opt-in)', async () => {
    expect((await login(withoutOptIn, 'gina@example.org', ssoPassword)).status).toBe(401);
    expect(await auditRows(withoutOptIn)).toEqual([]);
  });
});
