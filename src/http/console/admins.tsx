// Console pages for admin accounts, superadmins only: /admin/admins (list, create, 2FA
// enforcement per role) and /admin/admins/:username (role, domain ACL, active, reset 2FA). The
// same use-cases and audit rows as /api/v1/admins and /api/v1/two-factor-policy; no rules of its
// own. The API keys pages (api-keys.tsx) sit in this section and share its role list and forms.
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { type AccountOutcome, changeAdminAccount, createAdminAccount } from '../../admin/admin-accounts.js';
import { changeTwoFactorPolicy } from '../../admin/two-factor-policy.js';
import { resetAdminTwoFactor } from '../../admin/two-factor-reset.js';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { type AdminAccount, findAdmin, listAdmins } from '../../storage/admins.js';
import { changedFields, recordAudit } from '../../storage/audit.js';
import { readTwoFactorPolicy } from '../../storage/two-factor-policy.js';
import { auditFields as accountAuditFields, STATUS_BY_DENIAL } from '../routes/admin-accounts.js';
import { changeOrigin } from '../routes/admin-request.js';
import { Checkbox, CsrfForm, Field, Select } from '../views/console-layout.js';
import { authorizePage, type ConsoleView, checked, readForm } from './context.js';
import { renderPage } from './page.js';

/** The console section of admins and API keys (the navigation's entry). */
export const SECTION = '/admin/admins';
const enc = encodeURIComponent;

const NOTICES: Record<string, string> = {
  created: 'The admin was created.',
  saved: 'The changes were saved.',
  'tfa-reset': "The admin's second factor was removed; it is told so at its next sign-in.",
  policy: 'The two-factor enforcement was saved.',
};
const noticeOf = (c: Context) => NOTICES[c.req.query('notice') ?? ''];

/** Domains typed as a list separated by spaces, commas or new lines. */
export const listOf = (value: string | undefined) => (value ?? '').split(/[\s,;]+/).filter(Boolean);
export const ROLE_OPTIONS = [
  { value: 'domainadmin', label: 'Domain admin' },
  { value: 'superadmin', label: 'Superadmin' },
] as const;

const createForm = z.object({
  username: z.string().max(255),
  password: z.string().min(1).max(1024),
  role: z.enum(['superadmin', 'domainadmin']),
  domains: z.string().max(10_000).optional(),
  active: z.unknown().optional().transform(checked),
});
const changeForm = z.object({
  role: z.enum(['superadmin', 'domainadmin']),
  domains: z.string().max(10_000).optional(),
  active: z.unknown().optional().transform(checked),
  force_tfa: z.unknown().optional().transform(checked),
});
const policyForm = z.object({
  superadmin: z.unknown().optional().transform(checked),
  domainadmin: z.unknown().optional().transform(checked),
  mailbox: z.unknown().optional().transform(checked),
});

function valueOrThrow<T>(outcome: AccountOutcome<T>): T {
  if (outcome.ok) return outcome.value;
  throw new AppError(STATUS_BY_DENIAL[outcome.denial], outcome.message);
}

export function formErrors(errors: Record<string, string>): never {
  throw new AppError('bad_request', Object.values(errors).join('; '));
}

const forceTfaOf = (account: AdminAccount) => Number(account.attributes.force_tfa ?? 0) === 1;

