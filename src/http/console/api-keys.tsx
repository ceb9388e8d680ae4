// Console pages for API keys, superadmins only: /admin/api-keys (list, create with the key shown
// once on /admin/api-keys/created, revoke). The same use-cases and audit rows as /api/v1/api-keys;
// no rules of its own.
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { apiKeyAuditName, createApiKey, listKeys, revokeApiKey } from '../../admin/api-keys.js';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import type { ApiKeyRecord } from '../../storage/api-keys.js';
import { recordAudit } from '../../storage/audit.js';
import { apiKeyName, auditFields as keyAuditFields } from '../routes/admin-api-keys.js';
import { changeOrigin } from '../routes/admin-request.js';
import { CsrfForm, Field, Select } from '../views/console-layout.js';
import { formErrors, listOf, ROLE_OPTIONS, SECTION } from './admins.js';
import { authorizePage, type ConsoleView, readForm } from './context.js';
import { renderPage } from './page.js';
import { createShownOnce } from './shown-once.js';

/** Where a new API key is shown, once (the cookie that opens it is scoped to this path). */
const CREATED_PAGE = '/admin/api-keys/created';

const NOTICES: Record<string, string> = {
  revoked: 'The API key was revoked.',
};
const noticeOf = (c: Context) => NOTICES[c.req.query('notice') ?? ''];

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
export function createConsoleApiKeys(deps: Pick<Deps, 'db' | 'config' | 'redis'>) {
  const app = new Hono();
  const shownOnce = createShownOnce(deps);
  const actorAccount = (c: Context) => c.get('console').username;

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
