// The handoff's rules against real MariaDB and Redis, without nginx (test/e2e/sogo-handoff.test.ts
// drives the same code through real nginx and Dovecot).
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from '../../test/support/env.js';
import { seedDomain, seedMailbox } from '../../test/support/seed.js';
import { keys } from '../cache/keys.js';
import { createSogoHandoff, type SogoHandoff, type WebmailVerdict } from './sogo-handoff.js';
import { webSessionRefOf as portalSessionRefOf } from './web-sessions.js';
import { createWebmailSecretChecker } from './webmail-secret.js';

const DOMAIN = 'unit-handoff.example';
const ME = `me@${DOMAIN}`;
const LATER_OFF = `later-off@${DOMAIN}`;

let postern: TestPostern;
let handoff: SogoHandoff;

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');
const ks = () => ({ prefix: `${postern.name}:` });

/** A portal session as http/session.ts stores it; returns its reference. */
async function startPortalSession(username: string): Promise<{ ref: string; end(): Promise<void> }> {
  const id = randomBytes(32).toString('base64url');
  const ref = portalSessionRefOf(id);
  const session = { username, via: 'password', createdAt: Date.now(), csrfToken: 'x' };
  const ttl = postern.deps.config.sessionTtlSeconds;
  await postern.deps.redis.set(keys.webSession(ks(), ref), JSON.stringify(session), 'EX', ttl);
  return { ref, end: async () => void (await postern.deps.redis.del(keys.webSession(ks(), ref))) };
}

async function mint(username = ME, portalRef?: string) {
  const ref = portalRef ?? (await startPortalSession(username)).ref;
  const outcome = await handoff.openWebmail({ sessionUser: username, login: username, portalRef: ref });
  if (!outcome.ok) throw new Error(`expected a handoff, got ${outcome.reason}`);
  return outcome.secret;
}

function accepted(verdict: WebmailVerdict) {
  if (!verdict.ok) throw new Error(`expected acceptance, got ${verdict.reason}`);
  return verdict;
}

beforeAll(async () => {
  postern = await startTestPostern('sogounit', { POSTERN_SOGO_NETWORKS: '10.0.0.0/8,127.0.0.1,fd00::/8' });
  const db = postern.deps.db;
  await seedDomain(db, DOMAIN);
  await seedDomain(db, `off.${DOMAIN}`, { active: 0 });
  await seedMailbox(db, { username: ME, passwordHash: '' });
  await seedMailbox(db, { username: LATER_OFF, passwordHash: '' });
  await seedMailbox(db, { username: `inactive@${DOMAIN}`, passwordHash: '', active: 0 });
  await seedMailbox(db, { username: `parked@${DOMAIN}`, passwordHash: '', active: 2 });
  await seedMailbox(db, { username: `someone@off.${DOMAIN}`, passwordHash: '' });
  await seedMailbox(db, { username: `nosogo@${DOMAIN}`, passwordHash: '', attributes: { sogo_access: '0' } });
  handoff = createSogoHandoff(postern.deps);
});

afterAll(async () => {
  await postern?.destroy();
});

describe('minting a handoff', () => {
  it('stores only a digest of a 256-bit secret, bound to the user and the portal session, for at most 60 s', async () => {
    const portal = await startPortalSession(ME);
    const long = createSogoHandoff(postern.deps, { handoffTtlSeconds: 3600 });
    expect(long.handoffTtlSeconds).toBe(60);
    const outcome = await long.openWebmail({ sessionUser: ME, login: ME.toUpperCase(), portalRef: portal.ref });
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(outcome.secret, 'base64url')).toHaveLength(32);
    const key = keys.sogoHandoff(ks(), sha256(outcome.secret));
    expect(JSON.parse((await postern.deps.redis.get(key)) as string)).toEqual({ username: ME, portalRef: portal.ref });
    expect(await postern.deps.redis.ttl(key)).toBeLessThanOrEqual(60);
    expect(await postern.deps.redis.keys(`*${outcome.secret}*`)).toEqual([]);
  });

  it('treats a missing login= as the signed-in mailbox', async () => {
    const portal = await startPortalSession(ME);
    expect((await handoff.openWebmail({ sessionUser: ME, login: '', portalRef: portal.ref })).ok).toBe(true);
  });

  it.each([
    ['another mailbox', ME, `someone-else@${DOMAIN}`, 'other_user'],
    ['an inactive mailbox', `inactive@${DOMAIN}`, `inactive@${DOMAIN}`, 'mailbox_unavailable'],
    ['a receive-only mailbox (active = 2)', `parked@${DOMAIN}`, `parked@${DOMAIN}`, 'mailbox_unavailable'],
    ['a mailbox in an inactive domain', `someone@off.${DOMAIN}`, `someone@off.${DOMAIN}`, 'mailbox_unavailable'],
    ['a mailbox with sogo_access off', `nosogo@${DOMAIN}`, `nosogo@${DOMAIN}`, 'sogo_access_off'],
    ['a vanished mailbox', `gone@${DOMAIN}`, `gone@${DOMAIN}`, 'mailbox_unavailable'],
  ])('refuses %s and audits it', async (_label, sessionUser, login, reason) => {
    const portal = await startPortalSession(sessionUser);
    const outcome = await handoff.openWebmail({ sessionUser, login, portalRef: portal.ref, ip: '198.51.100.7' });
    expect(outcome).toMatchObject({ ok: false, status: 403, reason });
    const audit = await postern.deps.db.one<{ actor: string; detail: unknown; ip: string }>(
      "SELECT actor, detail, ip FROM postern_audit WHERE action = 'sogo.handoff.refused' ORDER BY id DESC LIMIT 1",
    );
    const detail = typeof audit?.detail === 'string' ? JSON.parse(audit.detail) : audit?.detail;
    expect({ ...audit, detail }).toEqual({ actor: sessionUser, detail: { reason }, ip: '198.51.100.7' });
  });
});

