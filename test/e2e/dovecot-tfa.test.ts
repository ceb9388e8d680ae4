// mailcow's 2FA rule through a real Dovecot 2.3 and our Lua passdb: a mailbox with an active `tfa`
// row cannot log in over IMAP or submission with its mailbox password; its app passwords still
// work. mailcow's user_login() (data/web/inc/functions.auth.inc.php) returns neither "pending" nor
// "user" for an internal (Dovecot) login when get_tfa() finds active authenticators, so
// mailcowauth.php answers 401. The login data is cached in process and change-checked, so the
// rule must also take effect on the very next login after a `tfa` row is added or changed.
// The rule covers postern's own enrolments: a mailbox that turns TOTP on in the portal (and makes
// an app password on the enrolment page) can no longer use its mailbox password over IMAP or
// submission, while the app password works.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stepAt, totpCodeAt } from '../../src/admin/totp.js';
import { type RunningDovecot, startDovecot } from '../support/dovecot.js';
import { startTestPostern, type TestPostern } from '../support/env.js';
import { imapLogin, submissionAuthPlain } from '../support/mail-clients.js';
import { csrfOf, portalBrowser, recoveryCodesOf, totpSecretOf } from '../support/portal-browser.js';
import { seedAppPassword, seedDomain, seedMailbox, seedTfa } from '../support/seed.js';

let postern: TestPostern;
let dovecot: RunningDovecot;

const ERIN = { user: 'erin@example.org', password: 'Erin mailbox pässword', app: 'erin-mail-app-password' };
const FRANK = { user: 'frank@example.org', password: 'Frank mailbox password' };
const GINA = { user: 'gina@example.org', password: 'Gina mailbox pässword 7' };
/** POSTERN_PUBLIC_URL's default: the portal's same-origin check compares with it. */
const ORIGIN = 'http://127.0.0.1:8080';

beforeAll(async () => {
  postern = await startTestPostern('dovecot_tfa', { POSTERN_BCRYPT_COST: '5' });
  const { db, hashPool } = postern.deps;
  await seedDomain(db, 'example.org');
  await seedMailbox(db, { username: ERIN.user, passwordHash: await hashPool.hash(ERIN.password, 'BLF-CRYPT') });
  await seedAppPassword(db, {
    mailbox: ERIN.user,
    passwordHash: await hashPool.hash(ERIN.app, 'BLF-CRYPT'),
    protocols: ['imap_access', 'smtp_access'],
  });
  await seedTfa(db, { username: ERIN.user, authmech: 'totp', active: 1 });
  await seedMailbox(db, { username: FRANK.user, passwordHash: await hashPool.hash(FRANK.password, 'SSHA256') });
  // An authenticator that is switched off ("deactivate TFA for next login") does not count.
  await seedTfa(db, { username: FRANK.user, authmech: 'webauthn', active: 0 });
  await seedMailbox(db, { username: GINA.user, passwordHash: await hashPool.hash(GINA.password, 'BLF-CRYPT') });
  dovecot = await startDovecot({ authUrl: `${postern.internalUrl}/`, submission: true });
});

afterAll(async () => {
  await dovecot?.stop();
  await postern?.destroy();
});

