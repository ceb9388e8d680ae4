// The browser's address on the web listener: behind a trusted reverse proxy (POSTERN_TRUSTED_PROXIES)
// the address the proxy forwarded, else the TCP peer. Resolved once per request by a middleware,
// so rate limits, known-good IPs, audit rows and API-key allow_from all see the same client.
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import { createClientAddressResolver } from '../rate-limit/client-address.js';

declare module 'hono' {
  interface ContextVariableMap {
    /** Set by resolveClientIps (null = the peer is unknown). */
    clientIp: string | null;
  }
}

export function resolveClientIps(trustedProxies: string[]): MiddlewareHandler {
  const resolve = createClientAddressResolver(trustedProxies);
  return async (c, next) => {
    c.set(
      'clientIp',
      resolve({
        peer: peerAddress(c),
        forwardedFor: c.req.header('x-forwarded-for'),
        realIp: c.req.header('x-real-ip'),
      }) ?? null,
    );
    await next();
  };
}

/**
 * The client's address. Where resolveClientIps did not run (the internal listener), the TCP peer:
 * proxy headers are never trusted by default.
 */
export function clientIp(c: Context): string | undefined {
  const resolved = c.get('clientIp');
  if (resolved !== undefined) return resolved ?? undefined;
  return peerAddress(c);
}

function peerAddress(c: Context): string | undefined {
  try {
    return getConnInfo(c).remote.address?.replace(/^::ffff:/, '');
  } catch {
    return undefined;
  }
}
