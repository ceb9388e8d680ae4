// /api/v1/admins: admin accounts (mailcow's admin + domain_admins), superadmins only. Password
// hashes never leave; passwords arrive only in bodies. Each change is audited with before/after
// of the changed fields; the last active superadmin cannot be deleted, disabled or demoted.
import { Hono } from 'hono';
import { z } from 'zod';
import {
  type AccountDenial,
  type AccountOutcome,
  changeAdminAccount,
  createAdminAccount,
  deleteAdminAccount,
  normaliseUsername,
  setAdminPassword,
} from '../../admin/admin-accounts.js';
import { resetAdminTwoFactor } from '../../admin/two-factor-reset.js';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { type AdminAccount, findAdmin, listAdmins } from '../../storage/admins.js';
import { changedFields, recordAudit } from '../../storage/audit.js';
import { authorizeArea, changeOrigin, readBody } from './admin-request.js';

type AccountDeps = Pick<Deps, 'db' | 'hashPool' | 'config'>;

const domains = z.array(z.string().trim().toLowerCase().min(1).max(255)).max(1000);
const createBody = z
  .strictObject({
    username: z.string().max(255),
    password: z.string().min(1).max(1024),
    superadmin: z.boolean().default(false),
    domains: domains.optional(),
    active: z.boolean().default(true),
  })
  .refine((body) => body.superadmin || (body.domains?.length ?? 0) > 0, {
    message: 'a domain admin needs domains (or set superadmin: true)',
    path: ['domains'],
  });
const changeBody = z
  .strictObject({
    superadmin: z.boolean().optional(),
    active: z.boolean().optional(),
    domains: domains.optional(),
    force_tfa: z.boolean().optional(),
  })
  .refine((body) => Object.keys(body).length > 0, { message: 'nothing to change' });
const passwordBody = z.strictObject({ password: z.string().min(1).max(1024) });

export function view(account: AdminAccount) {
  return {
    username: account.username,
    role: account.superadmin ? 'superadmin' : 'domainadmin',
    active: account.active,
    domains: account.domains,
    force_tfa: Number(account.attributes.force_tfa ?? 0) === 1,
    created: account.created instanceof Date ? account.created.toISOString() : null,
  };
}

/** The fields an audit entry compares (never a password or hash). */
export function auditFields(account: AdminAccount) {
  return {
    superadmin: account.superadmin,
    active: account.active,
    domains: account.domains,
    force_tfa: Number(account.attributes.force_tfa ?? 0) === 1,
  };
}

export const STATUS_BY_DENIAL: Record<AccountDenial, 'bad_request' | 'conflict' | 'not_found'> = {
  invalid_username: 'bad_request',
  weak_password: 'bad_request',
  unknown_domain: 'bad_request',
  no_domains: 'bad_request',
  exists: 'conflict',
  not_found: 'not_found',
  last_superadmin: 'conflict',
  actor_not_enrolled: 'conflict',
};

function valueOrThrow<T>(outcome: AccountOutcome<T>): T {
  if (outcome.ok) return outcome.value;
  throw new AppError(STATUS_BY_DENIAL[outcome.denial], outcome.message);
}

export function createAdminAccountRoutes(deps: AccountDeps) {
  const app = new Hono();
  const accountDeps = { db: deps.db, hashPool: deps.hashPool, passwordScheme: deps.config.passwordScheme };
  // Collection and items alike: domain admins never see or change admin accounts, their own included.
  app.use('*', authorizeArea({ kind: 'admins' }));

  app.get('/', async (c) => c.json({ admins: (await listAdmins(deps.db)).map(view) }));

  app.post('/', async (c) => {
    const body = await readBody(c, createBody);
    const created = valueOrThrow(
      await createAdminAccount(accountDeps, {
        username: body.username,
        password: body.password,
        superadmin: body.superadmin,
        domains: body.domains ?? [],
        active: body.active,
      }),
    );
    await recordAudit(deps.db, {
      ...changeOrigin(c),
      action: 'admin.create',
      target: created.username,
      after: auditFields(created),
    });
    return c.json(view(created), 201);
  });

  app.get('/:username', async (c) => {
    const account = await findAdmin(deps.db, normaliseUsername(c.req.param('username')));
    if (!account) throw new AppError('not_found', 'no such admin');
    return c.json(view(account));
  });

  app.patch('/:username', async (c) => {
    const body = await readBody(c, changeBody);
    const { force_tfa: forceTfa, ...flags } = body;
    const principal = c.get('admin');
    const { before, after } = valueOrThrow(
      await changeAdminAccount(
        accountDeps,
        c.req.param('username'),
        { ...flags, ...(forceTfa === undefined ? {} : { forceTfa }) },
        principal.via === 'session' ? principal.actor.name : undefined,
      ),
    );
    await recordAudit(deps.db, {
      ...changeOrigin(c),
      action: 'admin.update',
      target: after.username,
      ...changedFields(auditFields(before), auditFields(after)),
    });
    return c.json(view(after));
  });

  app.put('/:username/password', async (c) => {
    const { password } = await readBody(c, passwordBody);
    const account = valueOrThrow(await setAdminPassword(accountDeps, c.req.param('username'), password));
    await recordAudit(deps.db, { ...changeOrigin(c), action: 'admin.password', target: account.username });
    return c.json({ success: true });
  });

  // A superadmin removes another admin's second factor (a lost phone): audited, and the owner is
  // told at the next sign-in.
  app.delete('/:username/tfa', async (c) => {
    const origin = changeOrigin(c);
    const outcome = await resetAdminTwoFactor(deps.db, {
      username: c.req.param('username'),
      actor: origin.actor,
      ...(origin.ip ? { ip: origin.ip } : {}),
    });
    if (!outcome.ok) throw new AppError('not_found', 'no such admin');
    return c.json({ success: true, removed: outcome.removed });
  });

  app.delete('/:username', async (c) => {
    const deleted = valueOrThrow(await deleteAdminAccount(accountDeps, c.req.param('username')));
    await recordAudit(deps.db, {
      ...changeOrigin(c),
      action: 'admin.delete',
      target: deleted.username,
      before: auditFields(deleted),
    });
    return c.json({ success: true });
  });

  return app;
}
