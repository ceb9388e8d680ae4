// Browser sessions over HTTP: the session's id travels in the `postern_session` cookie; the
// record itself (Redis, keyed by a hash of the id) is login/web-sessions.ts's. Also the CSRF
// guard every browser POST goes through. Other route areas (the SOGo handoff) use the exported
// getWebSession / destroyWebSession; mount webSessions(...) before them.
import { timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { Config } from '../config/schema.js';
import {
  isWebSessionId,
  type NewWebSession,
  type WebSession,
  type WebSessionRecords,
  webSessionRefOf,
} from '../login/web-sessions.js';

export type { WebSession } from '../login/web-sessions.js';

export const SESSION_COOKIE = 'postern_session';

export interface WebSessionStore {
  /** The session behind the request's cookie, if any and not expired. */
  read(c: Context): Promise<WebSession | undefined>;
  /** Rotate: any session the request carries is destroyed, a new id is issued in the cookie. */
  start(c: Context, input: NewWebSession): Promise<WebSession>;
  /** Delete the request's session (if any) and expire its cookie. */
  destroy(c: Context): Promise<void>;
  /** The reference (login/web-sessions.ts) of the request's session id, if it carries a well-formed one. */
  refOf(c: Context): string | undefined;
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

export function isCookieSecure(config: Pick<Config, 'cookieSecure' | 'publicUrl'>): boolean {
  if (config.cookieSecure === 'auto') return config.publicUrl.startsWith('https:');
  return config.cookieSecure === 'true';
}

export function createWebSessionStore(deps: {
  records: WebSessionRecords;
  config: Pick<Config, 'cookieSecure' | 'publicUrl'>;
}): WebSessionStore {
  const { records } = deps;
  const isSecure = isCookieSecure(deps.config);
  const cookieId = (c: Context) => {
    const id = getCookie(c, SESSION_COOKIE);
    return isWebSessionId(id) ? id : undefined;
  };
  const cookieOptions = { httpOnly: true, sameSite: 'Lax', secure: isSecure, path: '/' } as const;

  const store: WebSessionStore = {
    isSecure,
    async read(c) {
      const memo = c.get('webSession');
      if (memo !== undefined) return memo ?? undefined;
      const id = cookieId(c);
      const found = id ? await records.read(id) : ({ state: 'none' } as const);
      if (found.state === 'ended') {
        // Past its cap: the record is gone; the cookie goes with it.
        await store.destroy(c);
        return undefined;
      }
      if (found.state === 'live' && id && found.extendedMs !== undefined) {
        // Use keeps a session alive (up to its cap); the cookie is renewed with it.
        setCookie(c, SESSION_COOKIE, id, { ...cookieOptions, maxAge: Math.floor(found.extendedMs / 1000) });
      }
      const session = found.state === 'live' ? found.session : undefined;
      c.set('webSession', session ?? null);
      return session;
    },
    async start(c, input) {
      const { id, session, ttlSeconds } = await records.create(input, cookieId(c));
      setCookie(c, SESSION_COOKIE, id, { ...cookieOptions, maxAge: ttlSeconds });
      c.set('webSession', session);
      return session;
    },
    async destroy(c) {
      const id = cookieId(c);
      if (id) await records.destroy(id);
      deleteCookie(c, SESSION_COOKIE, cookieOptions);
      c.set('webSession', null);
    },
    refOf(c) {
      const id = cookieId(c);
      return id ? webSessionRefOf(id) : undefined;
    },
  };
  return store;
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
export function startWebSession(c: Context, input: NewWebSession): Promise<WebSession> {
  return storeOf(c).start(c, input);
}

/** The reference of the request's session (what webmail binds to), if it carries a session id. */
export function getWebSessionRef(c: Context): string | undefined {
  return storeOf(c).refOf(c);
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
