// Browser sessions: a random 256-bit id in the `postern_session` cookie, the session itself in
// Redis under a hash of that id (a leaked Redis dump holds no usable cookie). Also the CSRF
// guard every browser POST goes through. Other route areas (the SOGo handoff) use the exported
// getWebSession / destroyWebSession; mount webSessions(...) before them.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { keys } from '../cache/keys.js';
import type { Redis } from '../cache/redis.js';
import type { Config } from '../config/schema.js';
import { sessionLimitsOf, slidingLifetimeMs } from '../login/session-lifetime.js';

export const SESSION_COOKIE = 'postern_session';

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

export interface WebSessionStore {
  /** The session behind the request's cookie, if any and not expired. */
  read(c: Context): Promise<WebSession | undefined>;
  /** Rotate: any session the request carries is destroyed, a new id is issued in the cookie. */
  start(c: Context, input: { username: string; via: WebSession['via']; actingAdmin?: string }): Promise<WebSession>;
  /** Delete the request's session (if any) and expire its cookie. */
  destroy(c: Context): Promise<void>;
  /** Whether cookies get the Secure flag (POSTERN_COOKIE_SECURE, auto = https public URL). */
  readonly isSecure: boolean;
}

declare module 'hono' {
  interface ContextVariableMap {
    webSessions: WebSessionStore;
    /** Memoised lookup for this request (null = looked up, none). */
    webSession: WebSession | null;
  }
}

const digest = (id: string) => createHash('sha256').update(id).digest('hex');

/** Session ids are 32 random bytes, base64url: exactly 43 characters of this alphabet. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

export function isCookieSecure(config: Pick<Config, 'cookieSecure' | 'publicUrl'>): boolean {
  if (config.cookieSecure === 'auto') return config.publicUrl.startsWith('https:');
  return config.cookieSecure === 'true';
}

export function createWebSessionStore(deps: {
  redis: Redis;
  config: Pick<Config, 'redisPrefix' | 'sessionTtlSeconds' | 'sessionMaxSeconds' | 'cookieSecure' | 'publicUrl'>;
  /** Milliseconds; injectable for tests. */
  now?: () => number;
}): WebSessionStore {
  const ks = { prefix: deps.config.redisPrefix };
  const ttlSeconds = deps.config.sessionTtlSeconds;
  const limits = sessionLimitsOf(deps.config);
  const now = deps.now ?? Date.now;
  const isSecure = isCookieSecure(deps.config);
  const keyOf = (id: string) => keys.webSession(ks, digest(id));
  const cookieId = (c: Context) => {
    const id = getCookie(c, SESSION_COOKIE);
    return id && SESSION_ID.test(id) ? id : undefined;
  };
  const cookieOptions = { httpOnly: true, sameSite: 'Lax', secure: isSecure, path: '/' } as const;

  const store: WebSessionStore = {
    isSecure,
    async read(c) {
      const memo = c.get('webSession');
      if (memo !== undefined) return memo ?? undefined;
      const id = cookieId(c);
      if (!id) {
        c.set('webSession', null);
        return undefined;
      }
      const key = keyOf(id);
      const replies = await deps.redis.pipeline().get(key).pttl(key).exec();
      // A command's own error is a fault, as a failed GET was before: not "signed out".
      const failed = replies?.find(([error]) => error)?.[0];
      if (failed) throw failed;
      const text = replies?.[0]?.[1];
      const session = typeof text === 'string' ? parseSession(text) : undefined;
      if (session) {
        // Use keeps a session alive (up to its cap); the cookie is renewed with it.
        const lifetimeMs = slidingLifetimeMs(limits, session.createdAt, Number(replies?.[1]?.[1] ?? -2), now());
        if (lifetimeMs === 0) {
          await store.destroy(c);
          return undefined;
        }
        if (lifetimeMs !== undefined) {
          await deps.redis.pexpire(key, lifetimeMs);
          setCookie(c, SESSION_COOKIE, id, { ...cookieOptions, maxAge: Math.floor(lifetimeMs / 1000) });
        }
      }
      c.set('webSession', session ?? null);
      return session;
    },
    async start(c, input) {
      const previous = cookieId(c);
      if (previous) await deps.redis.del(keyOf(previous));
      const id = randomBytes(32).toString('base64url');
      const session: WebSession = {
        username: input.username,
        via: input.via,
        ...(input.actingAdmin ? { actingAdmin: input.actingAdmin } : {}),
        createdAt: now(),
        csrfToken: randomBytes(24).toString('base64url'),
      };
      await deps.redis.set(keyOf(id), JSON.stringify(session), 'EX', ttlSeconds);
      setCookie(c, SESSION_COOKIE, id, { ...cookieOptions, maxAge: ttlSeconds });
      c.set('webSession', session);
      return session;
    },
    async destroy(c) {
      const id = cookieId(c);
      if (id) await deps.redis.del(keyOf(id));
      deleteCookie(c, SESSION_COOKIE, cookieOptions);
      c.set('webSession', null);
    },
  };
  return store;
}

function parseSession(text: string): WebSession | undefined {
  try {
    const value = JSON.parse(text) as Partial<WebSession>;
    if (typeof value.username !== 'string' || !['sso', 'password', 'admin'].includes(value.via as string))
      return undefined;
    if (value.via === 'admin' && typeof value.actingAdmin !== 'string') return undefined;
    if (typeof value.createdAt !== 'number' || typeof value.csrfToken !== 'string') return undefined;
    return value as WebSession;
  } catch {
    return undefined;
  }
}

/** Makes the store reachable through getWebSession(c) for every route mounted after it. */
export function webSessions(store: WebSessionStore): MiddlewareHandler {
  return async (c, next) => {
    c.set('webSessions', store);
    await next();
  };
}

function storeOf(c: Context): WebSessionStore {
  const store = c.get('webSessions');
  if (!store) throw new Error('webSessions middleware is not mounted before this route');
  return store;
}

/** The signed-in user of this request, or undefined. */
export function getWebSession(c: Context): Promise<WebSession | undefined> {
  return storeOf(c).read(c);
}

/** Sign the user in with a fresh session id (rotation: the old id, if any, stops working). */
export function startWebSession(
  c: Context,
  input: { username: string; via: WebSession['via']; actingAdmin?: string },
): Promise<WebSession> {
  return storeOf(c).start(c, input);
}

/** Sign out: the session is deleted in Redis and its cookie expired. */
export function destroyWebSession(c: Context): Promise<void> {
  return storeOf(c).destroy(c);
}

/**
 * CSRF: a browser POST must come from our own pages. Browsers send Origin on cross-site and
 * same-origin POSTs; Referer is the fallback for the few that strip Origin. Both are compared
 * with POSTERN_PUBLIC_URL (what the browser sees), not with the URL the proxy forwarded to us.
 */
export function isSameOrigin(c: Context, publicUrl: string): boolean {
  const expected = new URL(publicUrl).origin;
  const origin = c.req.header('origin');
  if (origin !== undefined && origin !== 'null') return origin === expected;
  const referer = c.req.header('referer');
  if (!referer) return false;
  try {
    return new URL(referer).origin === expected;
  } catch {
    return false;
  }
}

/** Constant-time comparison of a submitted form token with the session's. */
export function isValidCsrfToken(session: WebSession, submitted: unknown): boolean {
  if (typeof submitted !== 'string') return false;
  const a = Buffer.from(submitted);
  const b = Buffer.from(session.csrfToken);
  return a.length === b.length && timingSafeEqual(a, b);
}
