// The admin JSON API under /api/v1: IdP settings (+ test connection), mailbox templates, a
// mailbox's auth source and its app passwords, the limiter's bans, admin accounts, API keys, the
// audit trail. Every route sits behind requireAdmin (X-API-Key or an admin session) and checks
// the caller's role with can(); read-only keys may only GET. Each change is written to
// postern_audit; secrets never leave.
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { requireAdminOf } from '../admin-auth.js';
import type { AdminSessionStore } from '../admin-session.js';
import { createAdminAccountRoutes } from './admin-accounts.js';
import { createApiKeyRoutes } from './admin-api-keys.js';
import { createAuditRoutes } from './admin-audit.js';
import { createAdminBanRoutes } from './admin-bans.js';
import { createAliasDomainRoutes, createDomainRoutes } from './admin-domains.js';
import { createIdentityProviderRoutes } from './admin-identity-provider.js';
import { createMailboxTwoFactorRoutes } from './admin-mailbox-two-factor.js';
import { createMailboxRoutes } from './admin-mailboxes.js';
import { createTemplateRoutes } from './admin-templates.js';
import { createTwoFactorPolicyRoutes } from './admin-two-factor-policy.js';

/** Settings and templates are small; anything larger is a mistake or an attack. */
const MAX_ADMIN_BODY_BYTES = 64 * 1024;

export function createAdminRoutes(deps: Deps, options: { sessions?: AdminSessionStore } = {}) {
  const app = new Hono();
  // Authentication first, for every path under the prefix: unknown paths answer 401 to
  // strangers, so the API's shape is not discoverable without a key.
  app.use('*', requireAdminOf(deps, options.sessions));
  app.use(
    '*',
    bodyLimit({
      maxSize: MAX_ADMIN_BODY_BYTES,
      onError: () => {
        throw new AppError('payload_too_large', `request body larger than ${MAX_ADMIN_BODY_BYTES} bytes`);
      },
    }),
  );
  app.route('/identity-provider', createIdentityProviderRoutes(deps));
  app.route('/templates', createTemplateRoutes(deps));
  app.route('/mailboxes', createMailboxTwoFactorRoutes(deps));
  app.route('/mailboxes', createMailboxRoutes(deps));
  app.route('/bans', createAdminBanRoutes(deps));
  app.route('/admins', createAdminAccountRoutes(deps));
  app.route('/api-keys', createApiKeyRoutes(deps));
  app.route('/audit', createAuditRoutes(deps));
  app.route('/domains', createDomainRoutes(deps));
  app.route('/alias-domains', createAliasDomainRoutes(deps));
  app.route('/two-factor-policy', createTwoFactorPolicyRoutes(deps));
  return app;
}
