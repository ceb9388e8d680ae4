// GET /admin/bans and DELETE /admin/bans/:scope/:subject on the internal listener: operators
// (or mailcow's UI through a script) see who is banned and lift a ban.
import { Hono } from 'hono';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { RateLimiter } from '../../rate-limit/limiter.js';

const scope = z.enum(['ip', 'user']);

export function createBanRoutes(deps: { limiter: RateLimiter; log: Logger }) {
  const app = new Hono();
  app.get('/admin/bans', async (c) => c.json({ bans: await deps.limiter.listBans() }));
  app.delete('/admin/bans/:scope/:subject', async (c) => {
    const parsedScope = scope.safeParse(c.req.param('scope'));
    if (!parsedScope.success) throw new AppError('bad_request', 'scope must be ip or user');
    const subject = c.req.param('subject');
    if (!subject || subject.length > 320)
      throw new AppError('bad_request', 'subject must be an IP, a /64 or a username');
    const lifted = await deps.limiter.liftBan(parsedScope.data, subject);
    if (!lifted) throw new AppError('not_found', 'no such ban');
    deps.log.info({ scope: parsedScope.data, subject }, 'ban lifted');
    return c.json({ lifted: true });
  });
  return app;
}
