// TOTP for local mailboxes in the portal, through the real web listener (real MariaDB and Redis):
// enrolment with a QR code, a confirmation code and 10 recovery codes shown once, stored in
// mailcow's tfa table as the admin side stores it; the warning about mail apps and an app password
// made on the same page; the code asked after the password (replay-protected, rate-limited,
// recovery codes single-use); and enrolment forced at sign-in by the two-factor policy.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashRecoveryCode, stepAt, totpCodeAt } from '../src/admin/totp.js';
import { replaceRecoveryCodes } from '../src/storage/two-factor.js';
import { startTestPostern, type TestPostern } from './support/env.js';
import { csrfOf, portalBrowser, recoveryCodesOf, totpSecretOf } from './support/portal-browser.js';
import { seedDomain, seedMailbox, seedTfa } from './support/seed.js';

const ORIGIN = 'https://mail.example.org';
const ANNA = { user: 'anna@example.org', password: 'Anna portal password 1' };
const BEN = { user: 'ben@example.org', password: 'Ben portal password 22' };
const CARL = { user: 'carl@example.org', password: 'Carl portal password 3' };
const DORA = { user: 'dora@example.org', password: 'Dora portal password 44' };
const ERIN = { user: 'erin@example.org', password: 'Erin portal password 555' };
const FRED = { user: 'fred@example.org', password: 'Fred portal password 6666' };
const API_KEY = 'portal-two-factor-test-key-0123456789abcdef';
let postern: TestPostern;
/** Anna's enrolment, made by the first describe and used by the next. */
const anna = { secret: '', codes: [] as string[] };
const bodies: string[] = [];

function browser(ip: string) {
  const b = portalBrowser(postern.webUrl, { origin: ORIGIN, ip });
  const keep = async <T extends { text: string }>(response: Promise<T>) => {
    const done = await response;
    bodies.push(done.text);
    return done;
  };
  return {
    ...b,
    get: (path: string) => keep(b.get(path)),
    post: (path: string, form: URLSearchParams | Record<string, string>) => keep(b.post(path, form)),
    signIn: (username: string, password: string) => keep(b.signIn(username, password)),
  };
}

beforeAll(async () => {
  postern = await startTestPostern('portal_tfa', {
    POSTERN_PUBLIC_URL: ORIGIN,
    POSTERN_COOKIE_SECURE: 'true',
    POSTERN_TRUSTED_PROXIES: '127.0.0.1/32',
    POSTERN_BCRYPT_COST: '4',
    POSTERN_BAN_USER_THRESHOLD: '4',
    POSTERN_BAN_IP_THRESHOLD: '50',
    POSTERN_API_KEY: API_KEY,
  });
  const { db, hashPool } = postern.deps;
  await seedDomain(db, 'example.org');
  for (const m of [ANNA, BEN, CARL, DORA, ERIN, FRED]) {
    await seedMailbox(db, { username: m.user, passwordHash: await hashPool.hash(m.password, 'BLF-CRYPT') });
  }
});

afterAll(async () => {
  await postern?.destroy();
});

/** Enrol a signed-in (or held) browser; returns the secret and the recovery codes. */
async function enrol(b: ReturnType<typeof browser>, step = stepAt(Date.now()) - 1) {
  const page = await b.get('/tfa/enrol');
  expect(page.status).toBe(200);
  const secret = totpSecretOf(page.text);
  const confirm = await b.post('/tfa/enrol', {
    csrf: csrfOf(page.text),
    code: totpCodeAt(secret, step),
    name: 'phone',
  });
  expect(confirm.status).toBe(200);
  return { secret, codes: recoveryCodesOf(confirm.text) };
}

