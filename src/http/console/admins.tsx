// Console pages for admin accounts and API keys, superadmins only: /admin/admins (list, create,
// 2FA enforcement per role), /admin/admins/:username (role, domain ACL, active, reset 2FA) and
// /admin/api-keys (list, create with the key shown once on /admin/api-keys/created, revoke). The same use-cases and audit
// rows as /api/v1/admins, /api/v1/two-factor-policy and /api/v1/api-keys; no rules of its own.
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { type AccountOutcome, changeAdminAccount, createAdminAccount } from '../../admin/admin-accounts.js';
import { apiKeyAuditName, createApiKey, listKeys, revokeApiKey } from '../../admin/api-keys.js';
import { changeTwoFactorPolicy } from '../../admin/two-factor-policy.js';
import { resetAdminTwoFactor } from '../../admin/two-factor-reset.js';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { type AdminAccount, findAdmin, listAdmins } from '../../storage/admins.js';
import type { ApiKeyRecord } from '../../storage/api-keys.js';
import { changedFields, recordAudit } from '../../storage/audit.js';
import { readTwoFactorPolicy } from '../../storage/two-factor-policy.js';
import { auditFields as accountAuditFields, STATUS_BY_DENIAL } from '../routes/admin-accounts.js';
import { apiKeyName, auditFields as keyAuditFields } from '../routes/admin-api-keys.js';
import { changeOrigin } from '../routes/admin-request.js';
import { Checkbox, CsrfForm, Field, Select } from '../views/console-layout.js';
import { authorizePage, type ConsoleView, checked, readForm } from './context.js';
import { renderPage } from './page.js';
import { createShownOnce } from './shown-once.js';

const SECTION = '/admin/admins';
/** Where a new API key is shown, once (the cookie that opens it is scoped to this path). */
const CREATED_PAGE = '/admin/api-keys/created';
const enc = encodeURIComponent;

const NOTICES: Record<string, string> = {
  created: 'The admin was created.',
  saved: 'The changes were saved.',
  'tfa-reset': "The admin's second factor was removed; it is told so at its next sign-in.",
  policy: 'The two-factor enforcement was saved.',
  revoked: 'The API key was revoked.',
};
const noticeOf = (c: Context) => NOTICES[c.req.query('notice') ?? ''];

/** Domains typed as a list separated by spaces, commas or new lines. */
const listOf = (value: string | undefined) => (value ?? '').split(/[\s,;]+/).filter(Boolean);
const ROLE_OPTIONS = [
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
const keyForm = z.object({
  name: apiKeyName,
  role: z.enum(['superadmin', 'domainadmin']),
  domains: z.string().max(10_000).optional(),
  access: z.enum(['ro', 'rw']),
  allow_from: z.string().max(4096),
  expires: z
    .string()
    .regex(/^(\d{4}-\d{2}-\d{2})?$/, 'a date as YYYY-MM-DD')
    .optional(),
});
const keyId = z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER);

function valueOrThrow<T>(outcome: AccountOutcome<T>): T {
  if (outcome.ok) return outcome.value;
  throw new AppError(STATUS_BY_DENIAL[outcome.denial], outcome.message);
}

