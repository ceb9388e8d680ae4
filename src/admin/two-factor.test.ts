// The second-factor use-cases against the real MariaDB and Redis with a fixed clock: the edges of
// the ±1-step window, no replay (the same step, or an older one, is refused once a later one was
// used), two requests racing with one code (one wins), recovery codes single-use (also when
// raced), enrolment confirmation and expiry; and the two-factor policy's no-self-lockout rule.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dropDatabase, MYSQL_ROOT_URL, REDIS_URL, uniqueName } from '../../test/support/env.js';
import { createRedis, type Redis } from '../cache/redis.js';
import { createLogger } from '../log.js';
import { createRateLimiter } from '../rate-limit/limiter.js';
import { createDb, type Db } from '../storage/db.js';
import { applyMigrations } from '../storage/migrate.js';
import { readTwoFactorPolicy } from '../storage/two-factor-policy.js';
import { generateRecoveryCodes, hashRecoveryCode, totpCodeAt } from './totp.js';
import { checkSecondFactor, confirmTotpEnrolment, startTotpEnrolment, type TwoFactorDeps } from './two-factor.js';
import { ACTOR_NOT_ENROLLED_MESSAGE, changeTwoFactorPolicy } from './two-factor-policy.js';

const name = uniqueName('two_factor');
const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const STEP = 59_000_000;
/** The first and the last millisecond of STEP. */
const START_MS = STEP * 30_000;
const END_MS = START_MS + 29_999;
let db: Db;
let redis: Redis;
let clockMs = START_MS;

function depsFor(subject: 'admin' | 'mailbox' = 'admin'): TwoFactorDeps {
  const log = createLogger('silent');
  return {
    db,
    redis,
    log,
    redisPrefix: `${name}:`,
    subject,
    now: () => clockMs,
    limiter: createRateLimiter({
      redis,
      prefix: `${name}:${subject}:`,
      ipThreshold: 1000,
      userThreshold: 1000,
      windowSeconds: 600,
      banSeconds: 600,
      exemptNetworks: [],
      knownGoodIpSeconds: 600,
      fingerprintSecret: 'test',
      log,
    }),
  };
}

async function seedTotp(username: string, lastStep = 0) {
  await db.execute(
    "INSERT INTO tfa (key_id, username, authmech, secret, counter, active) VALUES ('phone', ?, 'totp', ?, ?, 1)",
    [username, SECRET, lastStep],
  );
}

beforeAll(async () => {
  db = await createDb({ url: `${MYSQL_ROOT_URL}/${name}`, poolSize: 4, createDatabase: true });
  await applyMigrations(db, createLogger('silent'));
  redis = createRedis(REDIS_URL);
});

afterAll(async () => {
  const stale = await redis?.keys(`${name}:*`);
  if (stale?.length) await redis.del(...stale);
  redis?.disconnect();
  await db?.close();
  await dropDatabase(name);
});

beforeEach(async () => {
  clockMs = START_MS;
  await db.execute('DELETE FROM tfa');
  await db.execute('DELETE FROM postern_recovery_codes');
  await db.execute('DELETE FROM postern_two_factor_policy');
});

describe('checkSecondFactor on the window edges', () => {
  it.each([
    ['the first ms of the step', START_MS, STEP - 1, true],
    ['the first ms of the step', START_MS, STEP, true],
    ['the first ms of the step', START_MS, STEP + 1, true],
    ['the first ms of the step', START_MS, STEP - 2, false],
    ['the first ms of the step', START_MS, STEP + 2, false],
    ['the last ms of the step', END_MS, STEP + 1, true],
    ['the last ms of the step', END_MS, STEP - 1, true],
    ['the last ms of the step', END_MS, STEP + 2, false],
    ['the last ms of the step', END_MS + 1, STEP - 1, false],
  ])('at %s (%i) the code of step %i is accepted: %s', async (_label, at, step, accepted) => {
    await seedTotp('edge');
    clockMs = at;
    const outcome = await checkSecondFactor(depsFor(), { username: 'edge', code: totpCodeAt(SECRET, step) });
    expect(outcome.ok).toBe(accepted);
  });

  it('refuses the same code twice, and an older step once a later one was used', async () => {
    await seedTotp('replay');
    const deps = depsFor();
    expect(await checkSecondFactor(deps, { username: 'replay', code: totpCodeAt(SECRET, STEP) })).toMatchObject({
      ok: true,
      factor: 'totp',
    });
    expect(await checkSecondFactor(deps, { username: 'replay', code: totpCodeAt(SECRET, STEP) })).toMatchObject({
      ok: false,
      status: 401,
    });
    expect((await checkSecondFactor(deps, { username: 'replay', code: totpCodeAt(SECRET, STEP + 1) })).ok).toBe(true);
    expect((await checkSecondFactor(deps, { username: 'replay', code: totpCodeAt(SECRET, STEP - 1) })).ok).toBe(false);
    const [row] = await db.many<{ counter: number }>("SELECT counter FROM tfa WHERE username = 'replay'");
    expect(Number(row?.counter)).toBe(STEP + 1);
  });

  it('lets exactly one of two requests racing with the same code win', async () => {
    await seedTotp('race');
    const deps = depsFor();
    const code = totpCodeAt(SECRET, STEP);
    const outcomes = await Promise.all(
      Array.from({ length: 6 }, () => checkSecondFactor(deps, { username: 'race', code })),
    );
    expect(outcomes.filter((outcome) => outcome.ok)).toHaveLength(1);
  });

  it('takes each recovery code once, also when raced, and tells how many are left', async () => {
    const codes = generateRecoveryCodes();
    for (const code of codes) {
      await db.execute('INSERT INTO postern_recovery_codes (username, code_hash) VALUES (?, ?)', [
        'rescue@example.org',
        hashRecoveryCode(code),
      ]);
    }
    const deps = depsFor('mailbox');
    const outcomes = await Promise.all(
      Array.from({ length: 4 }, () =>
        checkSecondFactor(deps, { username: 'rescue@example.org', code: (codes[0] ?? '').toLowerCase() }),
      ),
    );
    expect(outcomes.filter((outcome) => outcome.ok)).toEqual([
      { ok: true, factor: 'recovery_code', recoveryCodesLeft: 9 },
    ]);
    expect((await checkSecondFactor(deps, { username: 'rescue@example.org', code: codes[0] ?? '' })).ok).toBe(false);
    // Someone else's code is no code at all.
    expect((await checkSecondFactor(deps, { username: 'other@example.org', code: codes[1] ?? '' })).ok).toBe(false);
    const audit = await db.many<{ action: string; actor_kind: string }>(
      "SELECT action, actor_kind FROM postern_audit WHERE target = 'rescue@example.org' ORDER BY id",
    );
    expect(audit.map((row) => row.action)).toContain('tfa.recovery_code.used');
    expect(audit.map((row) => row.action)).toContain('web.login.failed');
    expect(audit.every((row) => row.actor_kind === 'mailbox')).toBe(true);
  });
});

