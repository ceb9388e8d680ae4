// The admin console under /admin (server-rendered pages; sign-in itself lives in
// routes/admin-login.tsx and is mounted before this). Every request passes consoleGuard (a
// complete admin session; CSRF token and same origin on every POST); every page checks the
// role and domain ACL on its object with authorizePage(). One line per page area below.
import { Hono } from 'hono';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import type { AdminSessionStore } from '../admin-session.js';
import { pageArea } from '../render-error.js';
import { createConsoleAdmins } from './admins.js';
import { createConsoleApiKeys } from './api-keys.js';
import { createConsoleAudit } from './audit.js';
import { createConsoleBans } from './bans.js';
import { consoleGuard } from './context.js';
import { createConsoleDomainPages } from './domains.js';
import { createConsoleHome } from './home.js';
import { createConsoleIdp } from './idp.js';
import { createConsoleMailboxPages } from './mailboxes.js';
import { consoleErrorPage } from './page.js';
import { createConsoleSync } from './sync.js';
import { createConsoleTemplates } from './templates.js';

export function createConsoleRoutes(deps: Deps, options: { sessions: AdminSessionStore }) {
  const app = new Hono();
  app.use('*', consoleGuard(deps, options.sessions));
  app.route('/', createConsoleHome(deps));
  app.route('/', createConsoleDomainPages(deps));
  app.route('/', createConsoleMailboxPages(deps));
  app.route('/', createConsoleIdp(deps));
  app.route('/', createConsoleTemplates(deps));
  app.route('/', createConsoleSync(deps));
  app.route('/', createConsoleBans(deps));
  app.route('/', createConsoleAudit(deps));
  app.route('/', createConsoleAdmins(deps));
  app.route('/', createConsoleApiKeys(deps));
  // Last: an unknown console path gets the console's 404 page, not the API's JSON.
  app.all('*', () => {
    throw new AppError('not_found', 'There is no such page in the console.');
  });
  return pageArea(app, consoleErrorPage);
}
