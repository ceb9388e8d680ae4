// Sign-in to the portal with a mailcow (local) mailbox password. Plain functions over deps: never
// imports hono. The limiter is the web-login one built in deps.ts; refusals are values.
import { foldAddress } from '../address.js';
import type { Redis } from '../cache/redis.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { CredentialVerifier } from '../passwords/credential-verifier.js';
import { type BanHook, createRateLimiter, limitsFromConfig, type RateLimiter } from '../rate-limit/limiter.js';
import { mailboxActor, recordAudit } from '../storage/audit.js';
import type { Db } from '../storage/db.js';
import { findLoginMailbox } from '../storage/mailboxes.js';
import { refuse, type WebRefusal } from './web-refusal.js';

export interface PasswordLoginDeps {
  db: Db;
  log: Logger;
  verifier: Pick<CredentialVerifier, 'verify' | 'verifyDummy'>;
  /** The web-login limiter (createWebLoginLimiter), not the passdb's. */
  limiter: RateLimiter;
}

export interface PasswordLogin {
  /** Sign in with a mailcow (local) mailbox password. */
  checkPassword(input: { username: string; password: string; ip?: string }): Promise<PasswordLoginOutcome>;
}

export function createPasswordLogin(deps: PasswordLoginDeps): PasswordLogin {
  return { checkPassword: (input) => checkWebPasswordLogin(deps, input) };
}

export type PasswordLoginOutcome = { ok: true; username: string } | WebRefusal;

const WRONG_CREDENTIALS: WebRefusal = refuse(
  401,
  'invalid_credentials',
  'Sign-in failed',
  'Wrong address or password. Mailboxes that use single sign-on cannot sign in with a password here: use the single sign-on button.',
);

/**
 * A mailcow (local) mailbox and its own password; app passwords do not open the portal and
 * IdP mailboxes have no password here. Failures go to the same kind of limiter as the passdb's
 * (distinct wrong passwords per user and per client IP, bans, known-good IPs), checked before
 * any hash runs. Every failure looks the same, so the page never tells which addresses exist.
 */
export async function checkWebPasswordLogin(
  deps: PasswordLoginDeps,
  input: { username: string; password: string; ip?: string },
): Promise<PasswordLoginOutcome> {
  const username = foldAddress(input.username.trim());
  if (!username || username.length > 255 || input.password.length === 0 || input.password.length > 4096) {
    return WRONG_CREDENTIALS;
  }
  const mailbox = await findLoginMailbox(deps.db, username);
  // Count against the canonical mailbox, as the passdb does: every spelling that finds it (alias
  // domains, letter case) shares its one budget. An unknown address is not counted by IP.
  const attempt = { ip: input.ip ?? '', username: mailbox?.username ?? username };
  // Logs name a real mailbox only: people type passwords into the address field.
  const logged = mailbox ? { user: mailbox.username } : {};
  const decision = await deps.limiter.check(attempt);
  if (decision.blocked) {
    deps.log.info({ ...logged, ip: input.ip, scope: decision.scope }, 'web login rate-limited');
    const minutes = Math.max(1, Math.ceil(decision.retryAfterSeconds / 60));
    return refuse(
      429,
      'rate_limited',
      'Too many attempts',
      `Too many failed sign-ins. Please try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`,
    );
  }

  const hash = mailbox && mailbox.authSource === 'mailcow' ? mailbox.passwordHash : '';
  if (!mailbox || !hash) {
    await deps.verifier.verifyDummy(input.password);
    await deps.limiter.recordFailure({ ...attempt, password: input.password });
    deps.log.info(
      { ...logged, reason: mailbox ? `authsource_${mailbox.authSource ?? 'none'}` : 'no_such_mailbox' },
      'web login failed',
    );
    await recordFailedPassword(deps.db, {
      ...(mailbox ? { username: mailbox.username } : {}),
      reason: mailbox ? 'no_local_password' : 'unknown_user',
      ...(input.ip ? { ip: input.ip } : {}),
    });
    return WRONG_CREDENTIALS;
  }
  const verdict = await deps.verifier.verify(mailbox.username, hash, input.password);
  if (!verdict.ok) {
    await deps.limiter.recordFailure({ ...attempt, password: input.password });
    deps.log.info({ ...logged, reason: verdict.reason }, 'web login failed');
    await recordFailedPassword(deps.db, {
      username: mailbox.username,
      reason: 'wrong_password',
      ...(input.ip ? { ip: input.ip } : {}),
    });
    return WRONG_CREDENTIALS;
  }
  // Only someone holding the password learns that the mailbox is disabled.
  if (mailbox.active !== 1 || !mailbox.domainActive) {
    await recordAudit(deps.db, {
      actor: mailboxActor(mailbox.username),
      action: 'web.refused',
      target: mailbox.username,
      detail: { reason: mailbox.active !== 1 ? 'mailbox_inactive' : 'domain_inactive' },
      ...(input.ip ? { ip: input.ip } : {}),
    });
    return refuse(403, 'mailbox_inactive', 'Mailbox disabled', 'This mailbox or its domain is disabled. Ask an admin.');
  }
  // The first factor only: the sign-in is audited when the session is granted (recordPortalSignIn).
  await deps.limiter.recordSuccess(attempt);
  return { ok: true, username: mailbox.username };
}