describe('enrolling in the portal', () => {
  it('warns that the bare password stops opening mail apps, and makes an app password right there', async () => {
    const b = browser('198.51.100.10');
    expect((await b.signIn(ANNA.user, ANNA.password)).location).toBe('/');
    // The portal offers it to a local mailbox.
    expect((await b.get('/')).text).toMatch(/<dd id="two-factor"><a href="\/tfa\/enrol">set up<\/a><\/dd>/);
    const page = await b.get('/tfa/enrol');
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/<svg[^>]*>/);
    expect(totpSecretOf(page.text)).toMatch(/^[A-Z2-7]{32}$/);
    const warning = /<section[^>]*id="mail-apps-warning"[^>]*>([\s\S]*?)<\/section>/.exec(page.text)?.[1] ?? '';
    for (const word of ['IMAP', 'POP3', 'SMTP', 'Sieve', 'CalDAV/CardDAV', 'ActiveSync', 'app password'])
      expect(warning).toContain(word);
    expect(warning).toContain('You have no app passwords yet.');
    // The warning comes before the confirmation form.
    expect(page.text.indexOf('mail-apps-warning')).toBeLessThan(page.text.indexOf('action="/tfa/enrol"'));

    const form = new URLSearchParams({ csrf: csrfOf(page.text), name: 'Phone mail' });
    form.append('protocols', 'imap');
    form.append('protocols', 'smtp');
    const created = await b.post('/tfa/app-passwords', form);
    expect(created.status).toBe(200);
    const appSecret = /id="app-password-secret">\s*([^<\s]+)\s*</.exec(created.text)?.[1] ?? '';
    expect(appSecret.length).toBeGreaterThan(20);
    expect(created.text).toContain('You have 1 app password.');
    // Still the enrolment page, with the same key: the person can go on and confirm.
    expect(totpSecretOf(created.text)).toBe(totpSecretOf(page.text));
    const rows = await postern.deps.db.many<{ name: string; imap_access: number; password: string }>(
      'SELECT name, imap_access, password FROM app_passwd WHERE mailbox = ?',
      [ANNA.user],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ name: 'Phone mail', imap_access: 1 });
    expect(rows[0]?.password).not.toContain(appSecret);
  });

  it("confirms with a code, shows 10 recovery codes once, and stores them as the admin side does (mailcow's tfa, authmech totp)", async () => {
    const b = browser('198.51.100.10');
    expect((await b.signIn(ANNA.user, ANNA.password)).location).toBe('/');
    const page = await b.get('/tfa/enrol');
    const csrf = csrfOf(page.text);
    expect((await b.post('/tfa/enrol', { csrf, code: '000000' })).status).toBe(401);
    const { secret, codes } = await enrol(b);
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    const tfa = await postern.deps.db.many('SELECT authmech, secret, active, key_id FROM tfa WHERE username = ?', [
      ANNA.user,
    ]);
    expect(tfa).toEqual([{ authmech: 'totp', secret, active: 1, key_id: 'phone' }]);
    const stored = await postern.deps.db.many<{ code_hash: string }>(
      'SELECT code_hash FROM postern_recovery_codes WHERE username = ?',
      [ANNA.user],
    );
    expect(stored.map((row) => row.code_hash).sort()).toEqual(codes.map(hashRecoveryCode).sort());
    anna.secret = secret;
    anna.codes = codes;
    expect((await b.get('/')).text).toContain('<dd id="two-factor">on: mail apps sign in with app passwords</dd>');
  });
});

