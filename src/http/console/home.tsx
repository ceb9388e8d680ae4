// GET /admin: the console's landing page. The signed-in admin's account (role, domains, second
// factor, a reset notice) in the console frame; the dashboard's figures join it here.
import { Hono } from 'hono';
import { loadDashboard } from '../../admin/dashboard.js';
import { acknowledgeTwoFactorReset } from '../../admin/two-factor-reset.js';
import type { Deps } from '../../deps.js';
import { findActiveTotp } from '../../storage/two-factor.js';
import { clientIp } from '../client-ip.js';
import { DashboardFigures } from '../views/console-dashboard.js';
import { renderPage } from './page.js';

export function createConsoleHome(deps: Pick<Deps, 'db' | 'redis' | 'limiter' | 'secretBox' | 'config'>) {
  const app = new Hono();
  app.get('/', async (c) => {
    const view = c.get('console');
    const hasTotp = (await findActiveTotp(deps.db, view.username)).length > 0;
    // Shown once: the notice then counts as given (audited as tfa.reset.notified).
    const ip = clientIp(c);
    const wasReset = await acknowledgeTwoFactorReset(deps.db, { username: view.username, ...(ip ? { ip } : {}) });
    const dashboard = await loadDashboard(
      { ...deps, prefix: deps.config.redisPrefix, timeoutMs: Math.min(deps.config.idpTimeoutMs, 2_000) },
      { superadmin: view.actor.role === 'superadmin', domains: view.actor.domains },
    );
    return renderPage(
      c,
      { title: 'Dashboard', section: '/admin' },
      <>
        {wasReset ? (
          <div class="error" role="status" id="tfa-reset-notice">
            A superadmin has reset your two-factor sign-in. Set it up again.
          </div>
        ) : null}
        <section aria-labelledby="account-heading">
          <h2 id="account-heading">Your account</h2>
          <dl>
            <dt>Signed in as</dt>
            <dd id="admin-username">{view.username}</dd>
            <dt>Role</dt>
            <dd id="admin-role">{view.actor.role === 'superadmin' ? 'superadmin' : 'domain admin'}</dd>
            {view.actor.domains.length ? (
              <>
                <dt>Domains</dt>
                <dd id="admin-domains">{view.actor.domains.join(', ')}</dd>
              </>
            ) : null}
            <dt>Two-factor sign-in</dt>
            <dd>{hasTotp ? 'on' : <a href="/admin/tfa/enrol">set up</a>}</dd>
          </dl>
        </section>
        <DashboardFigures dashboard={dashboard} />
      </>,
    );
  });
  return app;
}
