// Optional shared secret between Dovecot's Lua (and nginx) and the internal listener.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.js';

/** Whether an Authorization header carries `Bearer <token>`; compared in constant time. */
export type TokenCheck = (authorization: string | undefined) => boolean;

export function createTokenCheck(token: string): TokenCheck {
  // Comparing fixed-length digests keeps the comparison constant-time whatever the input length.
  const expected = createHash('sha256').update(token).digest();
  return (authorization) => {
    const presented = authorization?.startsWith('Bearer ') ? authorization.slice(7) : '';
    const digest = createHash('sha256').update(presented).digest();
    return presented !== '' && timingSafeEqual(digest, expected);
  };
}

export const wrongTokenError = () => new AppError('forbidden', 'missing or wrong internal token');

/** Constant-time check of `Authorization: Bearer <token>`. */
export function requireInternalToken(token: string): MiddlewareHandler {
  const isValid = createTokenCheck(token);
  return async (c, next) => {
    if (!isValid(c.req.header('authorization'))) throw wrongTokenError();
    await next();
  };
}
