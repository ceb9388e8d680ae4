// The internal listener: Dovecot's passdb, health and metrics. Bound to a private address;
// everything that can reveal or decide a credential also requires the internal token.
import { Hono } from 'hono';
import type { Deps } from '../deps.js';
import { AppError } from '../errors.js';
import { createTokenCheck, requireInternalToken } from './internal-token.js';
import { mailLoginDepsOf } from './mail-login-check.js';
import { createPassdbFastPath, type FastPath } from './passdb-fast-path.js';
import { renderError } from './render-error.js';
import { createBanRoutes } from './routes/bans.js';
import { createDovecotRoutes, createPassdbEndpoint, type PassdbEndpoint } from './routes/dovecot.js';
import { createHealthRoutes } from './routes/health.js';
import { createSogoVerifyRoutes } from './routes/sogo.js';

export function createInternalApp(deps: Deps, passdb = createInternalPassdb(deps)) {
  const app = new Hono();
  app.onError((error, c) => renderError(error, c, deps.log));
  app.notFound(() => {
    throw new AppError('not_found', 'no such endpoint');
  });

  app.get('/metrics', async (c) => {
    c.header('content-type', deps.metrics.registry.contentType);
    return c.body(await deps.metrics.registry.metrics());
  });
  app.route(
    '/',
    createHealthRoutes([
      { name: 'mysql', check: () => deps.db.ping() },
      { name: 'redis', check: async () => void (await deps.redis.ping()) },
    ]),
  );

  const guarded = new Hono();
  // Without a configured token there is nothing to check: no middleware on the hot path.
  if (deps.config.internalToken) guarded.use('*', requireInternalToken(deps.config.internalToken));
  guarded.route('/', createDovecotRoutes(passdb));
  guarded.route('/', createBanRoutes({ ...deps, hasInternalToken: Boolean(deps.config.internalToken) }));
  // nginx's auth_request for SOGo; nginx sends the token with proxy_set_header Authorization.
  guarded.route('/', createSogoVerifyRoutes(deps, mailLoginDepsOf(deps)));
  app.route('/', guarded);
  return app;
}

/** The passdb endpoint of the internal listener, wired to the deps and the metrics. */
export function createInternalPassdb(deps: Deps): PassdbEndpoint {
  return createPassdbEndpoint({ ...mailLoginDepsOf(deps), maxBodyBytes: deps.config.maxBodyBytes });
}

/** The internal listener's passdb POSTs, answered before hono (see passdb-fast-path.ts). */
export function createInternalFastPath(deps: Deps, passdb: PassdbEndpoint): FastPath {
  const token = deps.config.internalToken;
  return createPassdbFastPath({
    endpoint: passdb,
    ...(token ? { isValidToken: createTokenCheck(token) } : {}),
    log: deps.log,
  });
}
