// /api/v1/bans: the limiter's bans as admins see and lift them (X-API-Key; read-only keys may
// only list). Every lift is audited.
import { Hono } from 'hono';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { recordAudit } from '../../storage/audit.js';
import { authorizeArea, changeOrigin } from './admin-request.js';
import { parseBanTarget } from './ban-subject.js';

export function createAdminBanRoutes(deps: Pick<Deps, 'limiter' | 'db'>) {
  const app = new Hono();
  // Bans name addresses and users of every domain: superadmins only.
  app.use('*', authorizeArea({ kind: 'bans' }));
  app.get('/', async (c) => {
    const bans = await deps.limiter.listBans();
    return c.json({
      bans: bans.map((ban) => ({ scope: ban.scope, subject: ban.subject, expires_in: ban.expiresInSeconds })),
    });
  });
  app.delete('/:scope/:subject', async (c) => {
    const { scope, subject } = parseBanTarget(c.req.param('scope'), c.req.param('subject'));
    if (!(await deps.limiter.liftBan(scope, subject))) throw new AppError('not_found', 'no such ban');
    await recordAudit(deps.db, { ...changeOrigin(c), action: 'ban.lift', target: subject, detail: { scope } });
    return c.json({ success: true });
  });
  return app;
}
