// Two-factor sign-in for local (mailcow-password) mailboxes in the portal: after the password,
// what must follow (the TOTP code when the mailbox has an authenticator, enrolment when the
// two-factor policy enforces it for mailbox users, or nothing), and the short-lived record of a
// sign-in that is half done (password checked, second factor pending). The TOTP itself is
// src/admin/two-factor.ts's, the same code and the same `tfa` rows as for admins; once a mailbox
// has one, mailcow's 2FA rule (mail-login.ts) lets only app passwords open IMAP/POP3/SMTP/Sieve/
// DAV/EAS. No hono here; the routes move cookies and forms.
import { createHmac, randomBytes } from 'node:crypto';
import { keys } from '../cache/keys.js';
import type { Redis } from '../cache/redis.js';
import type { Config } from '../config/schema.js';
import { sha256Hex } from '../digest.js';
import { parseJsonRecord } from '../json-record.js';
import type { Logger } from '../log.js';
import { type BanHook, createRateLimiter, limitsFromConfig, type RateLimiter } from '../rate-limit/limiter.js';
import type { Db } from '../storage/db.js';
import { findActiveTotp, hasAnyActiveTfa } from '../storage/two-factor.js';
import { isRoleEnforced } from '../storage/two-factor-policy.js';

/** The password step is done; the code (or the enforced enrolment) must follow within this time. */
export const PENDING_SIGN_IN_SECONDS = 300;

export type PendingStage = 'second_factor' | 'enrol';

/**
 * What follows a correct portal password for this mailbox. `unsupported`: it has only
 * authenticators postern cannot check (mailcow's WebAuthn, U2F, Yubico OTP), so the password
 * alone must not open the portal (where app passwords, which bypass them, are made).
 */
export async function portalStepAfterPassword(
  db: Pick<Db, 'one' | 'many'>,
  username: string,
): Promise<PendingStage | 'none' | 'unsupported'> {
  if ((await findActiveTotp(db, username)).length > 0) return 'second_factor';
  if (await hasAnyActiveTfa(db, username)) return 'unsupported';
  return (await isRoleEnforced(db, 'mailbox')) ? 'enrol' : 'none';
}

export interface PendingSignIn {
  username: string;
  stage: PendingStage;
  /** Where to go once signed in (already checked by the caller: a path on this site). */
  next?: string;
  /** For the pending step's forms. */
  csrfToken: string;
  /** Unix ms of the password step. */
  createdAt: number;
}

export interface PendingSignIns {
  /** A new record under a fresh random id (the cookie's value); `replacing` is deleted first. */
  create(input: Pick<PendingSignIn, 'username' | 'stage' | 'next'>, replacing?: string): Promise<{ id: string }>;
  read(id: string): Promise<PendingSignIn | undefined>;
  destroy(id: string): Promise<void>;
}

const PENDING_ID = /^[A-Za-z0-9_-]{43}$/;

export function isPendingSignInId(value: string | undefined): value is string {
  return value !== undefined && PENDING_ID.test(value);
}

/** In Redis under the SHA-256 of the id, so a Redis dump holds no usable cookie. */
export function createPendingSignIns(deps: { redis: Redis; redisPrefix: string; now?: () => number }): PendingSignIns {
  const ks = { prefix: deps.redisPrefix };
  const now = deps.now ?? Date.now;
  const keyOf = (id: string) => keys.portalPendingSignIn(ks, sha256Hex(id));
  return {
    async create(input, replacing) {
      if (replacing && isPendingSignInId(replacing)) await deps.redis.del(keyOf(replacing));
      const id = randomBytes(32).toString('base64url');
      const record: PendingSignIn = {
        username: input.username,
        stage: input.stage,
        ...(input.next ? { next: input.next } : {}),
        csrfToken: randomBytes(24).toString('base64url'),
        createdAt: now(),
      };
      await deps.redis.set(keyOf(id), JSON.stringify(record), 'EX', PENDING_SIGN_IN_SECONDS);
      return { id };
    },
    async read(id) {
      if (!isPendingSignInId(id)) return undefined;
      const record = parseJsonRecord<PendingSignIn>(
        await deps.redis.get(keyOf(id)),
        (value) =>
          typeof value.username === 'string' &&
          (value.stage === 'second_factor' || value.stage === 'enrol') &&
          typeof value.csrfToken === 'string' &&
          typeof value.createdAt === 'number',
      );
      // The Redis TTL ends it too; this check keeps a clock-driven test and a lagging expiry agreeing.
      if (!record || now() - record.createdAt >= PENDING_SIGN_IN_SECONDS * 1000) return undefined;
      return record;
    },
    async destroy(id) {
      if (isPendingSignInId(id)) await deps.redis.del(keyOf(id));
    },
  };
}

/**
 * The limiter for portal codes: the passdb's thresholds in a key space of its own (`…web-tfa:`).
 * Not the portal password's: a correct password marks the client IP known-good there, which
 * would exempt whoever holds the password from the per-mailbox ban on guessing codes. Here an IP
 * becomes known-good only once a sign-in is complete.
 */
export function createPortalCodeLimiter(deps: {
  redis: Redis;
  config: Config;
  log: Logger;
  onBan?: BanHook;
}): RateLimiter {
  const { config } = deps;
  const fingerprintSecret = config.secretKey
    ? createHmac('sha256', config.secretKey).update('postern portal second-factor limiter').digest('hex')
    : randomBytes(32).toString('hex');
  return createRateLimiter({
    redis: deps.redis,
    prefix: `${config.redisPrefix}web-tfa:`,
    ...limitsFromConfig(config),
    fingerprintSecret,
    log: deps.log,
    ...(deps.onBan ? { onBan: deps.onBan } : {}),
  });
}
