// Optional shared secret between Dovecot's Lua (and nginx) and the internal listener.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.js';

/** Constant-time check of `Authorization: Bearer <token>`. */
export function requireInternalToken(token: string): MiddlewareHandler {
  // Comparing fixed-length digests keeps the comparison constant-time whatever the input length.
  const expected = createHash('sha256').update(token).digest();
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const presented = header.startsWith('Bearer ') ? header.slice(7) : '';
    const digest = createHash('sha256').update(presented).digest();
    if (!presented || !timingSafeEqual(digest, expected)) {
      throw new AppError('forbidden', 'missing or wrong internal token');
    }
    await next();
  };
}