describe('enrolment', () => {
  it('keeps the same pending key while it is asked again, and records the confirming step as spent', async () => {
    const deps = depsFor('mailbox');
    const first = await startTotpEnrolment(deps, 'new@example.org');
    const again = await startTotpEnrolment(deps, 'new@example.org');
    expect(again.secret).toBe(first.secret);
    expect(first.uri).toMatch(/^otpauth:\/\/totp\/postern:new%40example\.org\?secret=[A-Z2-7]{32}&issuer=postern/);
    const wrong = await confirmTotpEnrolment(deps, { username: 'new@example.org', code: '000000' });
    expect(wrong).toMatchObject({ ok: false, status: 401 });
    const done = await confirmTotpEnrolment(deps, {
      username: 'new@example.org',
      code: totpCodeAt(first.secret, STEP + 1),
    });
    expect(done.ok && done.recoveryCodes).toHaveLength(10);
    const [row] = await db.many<{ counter: number; authmech: string; key_id: string }>(
      "SELECT counter, authmech, key_id FROM tfa WHERE username = 'new@example.org'",
    );
    expect(row).toMatchObject({ authmech: 'totp', key_id: 'authenticator' });
    expect(Number(row?.counter)).toBe(STEP + 1);
    // The confirming code cannot sign in; the pending key is gone.
    expect(
      (await checkSecondFactor(deps, { username: 'new@example.org', code: totpCodeAt(first.secret, STEP + 1) })).ok,
    ).toBe(false);
    expect(await confirmTotpEnrolment(deps, { username: 'new@example.org', code: '123456' })).toMatchObject({
      ok: false,
      status: 400,
    });
  });
});

describe('changeTwoFactorPolicy', () => {
  it('refuses a signed-in admin without a second factor turning any role on, and lets it turn roles off', async () => {
    const refused = await changeTwoFactorPolicy(
      { db },
      { change: { mailbox: true }, actor: { kind: 'admin', name: 'lee', role: 'superadmin' }, actorAccount: 'lee' },
    );
    expect(refused).toEqual({ ok: false, denial: 'actor_not_enrolled', message: ACTOR_NOT_ENROLLED_MESSAGE });
    expect((await readTwoFactorPolicy(db)).policy).toEqual({ superadmin: false, domainadmin: false, mailbox: false });
    expect(
      (
        await changeTwoFactorPolicy(
          { db },
          {
            change: { mailbox: false },
            actor: { kind: 'admin', name: 'lee', role: 'superadmin' },
            actorAccount: 'lee',
          },
        )
      ).ok,
    ).toBe(true);
  });

  it('lets an enrolled admin, or an API key, turn roles on; only changed roles are written and audited', async () => {
    await seedTotp('kim');
    const on = await changeTwoFactorPolicy(
      { db },
      { change: { superadmin: true, mailbox: false }, actor: { kind: 'admin', name: 'kim' }, actorAccount: 'kim' },
    );
    expect(on).toEqual({
      ok: true,
      before: { superadmin: false, domainadmin: false, mailbox: false },
      after: { superadmin: true, domainadmin: false, mailbox: false },
    });
    const stored = await readTwoFactorPolicy(db);
    expect(Object.keys(stored.changes)).toEqual(['superadmin']);
    expect(stored.changes.superadmin?.modifiedBy).toBe('kim');
    const viaKey = await changeTwoFactorPolicy(
      { db },
      { change: { domainadmin: true }, actor: { kind: 'api_key', name: 'api:config', role: 'superadmin' } },
    );
    expect(viaKey.ok && viaKey.after).toEqual({ superadmin: true, domainadmin: true, mailbox: false });
    const before = await db.many("SELECT id FROM postern_audit WHERE action = 'two_factor_policy.update'");
    // Setting what is already set changes nothing and writes no audit row.
    await changeTwoFactorPolicy(
      { db },
      { change: { domainadmin: true }, actor: { kind: 'api_key', name: 'api:config', role: 'superadmin' } },
    );
    expect(await db.many("SELECT id FROM postern_audit WHERE action = 'two_factor_policy.update'")).toHaveLength(
      before.length,
    );
  });
});