describe('signing in to the portal with a second factor', () => {
  it('asks for the code after the password, and opens nothing before it', async () => {
    const b = browser('198.51.100.11');
    const signIn = await b.signIn(ANNA.user, ANNA.password);
    expect(signIn.location).toBe('/login/second-factor');
    const pendingCookie = signIn.setCookies.find((line) => line.startsWith('postern_pending='));
    expect(pendingCookie).toMatch(/HttpOnly/);
    expect(pendingCookie).toMatch(/SameSite=Strict/);
    expect(pendingCookie).toMatch(/Secure/);
    expect(b.jar.has('postern_session')).toBe(false);
    expect((await b.get('/')).location).toBe('/login');
    expect((await b.get('/tfa/enrol')).location).toBe('/login');
    const page = await b.get('/login/second-factor');
    const csrf = csrfOf(page.text);
    const secret = anna.secret;
    // The code that confirmed the enrolment was spent.
    const spent = await b.post('/login/second-factor', { csrf, code: totpCodeAt(secret, stepAt(Date.now()) - 1) });
    expect(spent.status).toBe(401);
    const code = totpCodeAt(secret, stepAt(Date.now()));
    const done = await b.post('/login/second-factor', { csrf, code });
    expect(done.location).toBe('/');
    expect(b.jar.has('postern_pending')).toBe(false);
    expect((await b.get('/')).status).toBe(200);

    // The same code in another sign-in is refused (replay).
    const replay = browser('198.51.100.11');
    await replay.signIn(ANNA.user, ANNA.password);
    const replayCsrf = csrfOf((await replay.get('/login/second-factor')).text);
    expect((await replay.post('/login/second-factor', { csrf: replayCsrf, code })).status).toBe(401);
    // A recovery code works, once.
    const recovery = anna.codes[2] ?? '';
    expect((await replay.post('/login/second-factor', { csrf: replayCsrf, code: recovery })).location).toBe('/');
    const again = browser('198.51.100.11');
    await again.signIn(ANNA.user, ANNA.password);
    const againCsrf = csrfOf((await again.get('/login/second-factor')).text);
    expect((await again.post('/login/second-factor', { csrf: againCsrf, code: recovery })).status).toBe(401);
  });

  it('refuses a code posted from another site or without the sign-in’s token', async () => {
    const b = browser('198.51.100.12');
    await b.signIn(ANNA.user, ANNA.password);
    const code = totpCodeAt(anna.secret, stepAt(Date.now()));
    expect((await b.post('/login/second-factor', { csrf: 'wrong', code })).status).toBe(403);
    const crossSite = await fetch(`${postern.webUrl}/login/second-factor`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        origin: 'https://evil.example',
        'content-type': 'application/x-www-form-urlencoded',
        cookie: `postern_pending=${b.jar.get('postern_pending')}`,
      },
      body: new URLSearchParams({ code }).toString(),
    });
    expect(crossSite.status).toBe(403);
  });

  it('rate-limits wrong codes per mailbox', async () => {
    const b = browser('198.51.100.13');
    expect((await b.signIn(BEN.user, BEN.password)).location).toBe('/');
    await enrol(b);
    const attacker = browser('203.0.113.40');
    expect((await attacker.signIn(BEN.user, BEN.password)).location).toBe('/login/second-factor');
    const csrf = csrfOf((await attacker.get('/login/second-factor')).text);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      statuses.push((await attacker.post('/login/second-factor', { csrf, code: String(100000 + i) })).status);
    }
    expect(statuses.slice(0, 4)).toEqual([401, 401, 401, 401]);
    expect(statuses.slice(4)).toEqual([429, 429]);
    const audit = await postern.deps.db.many<{ actor_kind: string }>(
      "SELECT actor_kind FROM postern_audit WHERE action = 'web.login.failed' AND target = ?",
      [BEN.user],
    );
    expect(audit.length).toBe(4);
    expect(audit.every((row) => row.actor_kind === 'mailbox')).toBe(true);
  });
});

type SignInRow = {
  action: string;
  outcome: string;
  actor: string;
  actor_kind: string;
  ip: string | null;
  detail: Record<string, unknown> | null;
};

/** The sign-in rows about a mailbox written after row `afterId`, oldest first. */
async function signInRows(username: string, afterId: number): Promise<SignInRow[]> {
  return postern.deps.db.many<SignInRow>(
    `SELECT action, outcome, actor, actor_kind, ip, detail FROM postern_audit
      WHERE target = ? AND id > ? AND (action LIKE 'web.%' OR action LIKE 'tfa.%') ORDER BY id`,
    [username, afterId],
  );
}

async function lastAuditId(): Promise<number> {
  const row = await postern.deps.db.one<{ id: number | null }>('SELECT MAX(id) AS id FROM postern_audit');
  return Number(row?.id ?? 0);
}