function formErrors(errors: Record<string, string>): never {
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

function KeysList(props: { view: ConsoleView; keys: readonly ApiKeyRecord[] }) {
  if (props.keys.length === 0) return <p class="muted">No API keys.</p>;
  const now = Date.now();
  return (
    <table id="api-keys">
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col">Key</th>
          <th scope="col">Role</th>
          <th scope="col">Access</th>
          <th scope="col">Allowed from</th>
          <th scope="col">Expires</th>
          <th scope="col">State</th>
          <th scope="col">Actions</th>
        </tr>
      </thead>
      <tbody>
        {props.keys.map((key) => {
          const state = key.revokedAt
            ? 'revoked'
            : key.expiresAt && key.expiresAt.getTime() <= now
              ? 'expired'
              : 'active';
          return (
            <tr>
              <td>{key.name}</td>
              <td>
                <code>postern_{key.hint}…</code>
              </td>
              <td>{key.role === 'superadmin' ? 'superadmin' : `domain admin (${key.domains.join(', ')})`}</td>
              <td>{key.access}</td>
              <td>{key.allowFrom.split(',').join(', ')}</td>
              <td>{key.expiresAt ? key.expiresAt.toISOString().slice(0, 10) : 'never'}</td>
              <td>{state === 'active' ? <span class="badge">active</span> : <span class="badge off">{state}</span>}</td>
              <td>
                {state === 'revoked' ? null : (
                  <CsrfForm view={props.view} action={`/admin/api-keys/${key.id}/revoke`} class="inline">
                    <button type="submit" class="secondary">
                      Revoke<span class="muted"> {key.name}</span>
                    </button>
                  </CsrfForm>
                )}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

export function createConsoleAdmins(deps: Pick<Deps, 'db' | 'hashPool' | 'config' | 'redis'>) {
  const app = new Hono();
  const shownOnce = createShownOnce(deps);
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

  app.get('/api-keys', async (c) => {
    authorizePage(c, 'read', { kind: 'api_keys' });
    const view = c.get('console');
    const keys = await listKeys(deps.db);
    return renderPage(
      c,
      { title: 'API keys', section: SECTION, notice: noticeOf(c) },
      <>
        <KeysList view={view} keys={keys} />
        <h2>New API key</h2>
        <CsrfForm view={view} action="/admin/api-keys" id="create-key">
          <Field name="name" label="Name" required />
          <Select name="role" label="Role" value="domainadmin" options={ROLE_OPTIONS} />
          <Field name="domains" label="Domains" hint="A domain admin key's domains, separated by spaces or commas." />
          <Select
            name="access"
            label="Access"
            value="ro"
            options={[
              { value: 'ro', label: 'Read only' },
              { value: 'rw', label: 'Read and write' },
            ]}
          />
          <Field
            name="allow_from"
            label="Allowed networks"
            required
            hint="IPs or CIDR networks, separated by spaces or commas (0.0.0.0/0 and ::/0 for anywhere)."
          />
          <Field name="expires" label="Expires on" hint="YYYY-MM-DD (UTC); empty for never." />
          <button type="submit">Create key</button>
        </CsrfForm>
      </>,
    );
  });

  app.post('/api-keys', async (c) => {
    authorizePage(c, 'write', { kind: 'api_keys' });
    const form = await readForm(c, keyForm);
    if (!form.ok) formErrors(form.errors);
    const origin = changeOrigin(c);
    const domains = listOf(form.data.domains);
    const outcome = await createApiKey(
      deps.db,
      {
        name: form.data.name,
        role: form.data.role,
        ...(form.data.role === 'domainadmin' ? { domains } : {}),
        access: form.data.access,
        allowFrom: listOf(form.data.allow_from),
        ...(form.data.expires ? { expiresAt: new Date(`${form.data.expires}T00:00:00Z`) } : {}),
      },
      origin.actor.name,
    );
    if (!outcome.ok) throw new AppError('bad_request', outcome.message);
    const { record, key } = outcome.value;
    await recordAudit(deps.db, {
      ...origin,
      action: 'api_key.create',
      target: apiKeyAuditName(record.id),
      after: keyAuditFields(record),
    });
    // The key is never stored: sealed for one look at the page below (a reload shows it no more).
    await shownOnce.put(c, { path: CREATED_PAGE, username: actorAccount(c), secret: key, label: record.name });
    return c.redirect(CREATED_PAGE, 303);
  });

  app.get('/api-keys/created', async (c) => {
    authorizePage(c, 'read', { kind: 'api_keys' });
    const shown = await shownOnce.take(c, { path: CREATED_PAGE, username: actorAccount(c) });
    return renderPage(
      c,
      { title: shown ? 'API key created' : 'API key already shown', section: SECTION },
      <section>
        {shown ? (
          <>
            <p>
              This is the key <strong>{shown.label}</strong>. Copy it now: it is shown only this once.
            </p>
            <p>
              <label for="api-key-secret">API key</label>
              <input type="text" id="api-key-secret" readonly value={shown.secret} autocomplete="off" />
            </p>
          </>
        ) : (
          <p id="api-key-gone">
            A new API key is shown only once, right after it is created. If it was not copied, revoke it and create
            another.
          </p>
        )}
        <p>
          <a href="/admin/api-keys">Back to the API keys</a>
        </p>
      </section>,
    );
  });

  app.post('/api-keys/:id/revoke', async (c) => {
    authorizePage(c, 'write', { kind: 'api_keys' });
    const parsed = keyId.safeParse(c.req.param('id'));
    if (!parsed.success) throw new AppError('not_found', 'no such API key');
    const origin = changeOrigin(c);
    const outcome = await revokeApiKey(deps.db, parsed.data, origin.actor.name);
    if (!outcome.ok) throw new AppError('not_found', outcome.message);
    await recordAudit(deps.db, {
      ...origin,
      action: 'api_key.revoke',
      target: apiKeyAuditName(outcome.value.id),
      detail: keyAuditFields(outcome.value),
      before: { revoked: false },
      after: { revoked: true },
    });
    return c.redirect('/admin/api-keys?notice=revoked', 303);
  });

  return app;
}