function AdminsList(props: { view: ConsoleView; admins: readonly AdminAccount[] }) {
  return (
    <table id="admins">
      <thead>
        <tr>
          <th scope="col">Username</th>
          <th scope="col">Role</th>
          <th scope="col">Domains</th>
          <th scope="col">State</th>
          <th scope="col">2FA required</th>
        </tr>
      </thead>
      <tbody>
        {props.admins.map((admin) => (
          <tr>
            <td>
              <a href={`/admin/admins/${enc(admin.username)}`}>{admin.username}</a>
            </td>
            <td>{admin.superadmin ? 'superadmin' : 'domain admin'}</td>
            <td>{admin.superadmin ? 'all' : admin.domains.join(', ')}</td>
            <td>{admin.active ? <span class="badge">active</span> : <span class="badge off">disabled</span>}</td>
            <td>{forceTfaOf(admin) ? 'yes' : 'no'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function createConsoleAdmins(deps: Pick<Deps, 'db' | 'hashPool' | 'config'>) {
  const app = new Hono();
  const accountDeps = { db: deps.db, hashPool: deps.hashPool, passwordScheme: deps.config.passwordScheme };
  const actorAccount = (c: Context) => c.get('console').username;

  app.get('/admins', async (c) => {
    authorizePage(c, 'read', { kind: 'admins' });
    const view = c.get('console');
    const [admins, { policy }] = await Promise.all([listAdmins(deps.db), readTwoFactorPolicy(deps.db)]);
    return renderPage(
      c,
      { title: 'Admins', section: SECTION, notice: noticeOf(c) },
      <>
        <p>
          <a href="/admin/api-keys">API keys</a>
        </p>
        <AdminsList view={view} admins={admins} />
        <h2>New admin</h2>
        <CsrfForm view={view} action="/admin/admins" id="create-admin">
          <Field name="username" label="Username" required autocomplete="off" />
          <Field name="password" type="password" label="Password" required autocomplete="new-password" />
          <Select name="role" label="Role" value="domainadmin" options={ROLE_OPTIONS} />
          <Field name="domains" label="Domains" hint="A domain admin's domains, separated by spaces or commas." />
          <Checkbox name="active" label="Active" checked={true} />
          <button type="submit">Create admin</button>
        </CsrfForm>
        <h2>Two-factor enforcement</h2>
        <CsrfForm view={view} action="/admin/admins/policy" id="tfa-policy">
          <Checkbox
            name="superadmin"
            id="p-superadmin"
            label="Superadmins must use a second factor"
            checked={policy.superadmin}
          />
          <Checkbox
            name="domainadmin"
            id="p-domainadmin"
            label="Domain admins must use a second factor"
            checked={policy.domainadmin}
          />
          <Checkbox
            name="mailbox"
            id="p-mailbox"
            label="Mailbox users (local passwords) must use a second factor"
            checked={policy.mailbox}
          />
          <button type="submit">Save enforcement</button>
        </CsrfForm>
      </>,
    );
  });

  app.post('/admins', async (c) => {
    authorizePage(c, 'write', { kind: 'admins' });
    const form = await readForm(c, createForm);
    if (!form.ok) formErrors(form.errors);
    const created = valueOrThrow(
      await createAdminAccount(accountDeps, {
        username: form.data.username,
        password: form.data.password,
        superadmin: form.data.role === 'superadmin',
        domains: listOf(form.data.domains),
        active: form.data.active,
      }),
    );
    await recordAudit(deps.db, {
      ...changeOrigin(c),
      action: 'admin.create',
      target: created.username,
      after: accountAuditFields(created),
    });
    return c.redirect(`/admin/admins/${enc(created.username)}?notice=created`, 303);
  });

  app.post('/admins/policy', async (c) => {
    authorizePage(c, 'write', { kind: 'admins' });
    const form = await readForm(c, policyForm);
    if (!form.ok) formErrors(form.errors);
    const origin = changeOrigin(c);
    const outcome = await changeTwoFactorPolicy(deps, {
      change: form.data,
      actor: origin.actor,
      actorAccount: actorAccount(c),
      ...(origin.ip ? { ip: origin.ip } : {}),
    });
    if (!outcome.ok) throw new AppError('conflict', outcome.message);
    return c.redirect('/admin/admins?notice=policy', 303);
  });

  app.get('/admins/:username', async (c) => {
    authorizePage(c, 'read', { kind: 'admins' });
    const account = await findAdmin(deps.db, c.req.param('username').trim().toLowerCase());
    if (!account) throw new AppError('not_found', 'no such admin');
    const view = c.get('console');
    const base = `/admin/admins/${enc(account.username)}`;
    return renderPage(
      c,
      { title: `Admin ${account.username}`, section: SECTION, notice: noticeOf(c) },
      <>
        <CsrfForm view={view} action={base} id="edit-admin">
          <Select
            name="role"
            label="Role"
            value={account.superadmin ? 'superadmin' : 'domainadmin'}
            options={ROLE_OPTIONS}
          />
          <Field
            name="domains"
            label="Domains"
            value={account.domains.join(', ')}
            hint="A domain admin's domains, separated by spaces or commas (ignored for a superadmin)."
          />
          <Checkbox name="active" label="Active (a disabled admin cannot sign in)" checked={account.active} />
          <Checkbox
            name="force_tfa"
            label="Must set up a second factor at the next sign-in"
            checked={forceTfaOf(account)}
          />
          <button type="submit">Save</button>
        </CsrfForm>
        <h2>Second factor</h2>
        <CsrfForm view={view} action={`${base}/reset-2fa`} id="reset-2fa">
          <p class="muted">Removes the admin's authenticators and recovery codes (a lost phone).</p>
          <button type="submit" class="secondary">
            Reset two-factor sign-in
          </button>
        </CsrfForm>
        <p>
          <a href={SECTION}>Back to the admins</a>
        </p>
      </>,
    );
  });

  app.post('/admins/:username', async (c) => {
    authorizePage(c, 'write', { kind: 'admins' });
    const form = await readForm(c, changeForm);
    if (!form.ok) formErrors(form.errors);
    const current = await findAdmin(deps.db, c.req.param('username').trim().toLowerCase());
    if (!current) throw new AppError('not_found', 'no such admin');
    const superadmin = form.data.role === 'superadmin';
    const { before, after } = valueOrThrow(
      await changeAdminAccount(
        accountDeps,
        current.username,
        {
          superadmin,
          active: form.data.active,
          ...(superadmin ? {} : { domains: listOf(form.data.domains) }),
          // Only a change of the flag is asked for (an unchanged box is no new requirement).
          ...(form.data.force_tfa === forceTfaOf(current) ? {} : { forceTfa: form.data.force_tfa }),
        },
        actorAccount(c),
      ),
    );
    await recordAudit(deps.db, {
      ...changeOrigin(c),
      action: 'admin.update',
      target: after.username,
      ...changedFields(accountAuditFields(before), accountAuditFields(after)),
    });
    return c.redirect(`/admin/admins/${enc(after.username)}?notice=saved`, 303);
  });

  app.post('/admins/:username/reset-2fa', async (c) => {
    authorizePage(c, 'write', { kind: 'admins' });
    const origin = changeOrigin(c);
    const outcome = await resetAdminTwoFactor(deps.db, {
      username: c.req.param('username'),
      actor: origin.actor,
      ...(origin.ip ? { ip: origin.ip } : {}),
    });
    if (!outcome.ok) throw new AppError('not_found', 'no such admin');
    return c.redirect(`/admin/admins/${enc(c.req.param('username').trim().toLowerCase())}?notice=tfa-reset`, 303);
  });

  return app;
}