describe('the audit trail of portal sign-ins', () => {
  const IP = '198.51.100.30';
  const asErin = { actor: ERIN.user, actor_kind: 'mailbox', ip: IP };

  it('records a password without its second factor as no sign-in, wrong or missing codes as failures, and the sign-in once the session is granted', async () => {
    const { db } = postern.deps;
    await seedTfa(db, { username: ERIN.user, authmech: 'totp', active: 1 });
    const secret = 'JBSWY3DPEHPK3PXP';
    const mark = await lastAuditId();
    const b = browser(IP);
    expect((await b.signIn(ERIN.user, ERIN.password)).location).toBe('/login/second-factor');
    // A stolen password alone: the first factor passed, nobody signed in.
    expect(await signInRows(ERIN.user, mark)).toEqual([
      {
        ...asErin,
        action: 'web.first_factor',
        outcome: 'success',
        detail: { factor: 'password', next: 'second_factor' },
      },
    ]);
    const csrf = csrfOf((await b.get('/login/second-factor')).text);
    expect((await b.post('/login/second-factor', { csrf, code: '' })).status).toBe(401);
    const wrong = totpCodeAt(secret, stepAt(Date.now()) + 5);
    expect((await b.post('/login/second-factor', { csrf, code: wrong })).status).toBe(401);
    const afterFailures = await signInRows(ERIN.user, mark);
    expect(afterFailures.slice(1)).toEqual([
      { ...asErin, action: 'web.login.failed', outcome: 'failure', detail: { reason: 'missing_code', factor: 'totp' } },
      { ...asErin, action: 'web.login.failed', outcome: 'failure', detail: { reason: 'wrong_code', factor: 'totp' } },
    ]);
    expect(b.jar.has('postern_session')).toBe(false);

    const code = totpCodeAt(secret, stepAt(Date.now()));
    expect((await b.post('/login/second-factor', { csrf, code })).location).toBe('/');
    expect(b.jar.has('postern_session')).toBe(true);
    const granted = (await signInRows(ERIN.user, mark)).filter((row) => row.action === 'web.login');
    expect(granted).toEqual([
      { ...asErin, action: 'web.login', outcome: 'success', detail: { second_factor: 'totp' } },
    ]);
    expect((await b.get('/')).status).toBe(200);

    // A recovery code: used, then the sign-in with it.
    const recovery = 'ABCD-EFGH-JKLM-NPQR';
    await db.transaction((tx) => replaceRecoveryCodes(tx, ERIN.user, [hashRecoveryCode(recovery)]));
    const second = await lastAuditId();
    const r = browser(IP);
    await r.signIn(ERIN.user, ERIN.password);
    const recoveryCsrf = csrfOf((await r.get('/login/second-factor')).text);
    expect((await r.post('/login/second-factor', { csrf: recoveryCsrf, code: recovery })).location).toBe('/');
    expect((await signInRows(ERIN.user, second)).map((row) => [row.action, row.outcome, row.detail])).toEqual([
      ['web.first_factor', 'success', { factor: 'password', next: 'second_factor' }],
      ['tfa.recovery_code.used', 'success', { recovery_codes_left: 0 }],
      ['web.login', 'success', { second_factor: 'recovery_code' }],
    ]);
  });

  it('records a mailbox without a second factor as signed in with none, once', async () => {
    const mark = await lastAuditId();
    const b = browser(IP);
    expect((await b.signIn(FRED.user, FRED.password)).location).toBe('/');
    expect(b.jar.has('postern_session')).toBe(true);
    expect(await signInRows(FRED.user, mark)).toEqual([
      {
        actor: FRED.user,
        actor_kind: 'mailbox',
        ip: IP,
        action: 'web.login',
        outcome: 'success',
        detail: { second_factor: 'none' },
      },
    ]);
  });
});

describe('a mailbox with only a kind of authenticator postern cannot check', () => {
  it('is not signed in with its password alone (mailcow WebAuthn), and says why; an inactive one does not count', async () => {
    const { db } = postern.deps;
    const id = await seedTfa(db, { username: DORA.user, authmech: 'webauthn', active: 1 });
    const b = browser('198.51.100.15');
    const refused = await b.signIn(DORA.user, DORA.password);
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('cannot check');
    expect(b.jar.has('postern_session')).toBe(false);
    expect(b.jar.has('postern_pending')).toBe(false);
    expect(
      await db.many("SELECT detail FROM postern_audit WHERE action = 'web.refused' AND target = ?", [DORA.user]),
    ).toEqual([{ detail: { reason: 'unsupported_second_factor' } }]);
    await db.execute('UPDATE tfa SET active = 0 WHERE id = ?', [id]);
    expect((await browser('198.51.100.15').signIn(DORA.user, DORA.password)).location).toBe('/');
  });
});

describe("an admin resetting a mailbox's second factor", () => {
  const api = (method: string, path: string) =>
    fetch(`${postern.webUrl}/api/v1${path}`, { method, headers: { 'x-api-key': API_KEY } });

  it('removes its authenticators and recovery codes, audited; the owner is told once at the next sign-in', async () => {
    expect((await api('DELETE', '/mailboxes/nobody@example.org/tfa')).status).toBe(404);
    const reset = await api('DELETE', `/mailboxes/${ANNA.user}/tfa`);
    expect(reset.status).toBe(200);
    expect(await reset.json()).toEqual({ success: true, removed: 1 });
    expect(await postern.deps.db.many('SELECT id FROM tfa WHERE username = ?', [ANNA.user])).toEqual([]);
    expect(await postern.deps.db.many('SELECT id FROM postern_recovery_codes WHERE username = ?', [ANNA.user])).toEqual(
      [],
    );
    const b = browser('198.51.100.14');
    expect((await b.signIn(ANNA.user, ANNA.password)).location).toBe('/');
    const home = await b.get('/');
    expect(home.text).toContain('id="tfa-reset-notice"');
    expect(home.text).toMatch(/<dd id="two-factor"><a href="\/tfa\/enrol">set up<\/a><\/dd>/);
    expect((await b.get('/')).text).not.toContain('id="tfa-reset-notice"');
    expect(
      await postern.deps.db.many(
        "SELECT actor, actor_kind, action FROM postern_audit WHERE target = ? AND action LIKE 'tfa.reset%' ORDER BY id",
        [ANNA.user],
      ),
    ).toEqual([
      { actor: 'api:config', actor_kind: 'api_key', action: 'tfa.reset' },
      { actor: ANNA.user, actor_kind: 'mailbox', action: 'tfa.reset.notified' },
    ]);
  });
});

