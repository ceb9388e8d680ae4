// A secret shown once after a redirect (POST, then 303 to a page that shows it), so that
// reloading that page neither shows it again nor repeats the POST. The secret is sealed
// (AES-256-GCM) under a random ticket and kept in Redis under the ticket's hash for at most
// SHOWN_ONCE_SECONDS; the ticket lives only in an HttpOnly, SameSite=Strict cookie scoped to
// the page's path. Neither Redis nor the cookie alone reveals the secret; the first read
// deletes both, and the record is bound to the admin who made it.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { keys } from '../../cache/keys.js';
import type { Deps } from '../../deps.js';
import { isCookieSecure } from '../session.js';

export const SHOWN_ONCE_COOKIE = 'postern_once';
export const SHOWN_ONCE_SECONDS = 300;
const TICKET = /^[A-Za-z0-9_-]{43}$/;

const digest = (label: string, ticket: string) => createHash('sha256').update(`${label}\0${ticket}`).digest();

export interface ShownOnce {
  /** Seals `secret` (and the `label` the page names it by) for `username`; sets the cookie for `path`. */
  put(c: Context, input: { path: string; username: string; secret: string; label: string }): Promise<void>;
  /** The secret, once, for the same admin; undefined after the first read, on expiry or for anyone else. */
  take(c: Context, input: { path: string; username: string }): Promise<{ secret: string; label: string } | undefined>;
}

export function createShownOnce(deps: Pick<Deps, 'redis' | 'config'>): ShownOnce {
  const ks = { prefix: deps.config.redisPrefix };
  const keyOf = (ticket: string) => keys.consoleShownOnce(ks, digest('id', ticket).toString('hex'));
  const cookieOptions = (path: string) =>
    ({ httpOnly: true, sameSite: 'Strict', secure: isCookieSecure(deps.config), path }) as const;
  return {
    async put(c, { path, username, secret, label }) {
      const ticket = randomBytes(32).toString('base64url');
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', digest('key', ticket), iv);
      const body = Buffer.concat([cipher.update(JSON.stringify({ username, secret, label }), 'utf8'), cipher.final()]);
      const sealed = Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
      await deps.redis.set(keyOf(ticket), sealed, 'EX', SHOWN_ONCE_SECONDS);
      setCookie(c, SHOWN_ONCE_COOKIE, ticket, { ...cookieOptions(path), maxAge: SHOWN_ONCE_SECONDS });
    },
    async take(c, { path, username }) {
      const ticket = getCookie(c, SHOWN_ONCE_COOKIE);
      if (ticket === undefined) return undefined;
      deleteCookie(c, SHOWN_ONCE_COOKIE, cookieOptions(path));
      if (!TICKET.test(ticket)) return undefined;
      const sealed = await deps.redis.getdel(keyOf(ticket));
      if (!sealed) return undefined;
      try {
        const packed = Buffer.from(sealed, 'base64');
        const decipher = createDecipheriv('aes-256-gcm', digest('key', ticket), packed.subarray(0, 12));
        decipher.setAuthTag(packed.subarray(12, 28));
        const plain = Buffer.concat([decipher.update(packed.subarray(28)), decipher.final()]).toString('utf8');
        const record = JSON.parse(plain) as { username?: unknown; secret?: unknown; label?: unknown };
        if (record.username !== username || typeof record.secret !== 'string') return undefined;
        return { secret: record.secret, label: typeof record.label === 'string' ? record.label : '' };
      } catch {
        return undefined;
      }
    },
  };
}
