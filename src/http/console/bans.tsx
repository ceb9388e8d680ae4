// /admin/bans: the limiter's current bans with reason and expiry, lifting one (audited as
// ban.lift, as DELETE /api/v1/bans does), and the thresholds in force. Superadmins only.
import { Hono } from 'hono';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { recordAudit } from '../../storage/audit.js';
import { changeOrigin } from '../routes/admin-request.js';
import { parseBanTarget } from '../routes/ban-subject.js';
import { BansPage } from '../views/console-bans.js';
import { authorizePage } from './context.js';
import { renderPage } from './page.js';

export function createConsoleBans(deps: Pick<Deps, 'limiter' | 'db' | 'config'>) {
  const app = new Hono();
  const thresholds = {
    ipThreshold: deps.config.banIpThreshold,
    userThreshold: deps.config.banUserThreshold,
    windowSeconds: deps.config.banWindowSeconds,
    banSeconds: deps.config.banSeconds,
    exemptNetworks: deps.config.banExemptNetworks,
  };

  app.get('/bans', async (c) => {
    authorizePage(c, 'read', { kind: 'bans' });
    const bans = await deps.limiter.listBans();
    const lifted = c.req.query('lifted');
    return renderPage(
      c,
      {
        title: 'Bans',
        section: '/admin/bans',
        notice: lifted ? `The ban on ${lifted.slice(0, 320)} was lifted.` : undefined,
      },
      <BansPage view={c.get('console')} bans={bans} now={new Date()} thresholds={thresholds} />,
    );
  });

  app.post('/bans/lift', async (c) => {
    authorizePage(c, 'write', { kind: 'bans' });
    const form = await c.req.parseBody();
    const { scope, subject } = parseBanTarget(String(form.scope ?? ''), String(form.subject ?? ''));
    if (!(await deps.limiter.liftBan(scope, subject))) throw new AppError('not_found', 'That ban has already ended.');
    await recordAudit(deps.db, { ...changeOrigin(c), action: 'ban.lift', target: subject, detail: { scope } });
    return c.redirect(`/admin/bans?lifted=${encodeURIComponent(subject)}`, 303);
  });

  return app;
}
