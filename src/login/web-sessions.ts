// The portal's session records: a random 256-bit id (the cookie's value), the session itself in
// Redis under the id's SHA-256 (a leaked Redis dump holds no usable cookie). Create, read (use
// slides the lifetime up to its cap), extend and destroy; no cookies and no hono here
// (http/session.ts moves the id in and out of the cookie). Webmail keeps only a session's
// reference (the digest), so it reads and extends by reference through the same module.
import { randomBytes } from 'node:crypto';
import { keys } from '../cache/keys.js';
import type { Redis } from '../cache/redis.js';
import type { Config } from '../config/schema.js';
import { sha256Hex } from '../digest.js';
import { parseJsonRecord } from '../json-record.js';
import { type SessionLimits, sessionLimitsOf, slidingLifetimeMs } from './session-lifetime.js';

export interface WebSession {
  /** The mailbox (lower case) this session belongs to. */
  username: string;
  /** `admin`: opened through an admin's webmail link (POSTERN_ADMIN_WEBMAIL); the portal is read-only. */
  via: 'sso' | 'password' | 'admin';
  /** The admin acting for the mailbox, when via is `admin`. */
  actingAdmin?: string;
  /** Unix milliseconds. */
  createdAt: number;
  /** Per-session token for forms (defence in depth next to the same-origin check). */
  csrfToken: string;
}

export type NewWebSession = Pick<WebSession, 'username' | 'via' | 'actingAdmin'>;

/** Session ids are 32 random bytes, base64url: exactly 43 characters of this alphabet. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

export function isWebSessionId(value: string | undefined): value is string {
  return value !== undefined && SESSION_ID.test(value);
}

/**
 * A session's reference: the SHA-256 hex of its id, which is how Redis names it. Webmail binds to
 * it, so a portal logout (or a new portal login, which rotates the id) ends webmail too.
 */
export function webSessionRefOf(id: string): string {
  return sha256Hex(id);
}

/** What a read by id found. `ended`: the session was past its cap and is now deleted. */
export type WebSessionLookup =
  | { state: 'none' }
  | { state: 'ended' }
  | { state: 'live'; session: WebSession; extendedMs?: number };

export interface WebSessionRecords {
  /** A new session under a fresh id; `replacing` (the id the browser had) is deleted first. */
  create(input: NewWebSession, replacing?: string): Promise<{ id: string; session: WebSession; ttlSeconds: number }>;
  /** The session of this id; use extends it (extendedMs = its new lifetime) up to the cap, past which it ends. */
  read(id: string): Promise<WebSessionLookup>;
  destroy(id: string): Promise<void>;
  /** By reference: the session and what is left of its lifetime in Redis (ms; -1 = no expiry). */
  peek(ref: string): Promise<{ session: WebSession; remainingMs: number } | undefined>;
  /** By reference: give the session `lifetimeMs` from now. */
  extend(ref: string, lifetimeMs: number): Promise<void>;
  readonly limits: SessionLimits;
}

export interface WebSessionRecordsDeps {
  redis: Redis;
  config: Pick<Config, 'redisPrefix' | 'sessionTtlSeconds' | 'sessionMaxSeconds'>;
  /** Milliseconds; injectable for tests. */
  now?: () => number;
}

export function createWebSessionRecords(deps: WebSessionRecordsDeps): WebSessionRecords {
  const ks = { prefix: deps.config.redisPrefix };
  const ttlSeconds = deps.config.sessionTtlSeconds;
  const limits = sessionLimitsOf(deps.config);
  const now = deps.now ?? Date.now;
  const keyOfRef = (ref: string) => keys.webSession(ks, ref);
  const keyOf = (id: string) => keyOfRef(webSessionRefOf(id));

  const records: WebSessionRecords = {
    limits,
    async create(input, replacing) {
      if (replacing !== undefined) await deps.redis.del(keyOf(replacing));
      const id = randomBytes(32).toString('base64url');
      const session: WebSession = {
        username: input.username,
        via: input.via,
        ...(input.actingAdmin ? { actingAdmin: input.actingAdmin } : {}),
        createdAt: now(),
        csrfToken: randomBytes(24).toString('base64url'),
      };
      await deps.redis.set(keyOf(id), JSON.stringify(session), 'EX', ttlSeconds);
      return { id, session, ttlSeconds };
    },
    async read(id) {
      const found = await peekWebSession(deps.redis, ks, webSessionRefOf(id));
      if (!found) return { state: 'none' };
      const lifetimeMs = slidingLifetimeMs(limits, found.session.createdAt, found.remainingMs, now());
      if (lifetimeMs === 0) {
        await records.destroy(id);
        return { state: 'ended' };
      }
      if (lifetimeMs !== undefined) await deps.redis.pexpire(keyOf(id), lifetimeMs);
      return { state: 'live', session: found.session, ...(lifetimeMs !== undefined ? { extendedMs: lifetimeMs } : {}) };
    },
    async destroy(id) {
      await deps.redis.del(keyOf(id));
    },
    peek: (ref) => peekWebSession(deps.redis, ks, ref),
    async extend(ref, lifetimeMs) {
      await deps.redis.pexpire(keyOfRef(ref), lifetimeMs);
    },
  };
  return records;
}

/**
 * The session behind a reference, with its remaining lifetime: one round trip, no write. Needs only
 * Redis and the prefix, so the passdb's webmail check can use it without the session settings.
 */
export async function peekWebSession(
  redis: Redis,
  ks: { prefix: string },
  ref: string,
): Promise<{ session: WebSession; remainingMs: number } | undefined> {
  const key = keys.webSession(ks, ref);
  const replies = await redis.pipeline().get(key).pttl(key).exec();
  // A command's own error is a fault, not "signed out".
  const failed = replies?.find(([error]) => error)?.[0];
  if (failed) throw failed;
  const text = replies?.[0]?.[1];
  const session = typeof text === 'string' ? parseJsonRecord<WebSession>(text, isWebSession) : undefined;
  return session ? { session, remainingMs: Number(replies?.[1]?.[1] ?? -2) } : undefined;
}

function isWebSession(value: Partial<WebSession>): boolean {
  if (typeof value.username !== 'string' || !['sso', 'password', 'admin'].includes(value.via as string)) return false;
  if (value.via === 'admin' && typeof value.actingAdmin !== 'string') return false;
  return typeof value.createdAt === 'number' && typeof value.csrfToken === 'string';
}
