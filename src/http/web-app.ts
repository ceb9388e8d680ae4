// The web listener: browser SSO, the user portal, the webmail handoff and the admin JSON API.
// Sits behind TLS in production. Route areas live in routes/; this file only composes them.
import { Hono } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import type { Deps } from '../deps.js';
import { AppError } from '../errors.js';
import { createAdminSessionStore } from './admin-session.js';
import { resolveClientIps } from './client-ip.js';
import { createConsoleRoutes } from './console/index.js';
import { renderAppError } from './render-error.js';
import { createAdminRoutes } from './routes/admin.js';
import { createAdminLoginRoutes } from './routes/admin-login.js';
import { createPortalRoutes } from './routes/portal.js';
import { createPortalTwoFactorRoutes } from './routes/portal-two-factor.js';
import { createSogoRoutes } from './routes/sogo.js';
import { createSsoRoutes } from './routes/sso.js';
import { createSyncRoutes } from './routes/sync.js';
import { createWebSessionStore, webSessions } from './session.js';

export function createWebApp(deps: Deps) {
  const app = new Hono();
  app.use('*', secureHeaders({ crossOriginEmbedderPolicy: false }));
  app.use('*', resolveClientIps(deps.config.trustedProxies));
  app.onError((error, c) => renderAppError(error, c, deps.log));
  app.notFound(() => {
    throw new AppError('not_found', 'no such page');
  });
  // Admin sign-in: sessions of their own (not the portal's) and a limiter of their own (deps.ts).
  const adminSessions = createAdminSessionStore(deps);
  // Route areas are mounted below, one line each (keep each area's line its own).
  app.route('/api/v1', createAdminRoutes(deps, { sessions: adminSessions }));
  app.route('/', createAdminLoginRoutes(deps, { sessions: adminSessions, limiter: deps.adminLoginLimiter }));
  app.route('/admin', createConsoleRoutes(deps, { sessions: adminSessions }));
  app.use('*', webSessions(createWebSessionStore({ records: deps.webSessions, config: deps.config })));
  app.route('/', createSsoRoutes(deps));
  app.route('/', createPortalRoutes(deps));
  app.route('/', createPortalTwoFactorRoutes(deps));
  app.route('/api/v1/sync', createSyncRoutes(deps, { sessions: adminSessions }));
  app.route('/', createSogoRoutes(deps));
  return app;
}
