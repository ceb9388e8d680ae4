// /api/v1/mailboxes/:username: a mailbox's auth source and its app passwords, as admins manage
// them. Password hashes never leave the database through here; switching a mailbox to an IdP
// keeps its local hash so that switching back to mailcow restores the old password (mailcow docs).
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { foldAddress } from '../../address.js';
import { type Action, domainOf } from '../../admin/roles.js';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { APP_PASSWORD_PROTOCOLS, deleteAppPassword, listAppPasswords } from '../../storage/app-passwords.js';
import { recordAudit } from '../../storage/audit.js';
import { type AdminMailbox, findAdminMailbox, readIdpRows, setMailboxAuthSource } from '../../storage/mailbox-admin.js';
import { actionOf, authorize, changeOrigin, parseWith, readBody } from './admin-request.js';

type MailboxDeps = Pick<Deps, 'db' | 'redis' | 'log' | 'config' | 'sogoHandoff'>;

const username = z
  .string()
  .trim()
  .max(255)
  .regex(/^[^@\s]+@[^@\s]+$/, 'must be a mailbox address (local@domain)')
  .transform(foldAddress);

const authsourceBody = z.strictObject({
  authsource: z.enum(['mailcow', 'keycloak', 'generic-oidc'], { error: 'must be mailcow, keycloak or generic-oidc' }),
});

const appPasswordId = z
  .string()
  .regex(/^[1-9]\d{0,9}$/, 'must be a positive whole number')
  .transform(Number);

function view(mailbox: AdminMailbox) {
  return {
    username: mailbox.username,
    name: mailbox.name,
    domain: mailbox.domain,
    active: mailbox.active,
    authsource: mailbox.authsource,
    quota: mailbox.quota,
    kind: mailbox.kind,
    attributes: mailbox.attributes,
    has_local_password: mailbox.hasLocalPassword,
  };
}

export function createMailboxRoutes(deps: MailboxDeps) {
  const app = new Hono();
  const handoff = deps.sogoHandoff;

  // An admin opens a mailbox's webmail (support): a single-use link, valid for a minute, for a
  // browser. Off unless POSTERN_ADMIN_WEBMAIL=on; read-write keys only (POST); audited.
  app.post('/:username/webmail-link', async (c) => {
    if (deps.config.adminWebmail !== 'on') {
      throw new AppError('forbidden', 'admin webmail links are off (POSTERN_ADMIN_WEBMAIL)');
    }
    const mailbox = await findOrFail(deps, c, c.req.param('username'));
    const origin = changeOrigin(c);
    const outcome = await handoff.mintAdminTicket({
      username: mailbox.username,
      actingAdmin: origin.actor.name,
      ...(origin.ip ? { ip: origin.ip } : {}),
    });
    if (!outcome.ok) throw new AppError('conflict', outcome.message);
    const url = new URL(`/sogo-auth/admin/${outcome.ticket}`, deps.config.publicUrl).href;
    c.header('cache-control', 'no-store');
    return c.json({ url, expires_in: outcome.ttlSeconds });
  });

  app.get('/:username', async (c) => c.json(view(await findOrFail(deps, c, c.req.param('username')))));

  app.put('/:username/authsource', async (c) => {
    const mailbox = await findOrFail(deps, c, c.req.param('username'));
    const { authsource } = await readBody(c, authsourceBody);
    if (authsource !== 'mailcow') {
      const configured = (await readIdpRows(deps.db)).authsource;
      if (!configured)
        throw new AppError('conflict', `no identity provider is configured; cannot switch to ${authsource}`);
      if (configured !== authsource) {
        throw new AppError('conflict', `the configured identity provider is ${configured}, not ${authsource}`);
      }
    }
    if (mailbox.authsource !== authsource) {
      await deps.db.transaction(async (tx) => {
        await setMailboxAuthSource(tx, mailbox.username, authsource);
        await recordAudit(tx, {
          ...changeOrigin(c),
          action: 'mailbox.authsource',
          target: mailbox.username,
          before: { authsource: mailbox.authsource },
          after: { authsource },
        });
      });
    }
    return c.json(view(await findOrFail(deps, c, mailbox.username, 'read')));
  });

  app.get('/:username/app-passwords', async (c) => {
    const mailbox = await findOrFail(deps, c, c.req.param('username'));
    const records = await listAppPasswords(deps.db, mailbox.username);
    return c.json({
      app_passwords: records.map((record) => ({
        id: record.id,
        name: record.name,
        protocols: APP_PASSWORD_PROTOCOLS.filter((protocol) => record.protocols[protocol]),
        active: record.active,
        created: record.created,
      })),
    });
  });

  app.delete('/:username/app-passwords/:id', async (c) => {
    const mailbox = await findOrFail(deps, c, c.req.param('username'));
    const id = parseWith(appPasswordId, c.req.param('id'), 'id');
    const deleted = await deps.db.transaction(async (tx) => {
      if (!(await deleteAppPassword(tx, mailbox.username, id))) return false;
      await recordAudit(tx, {
        ...changeOrigin(c),
        action: 'app_password.delete',
        target: mailbox.username,
        detail: { id },
      });
      return true;
    });
    if (!deleted) throw new AppError('not_found', `no app password ${id} for ${mailbox.username}`);
    return c.json({ success: true });
  });

  return app;
}

/**
 * The mailbox, if the caller may act on it. Checked twice: on the name's domain before the
 * lookup (no query for other domains) and on the row's own domain after it. Outside the
 * caller's domains the answer is the same 404 as for a mailbox that does not exist.
 */
async function findOrFail(
  deps: MailboxDeps,
  c: Context,
  raw: string,
  action: Action = actionOf(c),
): Promise<AdminMailbox> {
  const name = parseWith(username, raw, 'username');
  const missing = `no mailbox ${name}`;
  authorize(c, action, { kind: 'mailbox', domain: domainOf(name) }, missing);
  const mailbox = await findAdminMailbox(deps.db, name);
  if (!mailbox) throw new AppError('not_found', missing);
  authorize(c, action, { kind: 'mailbox', domain: mailbox.domain }, missing);
  return mailbox;
}
