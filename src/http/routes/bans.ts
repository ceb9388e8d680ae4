// GET /admin/bans and DELETE /admin/bans/:scope/:subject on the internal listener, for operators'
// scripts. Lifting a ban changes state, so it needs the internal token: without one configured it
// is refused (reaching the listener must never be enough to undo a ban); the admin API's
// /api/v1/bans does the same with an API key.
import { Hono } from 'hono';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { recordAudit, systemActor } from '../../storage/audit.js';
import { parseBanTarget } from './ban-subject.js';

export function createBanRoutes(deps: Pick<Deps, 'limiter' | 'log' | 'db'> & { hasInternalToken: boolean }) {
  const app = new Hono();
  app.get('/admin/bans', async (c) => c.json({ bans: await deps.limiter.listBans() }));
  app.delete('/admin/bans/:scope/:subject', async (c) => {
    // With a token configured, the listener's middleware has already checked it.
    if (!deps.hasInternalToken) {
      throw new AppError(
        'forbidden',
        'lifting a ban here needs POSTERN_INTERNAL_TOKEN; use DELETE /api/v1/bans/:scope/:subject on the admin API',
      );
    }
    const { scope, subject } = parseBanTarget(c.req.param('scope'), c.req.param('subject'));
    const lifted = await deps.limiter.liftBan(scope, subject);
    if (!lifted) throw new AppError('not_found', 'no such ban');
    await recordAudit(deps.db, {
      actor: systemActor('internal-token'),
      action: 'ban.lift',
      target: subject,
      detail: { scope },
    });
    return c.json({ lifted: true });
  });
  return app;
}