describe('redeeming a handoff', () => {
  it('works exactly once: the second presentation is a replay', async () => {
    const secret = await mint();
    const first = accepted(await handoff.verifyWebmailRequest({ handoffSecret: secret }));
    expect(first).toMatchObject({ username: ME, clearHandoff: true });
    expect(first.newSession?.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(first.imapSecret).not.toBe(first.newSession?.id);
    expect(await handoff.verifyWebmailRequest({ handoffSecret: secret })).toMatchObject({
      ok: false,
      reason: 'handoff_replayed',
      clearHandoff: true,
    });
  });

  it('lets exactly one of two concurrent redemptions win', async () => {
    const secret = await mint();
    const verdicts = await Promise.all(
      Array.from({ length: 5 }, () => handoff.verifyWebmailRequest({ handoffSecret: secret })),
    );
    expect(verdicts.filter((v) => v.ok)).toHaveLength(1);
    expect(verdicts.filter((v) => !v.ok).map((v) => (v.ok ? '' : v.reason))).toEqual(Array(4).fill('handoff_replayed'));
  });

  it('expires after its TTL', async () => {
    const short = createSogoHandoff(postern.deps, { handoffTtlSeconds: 1 });
    const portal = await startPortalSession(ME);
    const outcome = await short.openWebmail({ sessionUser: ME, login: ME, portalRef: portal.ref });
    if (!outcome.ok) throw new Error('expected a handoff');
    await new Promise((r) => setTimeout(r, 1100));
    expect(await short.verifyWebmailRequest({ handoffSecret: outcome.secret })).toMatchObject({
      ok: false,
      reason: 'handoff_expired',
    });
  });

  it.each([
    ['a forged value', () => randomBytes(32).toString('base64url'), 'handoff_unknown'],
    ['a malformed value', () => 'short', 'handoff_malformed'],
  ])('refuses %s', async (_label, value, reason) => {
    expect(await handoff.verifyWebmailRequest({ handoffSecret: value() })).toMatchObject({ ok: false, reason });
  });

  it('refuses when the portal session ended before the redemption', async () => {
    const portal = await startPortalSession(ME);
    const secret = await mint(ME, portal.ref);
    await portal.end();
    expect(await handoff.verifyWebmailRequest({ handoffSecret: secret })).toMatchObject({
      ok: false,
      reason: 'portal_session_ended',
    });
  });

  it('refuses when sogo_access was switched off after minting', async () => {
    const secret = await mint(LATER_OFF);
    await postern.deps.db.execute(
      `UPDATE mailbox SET attributes = JSON_SET(attributes, '$.sogo_access', '0') WHERE username = ?`,
      [LATER_OFF],
    );
    expect(await handoff.verifyWebmailRequest({ handoffSecret: secret })).toMatchObject({
      ok: false,
      reason: 'sogo_access_off',
    });
  });
});

describe('the webmail session', () => {
  it('keeps answering with the same IMAP secret until the portal session ends', async () => {
    const portal = await startPortalSession(ME);
    const started = accepted(await handoff.verifyWebmailRequest({ handoffSecret: await mint(ME, portal.ref) }));
    const id = started.newSession?.id as string;
    const again = accepted(await handoff.verifyWebmailRequest({ webmailId: id }));
    expect(again).toMatchObject({ username: ME, imapSecret: started.imapSecret, clearWebmail: false });
    expect(again.newSession).toBeUndefined();

    await portal.end();
    expect(await handoff.verifyWebmailRequest({ webmailId: id })).toMatchObject({
      ok: false,
      reason: 'portal_session_ended',
      clearWebmail: true,
    });
    expect(await postern.deps.redis.exists(keys.sogoWebmailSession(ks(), sha256(id)))).toBe(0);
  });

  it('keeps the portal session alive while webmail is in use, up to the session cap', async () => {
    const { redis, config } = postern.deps;
    const portal = await startPortalSession(ME);
    const started = accepted(await handoff.verifyWebmailRequest({ handoffSecret: await mint(ME, portal.ref) }));
    const id = started.newSession?.id as string;
    const sessionKeys = [
      keys.webSession(ks(), portal.ref),
      keys.sogoWebmailSession(ks(), sha256(id)),
      keys.sogoImapSecret(ks(), sha256(started.imapSecret)),
    ];
    // An hour on, with two hours left in Redis: reading mail extends all three and the cookie.
    const hourLater = createSogoHandoff(postern.deps, { now: () => Date.now() + 3_600_000 });
    for (const key of sessionKeys) await redis.pexpire(key, 2 * 3_600_000);
    const extended = accepted(await hourLater.verifyWebmailRequest({ webmailId: id }));
    expect(extended.newSession).toEqual({ id, maxAgeSeconds: config.sessionTtlSeconds });
    for (const key of sessionKeys) expect(await redis.pttl(key)).toBeGreaterThan((config.sessionTtlSeconds - 5) * 1000);
    // Just extended: the next request writes nothing.
    expect(accepted(await hourLater.verifyWebmailRequest({ webmailId: id })).newSession).toBeUndefined();

    // Past POSTERN_SESSION_MAX_SECONDS from sign-in, use no longer helps.
    const pastCap = createSogoHandoff(postern.deps, { now: () => Date.now() + (config.sessionMaxSeconds + 1) * 1000 });
    expect(await pastCap.verifyWebmailRequest({ webmailId: id })).toMatchObject({
      ok: false,
      reason: 'portal_session_ended',
      clearWebmail: true,
    });
    expect(await redis.exists(sessionKeys[1] as string, sessionKeys[2] as string)).toBe(0);
  });

  it('is replaced by a newer handoff in the same browser', async () => {
    const portal = await startPortalSession(ME);
    const old = accepted(await handoff.verifyWebmailRequest({ handoffSecret: await mint(ME, portal.ref) }));
    const oldId = old.newSession?.id as string;
    const renewed = accepted(
      await handoff.verifyWebmailRequest({ handoffSecret: await mint(ME, portal.ref), webmailId: oldId }),
    );
    expect(renewed.newSession?.id).not.toBe(oldId);
    expect(await handoff.verifyWebmailRequest({ webmailId: oldId })).toMatchObject({
      ok: false,
      reason: 'webmail_session_unknown',
    });
  });

  it('survives a stale handoff cookie next to it', async () => {
    const portal = await startPortalSession(ME);
    const secret = await mint(ME, portal.ref);
    const id = accepted(await handoff.verifyWebmailRequest({ handoffSecret: secret })).newSession?.id as string;
    const verdict = accepted(await handoff.verifyWebmailRequest({ handoffSecret: secret, webmailId: id }));
    expect(verdict).toMatchObject({ username: ME, clearHandoff: true });
  });

  it('answers 401-worthy "no_credentials" without an audit row when nothing is presented', async () => {
    const before = await postern.deps.db.one<{ n: number }>('SELECT COUNT(*) AS n FROM postern_audit');
    expect(await handoff.verifyWebmailRequest({})).toMatchObject({ ok: false, reason: 'no_credentials' });
    const after = await postern.deps.db.one<{ n: number }>('SELECT COUNT(*) AS n FROM postern_audit');
    expect(Number(after?.n)).toBe(Number(before?.n));
  });
});

describe('the webmail IMAP secret in the passdb', () => {
  let imapSecret: string;
  let portal: { ref: string; end(): Promise<void> };

  beforeAll(async () => {
    portal = await startPortalSession(ME);
    imapSecret = accepted(await handoff.verifyWebmailRequest({ handoffSecret: await mint(ME, portal.ref) })).imapSecret;
  });

  it.each([
    ['from a SOGo network', ME, '10.1.2.3', true],
    ['from a SOGo address given without a prefix', ME, '127.0.0.1', true],
    ['from an IPv4-mapped SOGo address', ME, '::ffff:10.1.2.3', true],
    ['from an IPv6 SOGo network', ME, 'fd00::25', true],
    ['with the username in another case', ME.toUpperCase(), '10.1.2.3', true],
    ['from anywhere else', ME, '192.0.2.1', false],
    ['from an address that is no IP', ME, 'sogo', false],
    ['for another user', `nosogo@${DOMAIN}`, '10.1.2.3', false],
  ])('%s: %s', async (_label, username, realRip, expected) => {
    const checker = createWebmailSecretChecker(postern.deps);
    expect(await checker.isWebmailSecret(username, imapSecret, realRip)).toBe(expected);
  });

  it('rejects any other 43-character value', async () => {
    const checker = createWebmailSecretChecker(postern.deps);
    expect(await checker.isWebmailSecret(ME, randomBytes(32).toString('base64url'), '10.1.2.3')).toBe(false);
  });

  it('is off when POSTERN_SOGO_NETWORKS is empty', async () => {
    const checker = createWebmailSecretChecker({
      redis: postern.deps.redis,
      config: { redisPrefix: `${postern.name}:`, sogoNetworks: [] },
    });
    expect(await checker.isWebmailSecret(ME, imapSecret, '10.1.2.3')).toBe(false);
  });

  it('dies with the portal session', async () => {
    const checker = createWebmailSecretChecker(postern.deps);
    await portal.end();
    expect(await checker.isWebmailSecret(ME, imapSecret, '10.1.2.3')).toBe(false);
  });
});
