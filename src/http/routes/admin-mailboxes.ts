// /api/v1/mailboxes: list (keyset-paged), create, edit, set a password, delete, the auth source,
// app passwords and last logins, as admins manage them, through the use-cases of
// src/admin/mailboxes.ts. Password hashes never leave the database through here; switching a
// mailbox to an IdP keeps its local hash so that switching back to mailcow restores the old
// password (mailcow docs). Deleting a mailbox leaves its maildir to Dovecot.
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { foldAddress } from '../../address.js';
import {
  createMailbox,
  createMailboxSchema,
  deleteMailbox,
  getMailboxDetails,
  listMailboxesFor,
  MAILBOX_PAGE_SIZE,
  revokeAppPassword,
  setPassword,
  switchAuthSource,
  updateMailbox,
  updateMailboxSchema,
} from '../../admin/mailboxes.js';
import { type Action, domainOf } from '../../admin/roles.js';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { APP_PASSWORD_PROTOCOLS, listAppPasswords } from '../../storage/app-passwords.js';
import { type AdminMailbox, findAdminMailbox } from '../../storage/mailbox-admin.js';
import { changeBy, unwrap } from './admin-outcome.js';
import { actionOf, authorize, changeOrigin, parseWith, readBody } from './admin-request.js';

type MailboxDeps = Pick<Deps, 'db' | 'redis' | 'log' | 'config' | 'sogoHandoff' | 'hashPool'>;

const listQuery = z.strictObject({
  domain: z.string().max(255).optional(),
  search: z.string().max(255).optional(),
  after: z.string().max(255).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

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

export function view(mailbox: AdminMailbox) {
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
  const useCaseDeps = { db: deps.db, hashPool: deps.hashPool, passwordScheme: deps.config.passwordScheme };

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

  app.get('/', async (c) => {
    const query = parseWith(listQuery, c.req.query(), 'query');
    const limit = query.limit ?? MAILBOX_PAGE_SIZE;
    const { rows, next } = await listMailboxesFor(deps, c.get('admin').actor, { ...query, limit });
    return c.json({
      mailboxes: rows.map((row) => ({
        username: row.username,
        name: row.name,
        domain: row.domain,
        active: row.active,
        authsource: row.authsource,
        quota: row.quota,
        quota_used: row.usedBytes,
      })),
      next,
    });
  });

  app.post('/', async (c) => {
    const body = await readBody(c, createMailboxSchema.strict());
    const created = unwrap(await createMailbox(useCaseDeps, changeBy(c), body));
    return c.json(view(created), 201);
  });

  app.get('/:username', async (c) => c.json(view(await findOrFail(deps, c, c.req.param('username')))));

  app.patch('/:username', async (c) => {
    const body = await readBody(c, updateMailboxSchema.strict());
    return c.json(view(unwrap(await updateMailbox(useCaseDeps, changeBy(c), c.req.param('username'), body))));
  });

  app.put('/:username/password', async (c) => {
    const { password } = await readBody(c, z.strictObject({ password: z.string({ error: 'required' }).max(1024) }));
    unwrap(await setPassword(useCaseDeps, changeBy(c), c.req.param('username'), password));
    return c.json({ success: true });
  });

  app.delete('/:username', async (c) => {
    unwrap(await deleteMailbox(useCaseDeps, changeBy(c), c.req.param('username')));
    // The maildir stays where it is: removing it is Dovecot's (doveadm) business.
    return c.json({ success: true, maildir: 'kept; remove it with Dovecot (doveadm) if wanted' });
  });

  app.put('/:username/authsource', async (c) => {
    const { authsource } = await readBody(c, authsourceBody);
    return c.json(view(unwrap(await switchAuthSource(useCaseDeps, changeBy(c), c.req.param('username'), authsource))));
  });

  app.get('/:username/logins', async (c) => {
    const details = unwrap(await getMailboxDetails(deps, c.get('admin').actor, c.req.param('username')));
    return c.json({
      logins: details.logins.map((login) => ({
        service: login.service,
        ip: login.ip,
        at: login.at,
        app_password: login.appPassword,
      })),
    });
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
    const id = parseWith(appPasswordId, c.req.param('id'), 'id');
    unwrap(await revokeAppPassword(useCaseDeps, changeBy(c), c.req.param('username'), id));
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
