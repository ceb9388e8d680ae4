// /api/v1/two-factor-policy: which roles must use a second factor (superadmins, domain admins,
// local-password mailbox users). Superadmins only; a change is audited with before/after, and an
// admin signed in without a second factor cannot turn enforcement on (409, no self-lockout).
import { Hono } from 'hono';
import { z } from 'zod';
import { changeTwoFactorPolicy } from '../../admin/two-factor-policy.js';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { readTwoFactorPolicy, type StoredPolicy } from '../../storage/two-factor-policy.js';
import { authorizeArea, changeOrigin, readBody } from './admin-request.js';

const changeBody = z
  .strictObject({
    superadmin: z.boolean().optional(),
    domainadmin: z.boolean().optional(),
    mailbox: z.boolean().optional(),
  })
  .refine((body) => Object.keys(body).length > 0, { message: 'nothing to change' });

function view(stored: StoredPolicy) {
  return {
    ...stored.policy,
    changes: Object.fromEntries(
      Object.entries(stored.changes).map(([role, change]) => [
        role,
        {
          modified: change.modified instanceof Date ? change.modified.toISOString() : null,
          modified_by: change.modifiedBy,
        },
      ]),
    ),
  };
}

export function createTwoFactorPolicyRoutes(deps: Pick<Deps, 'db'>) {
  const app = new Hono();
  // Like admin accounts: a matter for superadmins; domain admins neither read nor change it.
  app.use('*', authorizeArea({ kind: 'admins' }));

  app.get('/', async (c) => c.json(view(await readTwoFactorPolicy(deps.db))));

  app.put('/', async (c) => {
    const change = await readBody(c, changeBody);
    const origin = changeOrigin(c);
    const principal = c.get('admin');
    const outcome = await changeTwoFactorPolicy(deps, {
      change,
      actor: origin.actor,
      ...(principal.via === 'session' ? { actorAccount: principal.actor.name } : {}),
      ...(origin.ip ? { ip: origin.ip } : {}),
    });
    if (!outcome.ok) throw new AppError('conflict', outcome.message);
    return c.json(view(await readTwoFactorPolicy(deps.db)));
  });

  return app;
}