describe('a mailbox with two-factor authentication through real Dovecot', () => {
  it('refuses its mailbox password over IMAP and submission', async () => {
    const imap = await imapLogin(dovecot.imapPort, ERIN.user, ERIN.password, { mechanism: 'PLAIN' });
    expect(imap.ok).toBe(false);
    expect(imap.line).toMatch(/NO \[AUTHENTICATIONFAILED\]/);
    const smtp = await submissionAuthPlain(dovecot.submissionPort as number, ERIN.user, ERIN.password);
    expect(smtp.code).toBe(535);
  });

  it('accepts its app password over IMAP and submission', async () => {
    const imap = await imapLogin(dovecot.imapPort, ERIN.user, ERIN.app);
    expect(imap.line).toMatch(/^a1 OK .*Logged in/);
    expect((await submissionAuthPlain(dovecot.submissionPort as number, ERIN.user, ERIN.app)).code).toBe(235);
  });

  it('answers the passdb with 401 password_mismatch, exactly as for a wrong password', async () => {
    const reply = await postern.passdb({
      username: ERIN.user,
      password: ERIN.password,
      real_rip: '192.0.2.9',
      service: 'imap',
    });
    expect(reply.status).toBe(401);
    expect(reply.body).toEqual({ success: false, result: 'password_mismatch' });
  });

  it('ignores an inactive tfa row', async () => {
    expect((await imapLogin(dovecot.imapPort, FRANK.user, FRANK.password)).ok).toBe(true);
  });

  it('sees a tfa row added, deactivated and deleted on the very next login (cached login data)', async () => {
    const { db } = postern.deps;
    // Warm the in-process copy of frank's login data.
    expect((await imapLogin(dovecot.imapPort, FRANK.user, FRANK.password)).ok).toBe(true);
    const id = await seedTfa(db, { username: FRANK.user, authmech: 'totp', active: 1 });
    expect((await imapLogin(dovecot.imapPort, FRANK.user, FRANK.password)).line).toMatch(/AUTHENTICATIONFAILED/);
    await db.execute('UPDATE tfa SET active = 0 WHERE id = ?', [id]);
    expect((await imapLogin(dovecot.imapPort, FRANK.user, FRANK.password)).ok).toBe(true);
    await db.execute('UPDATE tfa SET active = 1 WHERE id = ?', [id]);
    expect((await imapLogin(dovecot.imapPort, FRANK.user, FRANK.password)).ok).toBe(false);
    await db.execute('DELETE FROM tfa WHERE id = ?', [id]);
    expect((await imapLogin(dovecot.imapPort, FRANK.user, FRANK.password)).ok).toBe(true);
  });
});

describe('a mailbox that turns TOTP on in the portal, through real Dovecot', () => {
  let appPassword = '';

  it('logs in over IMAP with its mailbox password before enrolling', async () => {
    expect((await imapLogin(dovecot.imapPort, GINA.user, GINA.password)).ok).toBe(true);
  });

  it('enrols in the portal, making an app password on the enrolment page', async () => {
    const b = portalBrowser(postern.webUrl, { origin: ORIGIN });
    expect((await b.signIn(GINA.user, GINA.password)).location).toBe('/');
    const page = await b.get('/tfa/enrol');
    expect(page.text).toContain('Only app passwords work there.');
    const form = new URLSearchParams({ csrf: csrfOf(page.text), name: 'Mail client' });
    form.append('protocols', 'imap');
    form.append('protocols', 'smtp');
    const created = await b.post('/tfa/app-passwords', form);
    appPassword = /id="app-password-secret">\s*([^<\s]+)\s*</.exec(created.text)?.[1] ?? '';
    expect(appPassword).not.toBe('');
    const secret = totpSecretOf(created.text);
    const confirm = await b.post('/tfa/enrol', {
      csrf: csrfOf(created.text),
      code: totpCodeAt(secret, stepAt(Date.now())),
    });
    expect(confirm.status).toBe(200);
    expect(recoveryCodesOf(confirm.text)).toHaveLength(10);
  });

  it('now refuses its mailbox password over IMAP and submission', async () => {
    const imap = await imapLogin(dovecot.imapPort, GINA.user, GINA.password, { mechanism: 'PLAIN' });
    expect(imap.ok).toBe(false);
    expect(imap.line).toMatch(/NO \[AUTHENTICATIONFAILED\]/);
    expect((await submissionAuthPlain(dovecot.submissionPort as number, GINA.user, GINA.password)).code).toBe(535);
  });

  it('accepts the app password made on the enrolment page over IMAP and submission', async () => {
    expect((await imapLogin(dovecot.imapPort, GINA.user, appPassword)).line).toMatch(/^a1 OK .*Logged in/);
    expect((await submissionAuthPlain(dovecot.submissionPort as number, GINA.user, appPassword)).code).toBe(235);
  });
});
