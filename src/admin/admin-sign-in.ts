// The admin sign-in decision: the password (checked with the mailbox hash code, through the same
// verifier), then what must follow (second factor, enrolment, or nothing). Failures are counted
// per client IP and per username by src/rate-limit's limiter in a key space of its own, before
// any hash runs; a known-good IP keeps its admin signed in even while the username is banned.
// Every outcome looks the same to a stranger; only the audit trail and log say why.
import { createHmac, randomBytes } from 'node:crypto';
import type { Redis } from '../cache/redis.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { CredentialVerifier } from '../login/mail-login.js';
import { type BanHook, createRateLimiter, limitsFromConfig, type RateLimiter } from '../rate-limit/limiter.js';
import { findAdmin, findAdminCredential } from '../storage/admins.js';
import { recordAudit } from '../storage/audit.js';
import { adminAuditActor } from '../storage/audit-actors.js';
import type { Db } from '../storage/db.js';
import { findActiveTotp, hasAnyActiveTfa } from '../storage/two-factor.js';
import { isRoleEnforced } from '../storage/two-factor-policy.js';
import { isValidAdminUsername, normaliseUsername } from './admin-accounts.js';

export interface AdminSignInDeps {
  db: Db;
  verifier: Pick<CredentialVerifier, 'verify' | 'verifyDummy'>;
  limiter: RateLimiter;
  log: Logger;
}

export type PasswordStepOutcome =
  | { ok: true; username: string; next: 'second_factor' | 'enrol' | 'full'; tfaResetNotice: boolean }
  | {
      ok: false;
      status: 401 | 403 | 429;
      reason: 'invalid_credentials' | 'rate_limited' | 'unsupported_second_factor';
      message: string;
    };

/**
 * mailcow also keeps WebAuthn, U2F and Yubico OTP authenticators in `tfa`; postern checks only
 * TOTP. An account protected by one of those must not get in with its password alone.
 */
export const UNSUPPORTED_SECOND_FACTOR_MESSAGE =
  'This account uses a kind of two-factor sign-in (such as a security key) that postern cannot check. Ask a superadmin to reset it, or add a TOTP authenticator in mailcow.';

export const WRONG_ADMIN_CREDENTIALS = {
  ok: false,
  status: 401,
  reason: 'invalid_credentials',
  message: 'Wrong username or password.',
} as const;

export function rateLimitedMessage(retryAfterSeconds: number): string {
  const minutes = Math.max(1, Math.ceil(retryAfterSeconds / 60));
  return `Too many failed sign-ins. Please try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`;
}

