// Second factor use-cases: check a TOTP or recovery code at sign-in (rate-limited with the
// sign-in's limiter, each code accepted once), and enrol a TOTP authenticator (a secret shown
// with its QR code, confirmed with a code, then 10 recovery codes shown once and stored hashed).
// The same code serves admins (admin sign-in) and mailbox users (the portal): `subject` says which.
import { keys } from '../cache/keys.js';
import type { Redis } from '../cache/redis.js';
import type { Logger } from '../log.js';
import type { RateLimiter } from '../rate-limit/limiter.js';
import { mergeAdminAttributes } from '../storage/admins.js';
import { type AuditActorRef, recordAudit } from '../storage/audit.js';
import { adminAuditActor } from '../storage/audit-actors.js';
import type { Db } from '../storage/db.js';
import {
  advanceTotpStep,
  countUnusedRecoveryCodes,
  findActiveTotp,
  insertTotp,
  replaceRecoveryCodes,
  useRecoveryCode,
} from '../storage/two-factor.js';
import { rateLimitedMessage } from './admin-sign-in.js';
import {
  generateRecoveryCodes,
  generateTotpSecret,
  hashRecoveryCode,
  looksLikeRecoveryCode,
  matchTotpStep,
  totpQrSvg,
  totpUri,
} from './totp.js';

export interface TwoFactorDeps {
  db: Db;
  redis: Redis;
  limiter: RateLimiter;
  log: Logger;
  redisPrefix: string;
  /** Whose second factor this is: an admin account (default) or a mailbox (the portal). */
  subject?: 'admin' | 'mailbox';
  /** Milliseconds; injectable so tests can stand on a window's edge. */
  now?: () => number;
}

export const ENROLMENT_TTL_SECONDS = 600;
const ISSUER = 'postern';

export type SecondFactorOutcome =
  | { ok: true; factor: 'totp' | 'recovery_code'; recoveryCodesLeft?: number }
  | { ok: false; status: 401 | 429; message: string };

const WRONG_CODE = { ok: false, status: 401, message: 'That code is not valid (or was already used).' } as const;

export async function checkSecondFactor(
  deps: TwoFactorDeps,
  input: { username: string; code: string; ip?: string },
): Promise<SecondFactorOutcome> {
  const attempt = { ip: input.ip ?? '', username: input.username };
  const decision = await deps.limiter.check(attempt);
  if (decision.blocked) return { ok: false, status: 429, message: rateLimitedMessage(decision.retryAfterSeconds) };
  const code = input.code.trim().slice(0, 64);
  const nowMs = (deps.now ?? Date.now)();
  if (looksLikeRecoveryCode(code)) {
    if (await useRecoveryCode(deps.db, input.username, hashRecoveryCode(code))) {
      const left = await countUnusedRecoveryCodes(deps.db, input.username);
      await audit(deps, input, 'tfa.recovery_code.used', { recovery_codes_left: left });
      return { ok: true, factor: 'recovery_code', recoveryCodesLeft: left };
    }
  } else {
    for (const row of await findActiveTotp(deps.db, input.username)) {
      const step = matchTotpStep(row.secret, code, nowMs, row.lastStep);
      // The UPDATE decides between two requests racing with the same code: one wins.
      if (step !== undefined && (await advanceTotpStep(deps.db, row.id, step))) return { ok: true, factor: 'totp' };
    }
  }
  await deps.limiter.recordFailure({ ...attempt, password: code });
  await audit(deps, input, failedSignInAction(deps), {
    reason: code === '' ? 'missing_code' : 'wrong_code',
    factor: looksLikeRecoveryCode(code) ? 'recovery_code' : 'totp',
  });
  return WRONG_CODE;
}

/** A sign-in that did not complete: the admin sign-in's action, or the portal's. */
function failedSignInAction(deps: Pick<TwoFactorDeps, 'subject'>): string {
  return deps.subject === 'mailbox' ? 'web.login.failed' : 'admin.login.failed';
}

export interface PendingEnrolment {
  secret: string;
  uri: string;
  qrSvg: string;
}

