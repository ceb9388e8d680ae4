// DELETE /api/v1/mailboxes/:username/tfa: remove a mailbox's authenticators and recovery codes (a
// lost phone), for a superadmin or a domain admin of the mailbox's domain (checked on the mailbox
// itself; another domain's mailbox is a 404 like a missing one). Audited; the owner is told at
// the next portal sign-in.
import { Hono } from 'hono';
import { z } from 'zod';
import { foldAddress } from '../../address.js';
import { domainOf } from '../../admin/roles.js';
import { resetMailboxTwoFactor } from '../../admin/two-factor-reset.js';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { findAdminMailbox } from '../../storage/mailbox-admin.js';
import { authorize, changeOrigin, parseWith } from './admin-request.js';

const username = z
  .string()
  .trim()
  .max(255)
  .regex(/^[^@\s]+@[^@\s]+$/, 'must be a mailbox address (local@domain)')
  .transform(foldAddress);

export function createMailboxTwoFactorRoutes(deps: Pick<Deps, 'db'>) {
  const app = new Hono();
  app.delete('/:username/tfa', async (c) => {
    const name = parseWith(username, c.req.param('username'), 'username');
    const missing = `no mailbox ${name}`;
    authorize(c, 'write', { kind: 'mailbox', domain: domainOf(name) }, missing);
    const mailbox = await findAdminMailbox(deps.db, name);
    if (!mailbox) throw new AppError('not_found', missing);
    authorize(c, 'write', { kind: 'mailbox', domain: mailbox.domain }, missing);
    const origin = changeOrigin(c);
    const outcome = await resetMailboxTwoFactor(deps.db, {
      username: mailbox.username,
      actor: origin.actor,
      ...(origin.ip ? { ip: origin.ip } : {}),
    });
    return c.json({ success: true, removed: outcome.removed });
  });
  return app;
}