export async function checkAdminPassword(
  deps: AdminSignInDeps,
  input: { username: string; password: string; ip?: string },
): Promise<PasswordStepOutcome> {
  const username = normaliseUsername(input.username);
  if (!isValidAdminUsername(username) || input.password.length === 0 || input.password.length > 4096) {
    return WRONG_ADMIN_CREDENTIALS;
  }
  const attempt = { ip: input.ip ?? '', username };
  const decision = await deps.limiter.check(attempt);
  if (decision.blocked) {
    deps.log.info({ admin: username, ip: input.ip, scope: decision.scope }, 'admin sign-in rate-limited');
    return { ok: false, status: 429, reason: 'rate_limited', message: rateLimitedMessage(decision.retryAfterSeconds) };
  }
  const credential = await findAdminCredential(deps.db, username);
  if (!credential) {
    await deps.verifier.verifyDummy(input.password);
    await deps.limiter.recordFailure({ ...attempt, password: input.password });
    // The typed name is not recorded: people type passwords into the username field.
    await audit(deps, { action: 'admin.login.failed', detail: { reason: 'unknown_user' }, ip: input.ip });
    return WRONG_ADMIN_CREDENTIALS;
  }
  const verdict = await deps.verifier.verify(credential.username, credential.passwordHash, input.password);
  if (!verdict.ok || !credential.active) {
    await deps.limiter.recordFailure({ ...attempt, password: input.password });
    await audit(deps, {
      action: 'admin.login.failed',
      target: credential.username,
      detail: { reason: verdict.ok ? 'disabled' : 'wrong_password', factor: 'password' },
      ip: input.ip,
    });
    return WRONG_ADMIN_CREDENTIALS;
  }
  const account = await findAdmin(deps.db, credential.username);
  if (!account) return WRONG_ADMIN_CREDENTIALS;
  const hasTotp = (await findActiveTotp(deps.db, account.username)).length > 0;
  if (!hasTotp && (await hasAnyActiveTfa(deps.db, account.username))) {
    await audit(deps, {
      action: 'admin.login.failed',
      target: account.username,
      detail: { reason: 'unsupported_second_factor' },
      ip: input.ip,
    });
    return { ok: false, status: 403, reason: 'unsupported_second_factor', message: UNSUPPORTED_SECOND_FACTOR_MESSAGE };
  }
  const role = account.superadmin ? 'superadmin' : 'domainadmin';
  // Enforced for this account (mailcow's force_tfa) or for its whole role (the two-factor policy).
  const mustEnrol =
    !hasTotp && (Number(account.attributes.force_tfa ?? 0) === 1 || (await isRoleEnforced(deps.db, role)));
  const next = hasTotp ? 'second_factor' : mustEnrol ? 'enrol' : 'full';
  // Not a sign-in yet: that is audited once the second step is done (completeAdminSignIn).
  if (next !== 'full') {
    await audit(deps, {
      action: 'admin.first_factor',
      target: account.username,
      detail: { factor: 'password', next },
      ip: input.ip,
    });
  }
  return {
    ok: true,
    username: account.username,
    next,
    tfaResetNotice: Number(account.attributes.tfa_reset_notice ?? 0) === 1,
  };
}

/** Sign-in is complete: the IP becomes known-good for this admin, and it is audited. */
export async function completeAdminSignIn(
  deps: Pick<AdminSignInDeps, 'db' | 'limiter' | 'log'>,
  input: { username: string; ip?: string; secondFactor: 'totp' | 'recovery_code' | 'none' },
): Promise<void> {
  await deps.limiter.recordSuccess({ ip: input.ip ?? '', username: input.username });
  await audit(deps, {
    action: 'admin.login',
    target: input.username,
    detail: { second_factor: input.secondFactor },
    ip: input.ip,
  });
}

async function audit(
  deps: Pick<AdminSignInDeps, 'db'>,
  entry: { action: string; target?: string; detail: Record<string, unknown>; ip?: string | undefined },
): Promise<void> {
  await recordAudit(deps.db, {
    // A sign-in attempt acts as the account it names; an unknown name is not recorded.
    actor: entry.target ? await adminAuditActor(deps.db, entry.target) : { kind: 'admin', name: 'anonymous' },
    action: entry.action,
    ...(entry.target ? { target: entry.target } : {}),
    detail: entry.detail,
    ...(entry.ip ? { ip: entry.ip } : {}),
  });
}

/**
 * The limiter with the passdb's thresholds in its own key space (`…admin:`), so admin sign-in
 * failures never ban a mail user and the other way round.
 */
export function createAdminLoginLimiter(deps: {
  redis: Redis;
  config: Config;
  log: Logger;
  onBan?: BanHook;
}): RateLimiter {
  const { config } = deps;
  const fingerprintSecret = config.secretKey
    ? createHmac('sha256', config.secretKey).update('postern admin-login limiter').digest('hex')
    : randomBytes(32).toString('hex');
  return createRateLimiter({
    redis: deps.redis,
    prefix: `${config.redisPrefix}admin:`,
    ...limitsFromConfig(config),
    fingerprintSecret,
    log: deps.log,
    ...(deps.onBan ? { onBan: deps.onBan } : {}),
  });
}