/** A new secret, kept (unconfirmed) for ten minutes; asking again shows the same one. */
export async function startTotpEnrolment(
  deps: Pick<TwoFactorDeps, 'redis' | 'redisPrefix'>,
  username: string,
): Promise<PendingEnrolment> {
  const key = keys.totpEnrolment({ prefix: deps.redisPrefix }, username);
  const fresh = generateTotpSecret();
  await deps.redis.set(key, fresh, 'EX', ENROLMENT_TTL_SECONDS, 'NX');
  const secret = (await deps.redis.get(key)) ?? fresh;
  const uri = totpUri({ issuer: ISSUER, account: username, secret });
  return { secret, uri, qrSvg: await totpQrSvg(uri) };
}

export type EnrolmentOutcome =
  | { ok: true; recoveryCodes: string[] }
  | { ok: false; status: 400 | 401 | 429; message: string };

export async function confirmTotpEnrolment(
  deps: TwoFactorDeps,
  input: {
    username: string;
    code: string;
    name?: string;
    ip?: string;
    /** The enrolment is the last step of a sign-in (enforced): a wrong code is a failed sign-in. */
    signingIn?: boolean;
  },
): Promise<EnrolmentOutcome> {
  const attempt = { ip: input.ip ?? '', username: input.username };
  const decision = await deps.limiter.check(attempt);
  if (decision.blocked) return { ok: false, status: 429, message: rateLimitedMessage(decision.retryAfterSeconds) };
  const key = keys.totpEnrolment({ prefix: deps.redisPrefix }, input.username);
  const secret = await deps.redis.get(key);
  if (!secret) return { ok: false, status: 400, message: 'The enrolment expired; start again.' };
  const nowMs = (deps.now ?? Date.now)();
  const step = matchTotpStep(secret, input.code, nowMs);
  if (step === undefined) {
    await deps.limiter.recordFailure({ ...attempt, password: input.code.slice(0, 64) });
    if (input.signingIn) {
      await audit(deps, input, failedSignInAction(deps), {
        reason: input.code.trim() === '' ? 'missing_code' : 'wrong_code',
        factor: 'totp_enrolment',
      });
    }
    return {
      ok: false,
      status: 401,
      message: 'That code does not match; check the time on your device and try again.',
    };
  }
  const codes = generateRecoveryCodes();
  const keyId = (input.name ?? '').trim().slice(0, 64) || 'authenticator';
  await deps.db.transaction(async (tx) => {
    // The confirming code is spent: the recorded step makes it unusable for sign-in.
    await insertTotp(tx, { username: input.username, keyId, secret, step });
    await replaceRecoveryCodes(tx, input.username, codes.map(hashRecoveryCode));
    if (deps.subject !== 'mailbox') await mergeAdminAttributes(tx, input.username, { tfa_reset_notice: 0 });
    await recordAudit(tx, {
      actor: await subjectActor(tx, deps, input.username),
      action: 'tfa.enrol',
      target: input.username,
      detail: { authmech: 'totp', key_id: keyId, recovery_codes: codes.length },
      ...(input.ip ? { ip: input.ip } : {}),
    });
  });
  await deps.redis.del(key);
  return { ok: true, recoveryCodes: codes };
}

async function audit(
  deps: Pick<TwoFactorDeps, 'db' | 'subject'>,
  input: { username: string; ip?: string },
  action: string,
  detail: Record<string, unknown>,
): Promise<void> {
  await recordAudit(deps.db, {
    actor: await subjectActor(deps.db, deps, input.username),
    action,
    target: input.username,
    detail,
    ...(input.ip ? { ip: input.ip } : {}),
  });
}

/** The user enrolling or signing in: a mailbox user, or an admin with its role. */
async function subjectActor(
  db: Pick<Db, 'one' | 'many'>,
  deps: Pick<TwoFactorDeps, 'subject'>,
  username: string,
): Promise<AuditActorRef> {
  if (deps.subject === 'mailbox') return { kind: 'mailbox', name: username };
  return adminAuditActor(db, username);
}