/**
 * A refused portal password (`web.login.failed`). Only a real mailbox is named: people type
 * passwords into the address field, so an unknown name is recorded as `anonymous`. Attempts the
 * limiter blocks write nothing (the ban itself is audited).
 */
async function recordFailedPassword(
  db: Pick<Db, 'execute'>,
  input: { username?: string; reason: 'wrong_password' | 'no_local_password' | 'unknown_user'; ip?: string },
): Promise<void> {
  await recordAudit(db, {
    actor: mailboxActor(input.username ?? 'anonymous'),
    action: 'web.login.failed',
    ...(input.username ? { target: input.username } : {}),
    detail: { reason: input.reason, factor: 'password' },
    ...(input.ip ? { ip: input.ip } : {}),
  });
}

/** What completed a portal sign-in after the password. */
export type PortalSecondFactor = 'totp' | 'recovery_code' | 'none';

/**
 * The password was right but a second step must follow (the code, or an enforced enrolment):
 * audited as `web.first_factor`, not as a sign-in, so a stolen password alone never reads as one.
 */
export async function recordPortalFirstFactor(
  db: Pick<Db, 'execute'>,
  input: { username: string; next: 'second_factor' | 'enrol'; ip?: string },
): Promise<void> {
  await recordAudit(db, {
    actor: mailboxActor(input.username),
    action: 'web.first_factor',
    target: input.username,
    detail: { factor: 'password', next: input.next },
    ...(input.ip ? { ip: input.ip } : {}),
  });
}

/** The portal session was granted: the sign-in (`web.login`) with the second factor it took. */
export async function recordPortalSignIn(
  db: Pick<Db, 'execute'>,
  input: { username: string; secondFactor: PortalSecondFactor; ip?: string },
): Promise<void> {
  await recordAudit(db, {
    actor: mailboxActor(input.username),
    action: 'web.login',
    target: input.username,
    detail: { second_factor: input.secondFactor },
    ...(input.ip ? { ip: input.ip } : {}),
  });
}

/**
 * src/rate-limit's limiter with the passdb's thresholds, in a key space of its own (`…web:`), so
 * browser failures and IMAP failures are banned independently. Its password fingerprints are
 * keyed with `fingerprintSecret`, the one deps.ts derives for the passdb's limiter (replicas agree).
 */
export function createWebLoginLimiter(
  deps: {
    redis: Redis;
    log: Logger;
    config: Pick<
      Config,
      | 'redisPrefix'
      | 'banUserThreshold'
      | 'banIpThreshold'
      | 'banWindowSeconds'
      | 'banSeconds'
      | 'banExemptNetworks'
      | 'knownGoodIpSeconds'
    >;
    onBan?: BanHook;
  },
  fingerprintSecret: string,
): RateLimiter {
  return createRateLimiter({
    redis: deps.redis,
    prefix: `${deps.config.redisPrefix}web:`,
    ...limitsFromConfig(deps.config),
    fingerprintSecret,
    log: deps.log,
    ...(deps.onBan ? { onBan: deps.onBan } : {}),
  });
}
