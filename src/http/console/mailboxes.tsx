// Console pages for mailboxes: /admin/mailboxes (search in address and name, filter by domain, 50
// per page, keyset-paged), /admin/mailboxes/new, /admin/mailboxes/:username (edit, password,
// auth source, app passwords, last logins, audit entries) and delete with confirmation. The same
// use-cases as /api/v1/mailboxes (src/admin/mailboxes.ts).
// Long (~560 lines) because each page's handler sits beside its markup; the rules are in
// src/admin/mailboxes.ts, so this file holds only reading forms and rendering.
import { type Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { listDomainsFor } from '../../admin/domains.js';
import {
  createMailbox,
  createMailboxSchema,
  deleteMailbox,
  getMailboxDetails,
  listMailboxesFor,
  MAILBOX_PAGE_SIZE,
  type MailboxDetails,
  MIN_PASSWORD_LENGTH,
  PROTOCOL_FLAGS,
  revokeAppPassword,
  setPassword,
  switchAuthSource,
  updateMailbox,
  updateMailboxSchema,
} from '../../admin/mailboxes.js';
import type { Deps } from '../../deps.js';
import { APP_PASSWORD_PROTOCOLS } from '../../storage/app-passwords.js';
import { listMailboxTemplates } from '../../storage/templates.js';
import { changeBy, denialError, unwrap } from '../routes/admin-outcome.js';
import { Checkbox, CsrfForm, Field, FormErrors, Select } from '../views/console-layout.js';
import { checked } from './context.js';
import { renderPage } from './page.js';

const SECTION = '/admin/mailboxes';
const MIB = 1024 * 1024;
const enc = encodeURIComponent;

const NOTICES: Record<string, string> = {
  created: 'The mailbox was created.',
  saved: 'The changes were saved.',
  password: 'The new password is set.',
  authsource: 'The auth source was changed.',
  revoked: 'The app password was revoked.',
  deleted: 'The mailbox was deleted. Its maildir is left to Dovecot.',
};
const noticeOf = (c: Context) => NOTICES[c.req.query('notice') ?? ''];

const PROTOCOL_LABELS: Record<(typeof PROTOCOL_FLAGS)[number], string> = {
  imap_access: 'IMAP',
  pop3_access: 'POP3',
  smtp_access: 'SMTP (sending)',
  sieve_access: 'Sieve (filters)',
  sogo_access: 'Webmail (SOGo)',
  eas_access: 'ActiveSync',
  dav_access: 'CalDAV / CardDAV',
};
const ACTIVE_OPTIONS = [
  { value: '1', label: 'Active' },
  { value: '2', label: 'Receives mail, signs in nowhere' },
  { value: '0', label: 'Disabled' },
];
const activeLabel = (active: number) => ACTIVE_OPTIONS.find((option) => option.value === String(active))?.label ?? '?';
const mib = (bytes: number) => (bytes === 0 ? 'unlimited' : `${Math.round(bytes / MIB)} MiB`);
const when = (date: Date | null) => (date ? `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC` : '');

export function createConsoleMailboxPages(deps: Pick<Deps, 'db' | 'hashPool' | 'config'>) {
  const app = new Hono();
  const useCaseDeps = { db: deps.db, hashPool: deps.hashPool, passwordScheme: deps.config.passwordScheme };

  app.get('/mailboxes', async (c) => {
    const view = c.get('console');
    const search = (c.req.query('q') ?? '').trim().slice(0, 255);
    const domain = (c.req.query('domain') ?? '').trim().slice(0, 255);
    const after = c.req.query('after')?.slice(0, 255);
    const { rows, next } = await listMailboxesFor(deps, view.actor, {
      ...(search ? { search } : {}),
      ...(domain ? { domain } : {}),
      ...(after ? { after } : {}),
      limit: MAILBOX_PAGE_SIZE,
    });
    const domains = await listDomainsFor(deps, view.actor, { limit: 500 });
    // A search reads a bounded number of rows per request: a short page may still go on.
    const partial = next !== null && rows.length < MAILBOX_PAGE_SIZE;
    const keep = { ...(search ? { q: search } : {}), ...(domain ? { domain } : {}) };
    return renderPage(
      c,
      { title: 'Mailboxes', section: SECTION, notice: noticeOf(c) },
      <>
        <div class="toolbar">
          <form method="get" action="/admin/mailboxes">
            <div>
              <label for="mailbox-search">Search address, domain or name</label>
              <input type="search" id="mailbox-search" name="q" value={search} />
            </div>
            <div>
              <label for="mailbox-domain">Domain</label>
              <select id="mailbox-domain" name="domain">
                <option value="">All domains</option>
                {domains.map((row) => (
                  <option value={row.domain} selected={row.domain === domain}>
                    {row.domain}
                  </option>
                ))}
              </select>
            </div>
            <button type="submit" class="secondary">
              Search
            </button>
          </form>
          <a class="button" href={`/admin/mailboxes/new${domain ? `?domain=${enc(domain)}` : ''}`} id="new-mailbox">
            New mailbox
          </a>
        </div>
        <section aria-labelledby="mailboxes-heading">
          <h2 id="mailboxes-heading">Mailboxes</h2>
          {rows.length === 0 && !partial ? (
            <p class="muted">{search || domain ? 'No mailbox matches.' : 'No mailboxes yet.'}</p>
          ) : rows.length === 0 ? null : (
            <table id="mailboxes">
              <thead>
                <tr>
                  <th scope="col">Address</th>
                  <th scope="col">Name</th>
                  <th scope="col">State</th>
                  <th scope="col">Auth source</th>
                  <th scope="col" class="num">
                    Used / quota
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((row) => (
                  <tr>
                    <td>
                      <a href={`/admin/mailboxes/${enc(row.username)}`}>{row.username}</a>
                    </td>
                    <td>{row.name}</td>
                    <td>
                      <span class={row.active === 1 ? 'badge' : 'badge off'}>{activeLabel(row.active)}</span>
                    </td>
                    <td>{row.authsource ?? 'none'}</td>
                    <td class="num">
                      {Math.round(row.usedBytes / MIB)} MiB / {mib(row.quota)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {partial ? (
            <p id="search-partial">
              {rows.length === 0 ? 'No match so far: ' : ''}this search has looked through the mailboxes up to {next}.
              There may be more matches after it.
            </p>
          ) : null}
          <nav class="pager" aria-label="Pages">
            {after ? <a href={`/admin/mailboxes?${new URLSearchParams(keep)}`}>First page</a> : null}
            {next ? (
              <a href={`/admin/mailboxes?${new URLSearchParams({ ...keep, after: next })}`} id="next-page">
                {partial ? 'Search further' : 'Next page'}
              </a>
            ) : null}
          </nav>
        </section>
      </>,
    );
  });

  const newPage = async (c: Context, values: Record<string, string>, errors?: Record<string, string>) => {
    const view = c.get('console');
    const domains = await listDomainsFor(deps, view.actor, { limit: 500 });
    const templates = await listMailboxTemplates(deps.db);
    return renderPage(
      c,
      { title: 'New mailbox', section: SECTION, status: errors ? 400 : 200 },
      <section>
        <FormErrors errors={errors} />
        <CsrfForm view={view} action="/admin/mailboxes" id="mailbox-form">
          <Field
            name="local_part"
            label="Local part (before the @)"
            required
            value={values.local_part}
            error={errors?.local_part}
          />
          <Select
            name="domain"
            label="Domain"
            value={values.domain ?? ''}
            options={domains.map((row) => ({ value: row.domain, label: row.domain }))}
            error={errors?.domain}
          />
          <Field name="name" label="Full name" value={values.name} error={errors?.name} />
          <Field
            name="password"
            type="password"
            label="Password"
            required
            autocomplete="new-password"
            hint={`At least ${MIN_PASSWORD_LENGTH} characters. Hashed with ${deps.config.passwordScheme}.`}
            error={errors?.password}
          />
          <Field
            name="password2"
            type="password"
            label="Password again"
            required
            autocomplete="new-password"
            error={errors?.password2}
          />
          <Field
            name="quota"
            type="number"
            min={0}
            label="Quota (MiB)"
            hint="Empty: the domain's default quota. 0: unlimited (superadmins only)."
            value={values.quota}
            error={errors?.quota}
          />
          {templates.length > 1 ? (
            <Select
              name="template"
              label="Mailbox template (protocols, ACLs, attributes)"
              value={values.template ?? templates[0]?.name ?? ''}
              options={templates.map((template) => ({ value: template.name, label: template.name }))}
              error={errors?.template}
            />
          ) : null}
          <div class="actions">
            <button type="submit">Create mailbox</button>
            <a class="button secondary" href="/admin/mailboxes">
              Cancel
            </a>
          </div>
        </CsrfForm>
      </section>,
    );
  };

  app.get('/mailboxes/new', async (c) => newPage(c, { domain: c.req.query('domain') ?? '' }));

  app.post('/mailboxes', async (c) => {
    const raw = await c.req.parseBody();
    const text = (key: string) => (typeof raw[key] === 'string' ? (raw[key] as string) : '');
    const echo = {
      local_part: text('local_part'),
      domain: text('domain'),
      name: text('name'),
      quota: text('quota'),
      template: text('template'),
    };
    if (text('password') !== text('password2')) {
      return newPage(c, echo, { password2: 'The two passwords differ.' });
    }
    const parsed = createMailboxSchema.safeParse({
      local_part: text('local_part'),
      domain: text('domain'),
      name: text('name'),
      password: text('password'),
      ...(text('quota') !== '' ? { quota: text('quota') } : {}),
      ...(text('template') !== '' ? { template: text('template') } : {}),
    });
    if (!parsed.success) {
      const errors: Record<string, string> = {};
      for (const issue of parsed.error.issues) {
        const field = String(issue.path[0] ?? 'form');
        errors[field] ??= `${field.replace('_', ' ')}: ${issue.message}`;
      }
      return newPage(c, echo, errors);
    }
    const outcome = await createMailbox(useCaseDeps, changeBy(c), parsed.data);
    if (!outcome.ok) {
      if (outcome.denial === 'read_only') throw denialError(outcome);
      return newPage(c, echo, { [outcome.field ?? 'form']: outcome.message });
    }
    return c.redirect(`/admin/mailboxes/${enc(outcome.value.username)}?notice=created`, 303);
  });

  const detailPage = (
    c: Context,
    details: MailboxDetails,
    errors?: Record<string, string>,
    status: ContentfulStatusCode = 200,
  ) => {
    const view = c.get('console');
    const m = details.mailbox;
    const base = `/admin/mailboxes/${enc(m.username)}`;
    const isLocal = m.authsource === 'mailcow' || m.authsource === null;
    return renderPage(
      c,
      { title: m.username, section: SECTION, notice: noticeOf(c), status },
      <>
        <FormErrors errors={errors} />
        <section aria-labelledby="settings-heading">
          <h2 id="settings-heading">Settings</h2>
          <CsrfForm view={view} action={base} id="mailbox-settings">
            <Field name="name" label="Full name" value={m.name} />
            <Field
              name="quota"
              type="number"
              min={0}
              label="Quota (MiB)"
              hint="0: unlimited (superadmins only)."
              value={Math.round(m.quota / MIB)}
              error={errors?.quota}
            />
            <Select name="active" label="State" value={String(m.active)} options={ACTIVE_OPTIONS} />
            <fieldset>
              <legend>Protocols this mailbox may use</legend>
              {PROTOCOL_FLAGS.map((flag) => (
                <Checkbox
                  name={flag}
                  label={PROTOCOL_LABELS[flag]}
                  checked={String(m.attributes[flag] ?? '1') === '1'}
                />
              ))}
            </fieldset>
            <div class="actions">
              <button type="submit">Save</button>
            </div>
          </CsrfForm>
        </section>
        <section aria-labelledby="password-heading">
          <h2 id="password-heading">Password</h2>
          {isLocal ? (
            <CsrfForm view={view} action={`${base}/password`} id="mailbox-password">
              <Field
                name="password"
                type="password"
                label="New password"
                required
                autocomplete="new-password"
                hint={`At least ${MIN_PASSWORD_LENGTH} characters.`}
                error={errors?.password}
              />
              <Field name="password2" type="password" label="New password again" required autocomplete="new-password" />
              <div class="actions">
                <button type="submit">Set password</button>
              </div>
            </CsrfForm>
          ) : (
            <p>This mailbox signs in through {m.authsource}; its password is kept there.</p>
          )}
        </section>
        <section aria-labelledby="authsource-heading">
          <h2 id="authsource-heading">Auth source</h2>
          <CsrfForm view={view} action={`${base}/authsource`} id="mailbox-authsource">
            <Select
              name="authsource"
              label="Signs in with"
              value={m.authsource ?? 'mailcow'}
              options={[
                { value: 'mailcow', label: 'mailcow (local password)' },
                { value: 'keycloak', label: 'Keycloak' },
                { value: 'generic-oidc', label: 'Generic OIDC' },
              ]}
              error={errors?.authsource}
            />
            <p class="hint">
              Switching to an identity provider keeps the local password, so switching back to mailcow restores it.
            </p>
            <div class="actions">
              <button type="submit" class="secondary">
                Change auth source
              </button>
            </div>
          </CsrfForm>
        </section>
        <section aria-labelledby="app-passwords-heading">
          <h2 id="app-passwords-heading">App passwords</h2>
          {details.appPasswords.length === 0 ? (
            <p class="muted">No app passwords.</p>
          ) : (
            <table id="app-passwords">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Protocols</th>
                  <th scope="col">Created</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {details.appPasswords.map((record) => (
                  <tr>
                    <td>{record.name}</td>
                    <td>
                      {APP_PASSWORD_PROTOCOLS.filter((protocol) => record.protocols[protocol])
                        .map((protocol) => protocol.replace('_access', ''))
                        .join(', ')}
                    </td>
                    <td>{when(record.created)}</td>
                    <td>
                      <CsrfForm view={view} action={`${base}/app-passwords/${record.id}/revoke`} class="inline">
                        <button type="submit" class="danger">
                          Revoke<span class="muted"> {record.name}</span>
                        </button>
                      </CsrfForm>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
        <section aria-labelledby="logins-heading">
          <h2 id="logins-heading">Last logins</h2>
          {details.logins.length === 0 ? (
            <p class="muted">No logins recorded (mailcow's sasl_log keeps the last one per service and address).</p>
          ) : (
            <table id="last-logins">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Service</th>
                  <th scope="col">From</th>
                  <th scope="col">With</th>
                </tr>
              </thead>
              <tbody>
                {details.logins.map((login) => (
                  <tr>
                    <td>{when(login.at)}</td>
                    <td>{login.service}</td>
                    <td>{login.ip}</td>
                    <td>{login.appPassword === null ? 'password' : `app password ${login.appPassword}`}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
        <section aria-labelledby="audit-heading">
          <h2 id="audit-heading">Audit entries</h2>
          {details.audit.length === 0 ? (
            <p class="muted">No audit entries about this mailbox.</p>
          ) : (
            <table id="mailbox-audit">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Who</th>
                  <th scope="col">What</th>
                  <th scope="col">Outcome</th>
                </tr>
              </thead>
              <tbody>
                {details.audit.map((row) => (
                  <tr>
                    <td>{when(row.at)}</td>
                    <td>{row.actor}</td>
                    <td>{row.action}</td>
                    <td>{row.outcome}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
        <section aria-labelledby="delete-heading">
          <h2 id="delete-heading">Delete</h2>
          <a class="button secondary" href={`${base}/delete`} id="delete-mailbox">
            Delete {m.username}…
          </a>
        </section>
      </>,
    );
  };

  const detailsOf = async (c: Context) =>
    unwrap(await getMailboxDetails(deps, c.get('console').actor, c.req.param('username') ?? ''));

  /** A use-case's refusal shown on the mailbox page (invalid/conflict), or thrown (404/403). */
  async function showOr(c: Context, outcome: { ok: false; denial: string; message: string; field?: string }) {
    if (outcome.denial !== 'invalid' && outcome.denial !== 'conflict') throw denialError(outcome as never);
    return detailPage(c, await detailsOf(c), { [outcome.field ?? 'form']: outcome.message }, 400);
  }

  app.get('/mailboxes/:username', async (c) => detailPage(c, await detailsOf(c)));

  app.post('/mailboxes/:username', async (c) => {
    const raw = await c.req.parseBody();
    const parsed = updateMailboxSchema.safeParse({
      name: typeof raw.name === 'string' ? raw.name : undefined,
      quota: typeof raw.quota === 'string' && raw.quota !== '' ? raw.quota : undefined,
      active: Number(raw.active ?? 1),
      protocols: Object.fromEntries(PROTOCOL_FLAGS.map((flag) => [flag, checked(raw[flag])])),
    });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return showOr(c, {
        ok: false,
        denial: 'invalid',
        message: issue?.message ?? 'invalid',
        field: String(issue?.path[0] ?? 'form'),
      });
    }
    const outcome = await updateMailbox(useCaseDeps, changeBy(c), c.req.param('username'), parsed.data);
    if (!outcome.ok) return showOr(c, outcome);
    return c.redirect(`/admin/mailboxes/${enc(outcome.value.username)}?notice=saved`, 303);
  });

  app.post('/mailboxes/:username/password', async (c) => {
    const raw = await c.req.parseBody();
    const password = typeof raw.password === 'string' ? raw.password : '';
    if (password !== raw.password2) {
      return showOr(c, { ok: false, denial: 'invalid', message: 'The two passwords differ.', field: 'password' });
    }
    const outcome = await setPassword(useCaseDeps, changeBy(c), c.req.param('username'), password);
    if (!outcome.ok) return showOr(c, outcome);
    return c.redirect(`/admin/mailboxes/${enc(outcome.value.username)}?notice=password`, 303);
  });

  app.post('/mailboxes/:username/authsource', async (c) => {
    const raw = await c.req.parseBody();
    const choice = raw.authsource;
    if (choice !== 'mailcow' && choice !== 'keycloak' && choice !== 'generic-oidc') {
      return showOr(c, { ok: false, denial: 'invalid', message: 'choose an auth source', field: 'authsource' });
    }
    const outcome = await switchAuthSource(useCaseDeps, changeBy(c), c.req.param('username'), choice);
    if (!outcome.ok) return showOr(c, { ...outcome, field: 'authsource' });
    return c.redirect(`/admin/mailboxes/${enc(outcome.value.username)}?notice=authsource`, 303);
  });

  app.post('/mailboxes/:username/app-passwords/:id/revoke', async (c) => {
    const id = Number(c.req.param('id'));
    if (!Number.isSafeInteger(id) || id <= 0)
      throw denialError({ denial: 'not_found', message: 'no such app password' });
    unwrap(await revokeAppPassword(useCaseDeps, changeBy(c), c.req.param('username'), id));
    return c.redirect(`/admin/mailboxes/${enc(c.req.param('username'))}?notice=revoked`, 303);
  });

  app.get('/mailboxes/:username/delete', async (c) => {
    const details = await detailsOf(c);
    const m = details.mailbox;
    return renderPage(
      c,
      { title: `Delete ${m.username}?`, section: SECTION },
      <section>
        <p>
          This deletes the mailbox {m.username}, its app passwords ({details.appPasswords.length}), the aliases that
          only forward to it, and its address from other aliases. It cannot be undone.
        </p>
        <p>
          The mail itself stays on disk: the maildir is Dovecot's business. Remove it with Dovecot (for example{' '}
          <code>doveadm</code> on the mail host) if it should go too.
        </p>
        <CsrfForm view={c.get('console')} action={`/admin/mailboxes/${enc(m.username)}/delete`}>
          <div class="actions">
            <button type="submit" class="danger" id="confirm-delete">
              Delete {m.username}
            </button>
            <a class="button secondary" href={`/admin/mailboxes/${enc(m.username)}`}>
              Cancel
            </a>
          </div>
        </CsrfForm>
      </section>,
    );
  });

  app.post('/mailboxes/:username/delete', async (c) => {
    unwrap(await deleteMailbox(useCaseDeps, changeBy(c), c.req.param('username')));
    return c.redirect('/admin/mailboxes?notice=deleted', 303);
  });

  return app;
}