describe('enforcement for mailbox users', () => {
  afterAll(async () => {
    await postern.deps.db.execute('DELETE FROM postern_two_factor_policy');
  });

  it('makes a local mailbox without TOTP enrol at its next sign-in, before anything else', async () => {
    const before = browser('198.51.100.20');
    expect((await before.signIn(CARL.user, CARL.password)).location).toBe('/');
    const policy = await fetch(`${postern.webUrl}/api/v1/two-factor-policy`, {
      method: 'PUT',
      headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ mailbox: true }),
    });
    expect(policy.status).toBe(200);

    const b = browser('198.51.100.20');
    expect((await b.signIn(CARL.user, CARL.password)).location).toBe('/tfa/enrol');
    expect(b.jar.has('postern_session')).toBe(false);
    expect((await b.get('/')).location).toBe('/login');
    const page = await b.get('/tfa/enrol');
    expect(page.text).toContain('required for your mailbox');
    // An app password can be made while held at enrolment, too.
    const form = new URLSearchParams({ csrf: csrfOf(page.text), name: 'Laptop' });
    form.append('protocols', 'imap');
    expect((await b.post('/tfa/app-passwords', form)).status).toBe(200);
    // A wrong confirmation code while held there is a failed sign-in.
    expect((await b.post('/tfa/enrol', { csrf: csrfOf(page.text), code: '000000' })).status).toBe(401);
    expect(b.jar.has('postern_session')).toBe(false);
    const { codes } = await enrol(b, stepAt(Date.now()));
    expect(codes).toHaveLength(10);
    // Enrolment was the last step: the portal session is open.
    expect(b.jar.has('postern_session')).toBe(true);
    expect((await b.get('/')).status).toBe(200);
    // A mailbox that has TOTP is asked for its code, as usual.
    expect((await browser('198.51.100.21').signIn(CARL.user, CARL.password)).location).toBe('/login/second-factor');
    const actions = await postern.deps.db.many<{ action: string; outcome: string; detail: unknown }>(
      "SELECT action, outcome, detail FROM postern_audit WHERE target = ? AND (action LIKE 'web.%' OR action IN ('tfa.enrol', 'app_password.create')) ORDER BY id",
      [CARL.user],
    );
    expect(actions.map((row) => [row.action, row.outcome, row.detail])).toEqual([
      ['web.login', 'success', { second_factor: 'none' }],
      ['web.first_factor', 'success', { factor: 'password', next: 'enrol' }],
      ['app_password.create', 'success', expect.objectContaining({ during: 'tfa_enrolment' })],
      ['web.login.failed', 'failure', { reason: 'wrong_code', factor: 'totp_enrolment' }],
      ['tfa.enrol', 'success', expect.objectContaining({ authmech: 'totp' })],
      ['web.login', 'success', { second_factor: 'totp' }],
      ['web.first_factor', 'success', { factor: 'password', next: 'second_factor' }],
    ]);
  });

  it('never put a password, TOTP key or recovery code in the audit trail, and no password in a page', async () => {
    const everything = JSON.stringify(await postern.deps.db.many('SELECT * FROM postern_audit'));
    const secrets = [ANNA.password, BEN.password, CARL.password, ...anna.codes];
    const keys = await postern.deps.db.many<{ secret: string }>('SELECT secret FROM tfa');
    for (const secret of [...secrets, ...keys.map((row) => row.secret)]) expect(everything).not.toContain(secret);
    for (const text of bodies)
      for (const password of [ANNA.password, BEN.password, CARL.password]) expect(text).not.toContain(password);
  });
});
