// Admin sessions, separate from the portal's: cookie `postern_admin` (HttpOnly, SameSite=Strict,
// Secure per POSTERN_COOKIE_SECURE), a random 256-bit id whose hash keys the session in Redis.
// A session is bound to one admin and a stage: `second_factor` / `enrol` after the password only
// (short-lived, opens nothing but that step), `full` once sign-in is complete. Idle and absolute
// lifetimes; sign-out deletes it in Redis, so a copied cookie stops working too.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { keys } from '../cache/keys.js';
import type { Redis } from '../cache/redis.js';
import type { Config } from '../config/schema.js';
import { sha256Hex } from '../digest.js';
import { parseJsonRecord } from '../json-record.js';
import { isCookieSecure } from './session.js';

export const ADMIN_COOKIE = 'postern_admin';
/** The password step is done; the second factor (or its enrolment) must follow within this time. */
export const PENDING_STAGE_SECONDS = 300;

export type AdminStage = 'second_factor' | 'enrol' | 'full';

export interface AdminSession {
  username: string;
  stage: AdminStage;
  /** Unix ms of the password step (the absolute lifetime counts from here). */
  createdAt: number;
  /** Unix ms of the last use (the idle lifetime counts from here). */
  lastSeenAt: number;
  /** For forms and the API's cookie-authenticated writes. */
  csrfToken: string;
  /** How the second factor was given, for the audit trail. */
  secondFactor?: 'totp' | 'recovery_code' | 'none';
}

export interface AdminSessionStore {
  read(c: Context): Promise<AdminSession | undefined>;
  /** A new id (any old one destroyed): used after the password and again after the second factor. */
  start(
    c: Context,
    input: Pick<AdminSession, 'username' | 'stage'> & { secondFactor?: AdminSession['secondFactor'] },
  ): Promise<AdminSession>;
  destroy(c: Context): Promise<void>;
}

const digest = sha256Hex;
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

export function createAdminSessionStore(deps: {
  redis: Redis;
  config: Pick<
    Config,
    'redisPrefix' | 'adminSessionIdleSeconds' | 'adminSessionMaxSeconds' | 'cookieSecure' | 'publicUrl'
  >;
  now?: () => number;
}): AdminSessionStore {
  const ks = { prefix: deps.config.redisPrefix };
  const now = deps.now ?? Date.now;
  const idleMs = deps.config.adminSessionIdleSeconds * 1000;
  const maxMs = deps.config.adminSessionMaxSeconds * 1000;
  // Strict: the browser never sends it on a cross-site request, not even a top-level link.
  const cookieOptions = {
    httpOnly: true,
    sameSite: 'Strict',
    secure: isCookieSecure(deps.config),
    path: '/',
  } as const;
  const keyOf = (id: string) => keys.adminSession(ks, digest(id));
  const cookieId = (c: Context) => {
    const id = getCookie(c, ADMIN_COOKIE);
    return id && SESSION_ID.test(id) ? id : undefined;
  };
  /** How long a session may still live from `at`: the smaller of idle and what its cap leaves. */
  const lifetimeMs = (session: AdminSession, at: number) =>
    session.stage === 'full'
      ? Math.min(idleMs, session.createdAt + maxMs - at)
      : Math.min(PENDING_STAGE_SECONDS * 1000, session.createdAt + PENDING_STAGE_SECONDS * 1000 - at);

  const store: AdminSessionStore = {
    async read(c) {
      const id = cookieId(c);
      if (!id) return undefined;
      const text = await deps.redis.get(keyOf(id));
      const session = text ? parse(text) : undefined;
      if (!session) return undefined;
      const at = now();
      // Checked here as well as by the Redis TTL, so a clock-driven test and a lagging expiry agree.
      if (
        at - session.lastSeenAt >= (session.stage === 'full' ? idleMs : PENDING_STAGE_SECONDS * 1000) ||
        lifetimeMs(session, at) <= 0
      ) {
        await store.destroy(c);
        return undefined;
      }
      const renewed = { ...session, lastSeenAt: at };
      const ttlMs = lifetimeMs(renewed, at);
      await deps.redis.set(keyOf(id), JSON.stringify(renewed), 'PX', ttlMs);
      setCookie(c, ADMIN_COOKIE, id, { ...cookieOptions, maxAge: Math.ceil(ttlMs / 1000) });
      return renewed;
    },
    async start(c, input) {
      const previous = cookieId(c);
      if (previous) await deps.redis.del(keyOf(previous));
      const id = randomBytes(32).toString('base64url');
      const at = now();
      const session: AdminSession = {
        username: input.username,
        stage: input.stage,
        createdAt: at,
        lastSeenAt: at,
        csrfToken: randomBytes(24).toString('base64url'),
        ...(input.secondFactor ? { secondFactor: input.secondFactor } : {}),
      };
      const ttlMs = lifetimeMs(session, at);
      await deps.redis.set(keyOf(id), JSON.stringify(session), 'PX', ttlMs);
      setCookie(c, ADMIN_COOKIE, id, { ...cookieOptions, maxAge: Math.ceil(ttlMs / 1000) });
      return session;
    },
    async destroy(c) {
      const id = cookieId(c);
      if (id) await deps.redis.del(keyOf(id));
      deleteCookie(c, ADMIN_COOKIE, cookieOptions);
    },
  };
  return store;
}

function parse(text: string): AdminSession | undefined {
  return parseJsonRecord<AdminSession>(
    text,
    (value) =>
      typeof value.username === 'string' &&
      ['second_factor', 'enrol', 'full'].includes(value.stage as string) &&
      typeof value.createdAt === 'number' &&
      typeof value.lastSeenAt === 'number' &&
      typeof value.csrfToken === 'string',
  );
}

export function isValidAdminCsrf(session: AdminSession, submitted: unknown): boolean {
  if (typeof submitted !== 'string') return false;
  const a = Buffer.from(submitted);
  const b = Buffer.from(session.csrfToken);
  return a.length === b.length && timingSafeEqual(a, b);
}
