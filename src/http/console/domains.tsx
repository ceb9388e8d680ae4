// Console pages for domains and alias domains: /admin/domains (list, search, paging, alias
// domains), /admin/domains/new, /admin/domains/:domain (edit, usage, its alias domains, delete
// with confirmation). The same use-cases as /api/v1/domains (src/admin/domains.ts).
import { type Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import {
  createAliasDomain,
  createDomain,
  DOMAIN_DEFAULTS,
  DOMAIN_PAGE_SIZE,
  type DomainDetails,
  deleteAliasDomain,
  deleteDomain,
  domainFieldsSchema,
  getAliasDomain,
  getDomain,
  listAliasDomainsFor,
  listDomainsFor,
  setAliasDomainActive,
  updateDomain,
} from '../../admin/domains.js';
import type { Deps } from '../../deps.js';
import type { AliasDomainRecord, DomainFields } from '../../storage/domains.js';
import { changeBy, denialError, unwrap } from '../routes/admin-outcome.js';
import { Checkbox, CsrfForm, Field, FormErrors } from '../views/console-layout.js';
import { type ConsoleView, checked, readForm } from './context.js';
import { renderPage } from './page.js';

const SECTION = '/admin/domains';

/** Fixed confirmations after a redirect (never text taken from the URL). */
const NOTICES: Record<string, string> = {
  created: 'The domain was created.',
  saved: 'The changes were saved.',
  deleted: 'The domain was deleted.',
  'alias-created': 'The alias domain was created.',
  'alias-activated': 'The alias domain is active.',
  'alias-deactivated': 'The alias domain is inactive.',
  'alias-deleted': 'The alias domain was deleted.',
};
const noticeOf = (c: Context) => NOTICES[c.req.query('notice') ?? ''];

const domainForm = z.object({
  description: z.string().max(255).optional(),
  active: z.unknown().optional().transform(checked),
  gal: z.unknown().optional().transform(checked),
  mailboxes: z.string(),
  aliases: z.string(),
  defquota: z.string(),
  maxquota: z.string(),
  quota: z.string(),
});

const enc = encodeURIComponent;

function DomainFieldset(props: { values: DomainFields; errors?: Record<string, string> | undefined }) {
  const v = props.values;
  const e = props.errors ?? {};
  return (
    <>
      <Field name="description" label="Description" value={v.description} error={e.description} />
      <Checkbox
        name="active"
        label="Active (mailboxes of an inactive domain cannot sign in)"
        checked={v.active === 1}
      />
      <Checkbox
        name="gal"
        label="Global address list (webmail shows the domain's mailboxes to each other)"
        checked={v.gal === 1}
      />
      <Field name="mailboxes" type="number" min={0} label="Most mailboxes" value={v.mailboxes} error={e.mailboxes} />
      <Field
        name="aliases"
        type="number"
        min={0}
        label="Most aliases"
        hint="Aliases other than each mailbox's own address."
        value={v.aliases}
        error={e.aliases}
      />
      <Field
        name="defquota"
        type="number"
        min={1}
        label="Default quota of a new mailbox (MiB)"
        value={v.defquota}
        error={e.defquota}
      />
      <Field
        name="maxquota"
        type="number"
        min={1}
        label="Largest quota of one mailbox (MiB)"
        value={v.maxquota}
        error={e.maxquota}
      />
      <Field
        name="quota"
        type="number"
        min={1}
        label="Quota of the whole domain (MiB)"
        hint="The sum of all its mailboxes' quotas may not exceed it."
        value={v.quota}
        error={e.quota}
      />
    </>
  );
}

function AliasDomainTable(props: { view: ConsoleView; rows: readonly AliasDomainRecord[]; showTarget: boolean }) {
  if (props.rows.length === 0) return <p class="muted">No alias domains.</p>;
  return (
    <table id="alias-domains">
      <caption class="muted">Mail to an alias domain is delivered to the same local part at its target domain.</caption>
      <thead>
        <tr>
          <th scope="col">Alias domain</th>
          {props.showTarget ? <th scope="col">Target domain</th> : null}
          <th scope="col">State</th>
          <th scope="col">Actions</th>
        </tr>
      </thead>
      <tbody>
        {props.rows.map((row) => (
          <tr>
            <td>{row.aliasDomain}</td>
            {props.showTarget ? (
              <td>
                <a href={`/admin/domains/${enc(row.targetDomain)}`}>{row.targetDomain}</a>
              </td>
            ) : null}
            <td>{row.active === 1 ? <span class="badge">active</span> : <span class="badge off">inactive</span>}</td>
            <td>
              <CsrfForm view={props.view} action={`/admin/alias-domains/${enc(row.aliasDomain)}/active`} class="inline">
                <input type="hidden" name="active" value={row.active === 1 ? '0' : '1'} />
                <button type="submit" class="secondary">
                  {row.active === 1 ? 'Deactivate' : 'Activate'}
                  <span class="muted"> {row.aliasDomain}</span>
                </button>
              </CsrfForm>{' '}
              <a class="button secondary" href={`/admin/alias-domains/${enc(row.aliasDomain)}/delete`}>
                Delete<span class="muted"> {row.aliasDomain}</span>
              </a>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function AliasDomainForm(props: {
  view: ConsoleView;
  targets: readonly string[];
  target?: string;
  errors?: Record<string, string> | undefined;
}) {
  if (props.targets.length === 0) return null;
  return (
    <CsrfForm view={props.view} action="/admin/alias-domains" id="alias-domain-form">
      <h3>Add an alias domain</h3>
      <FormErrors errors={props.errors} />
      <Field name="alias_domain" label="Alias domain" required value="" hint="For example example.net" />
      {props.target ? (
        <input type="hidden" name="target_domain" value={props.target} />
      ) : (
        <div class="field">
          <label for="f-target_domain">Target domain</label>
          <select id="f-target_domain" name="target_domain">
            {props.targets.map((target) => (
              <option value={target}>{target}</option>
            ))}
          </select>
        </div>
      )}
      <Checkbox name="active" id="f-alias-active" label="Active" checked={true} />
      <div class="actions">
        <button type="submit">Add alias domain</button>
      </div>
    </CsrfForm>
  );
}

export function createConsoleDomainPages(deps: Pick<Deps, 'db'>) {
  const app = new Hono();

  app.get('/domains', async (c) => {
    const view = c.get('console');
    const search = (c.req.query('q') ?? '').trim().slice(0, 255);
    const after = c.req.query('after')?.slice(0, 255);
    const rows = await listDomainsFor(deps, view.actor, {
      ...(search ? { search } : {}),
      ...(after ? { after } : {}),
      limit: DOMAIN_PAGE_SIZE,
    });
    const aliasDomains = await listAliasDomainsFor(deps, view.actor);
    const next = rows.length === DOMAIN_PAGE_SIZE ? rows.at(-1)?.domain : undefined;
    const isSuper = view.actor.role === 'superadmin';
    return renderPage(
      c,
      { title: 'Domains', section: SECTION, notice: noticeOf(c) },
      <>
        <div class="toolbar">
          <form method="get" action="/admin/domains">
            <div>
              <label for="domain-search">Search domains</label>
              <input type="search" id="domain-search" name="q" value={search} />
            </div>
            <button type="submit" class="secondary">
              Search
            </button>
          </form>
          {isSuper ? (
            <a class="button" href="/admin/domains/new" id="new-domain">
              New domain
            </a>
          ) : null}
        </div>
        <section aria-labelledby="domains-heading">
          <h2 id="domains-heading">Domains</h2>
          {rows.length === 0 ? (
            <p class="muted">{search ? 'No domain matches.' : 'No domains yet.'}</p>
          ) : (
            <table id="domains">
              <thead>
                <tr>
                  <th scope="col">Domain</th>
                  <th scope="col">Description</th>
                  <th scope="col">State</th>
                  <th scope="col" class="num">
                    Mailboxes
                  </th>
                  <th scope="col" class="num">
                    Quota (MiB)
                  </th>
                  <th scope="col" class="num">
                    Alias domains
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((row) => (
                  <tr>
                    <td>
                      <a href={`/admin/domains/${enc(row.domain)}`}>{row.domain}</a>
                    </td>
                    <td>{row.description}</td>
                    <td>
                      {row.active === 1 ? <span class="badge">active</span> : <span class="badge off">inactive</span>}
                    </td>
                    <td class="num">
                      <a href={`/admin/mailboxes?domain=${enc(row.domain)}`}>
                        {row.mailboxCount} / {row.mailboxes}
                      </a>
                    </td>
                    <td class="num">{row.quota}</td>
                    <td class="num">{row.aliasDomainCount}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {next ? (
            <nav class="pager" aria-label="Pages">
              <a href={`/admin/domains?${new URLSearchParams({ ...(search ? { q: search } : {}), after: next })}`}>
                Next page
              </a>
            </nav>
          ) : null}
        </section>
        <section aria-labelledby="alias-domains-heading">
          <h2 id="alias-domains-heading">Alias domains</h2>
          <AliasDomainTable view={view} rows={aliasDomains} showTarget={true} />
          <AliasDomainForm view={view} targets={isSuper ? rows.map((row) => row.domain) : view.actor.domains} />
        </section>
      </>,
    );
  });

  const newPage = (c: Context, values: DomainFields & { domain: string }, errors?: Record<string, string>) =>
    renderPage(
      c,
      { title: 'New domain', section: SECTION, status: errors ? 400 : 200 },
      <section>
        <FormErrors errors={errors} />
        <CsrfForm view={c.get('console')} action="/admin/domains" id="domain-form">
          <Field name="domain" label="Domain name" required value={values.domain} error={errors?.domain} />
          <DomainFieldset values={values} errors={errors} />
          <div class="actions">
            <button type="submit">Create domain</button>
            <a class="button secondary" href="/admin/domains">
              Cancel
            </a>
          </div>
        </CsrfForm>
      </section>,
    );

  app.get('/domains/new', async (c) => {
    if (c.get('console').actor.role !== 'superadmin')
      throw denialError({ denial: 'forbidden', message: 'only a superadmin creates domains' });
    return newPage(c, { ...DOMAIN_DEFAULTS, domain: '' });
  });

  app.post('/domains', async (c) => {
    const form = await readForm(c, domainForm.extend({ domain: z.string() }));
    const raw = await c.req.parseBody();
    const echo = echoFields(raw);
    if (!form.ok) return newPage(c, { ...echo, domain: String(raw.domain ?? '') }, form.errors);
    const fields = domainFieldsSchema.safeParse(form.data);
    if (!fields.success) return newPage(c, { ...echo, domain: form.data.domain }, issues(fields.error.issues));
    const outcome = await createDomain(deps, changeBy(c), { ...fields.data, domain: form.data.domain });
    if (!outcome.ok) {
      if (outcome.denial === 'forbidden' || outcome.denial === 'read_only') throw denialError(outcome);
      return newPage(c, { ...echo, domain: form.data.domain }, { [outcome.field ?? 'form']: outcome.message });
    }
    return c.redirect(`/admin/domains/${enc(outcome.value.domain)}?notice=created`, 303);
  });

  const editPage = (
    c: Context,
    details: DomainDetails,
    values: DomainFields,
    errors?: Record<string, string>,
    status: ContentfulStatusCode = 200,
  ) => {
    const view = c.get('console');
    const d = details.domain;
    const isSuper = view.actor.role === 'superadmin';
    return renderPage(
      c,
      { title: d.domain, section: SECTION, notice: noticeOf(c), status },
      <>
        <section aria-labelledby="usage-heading">
          <h2 id="usage-heading">In use</h2>
          <dl id="domain-usage">
            <dt>Mailboxes</dt>
            <dd>
              <a href={`/admin/mailboxes?domain=${enc(d.domain)}`}>
                {details.usage.mailboxCount} of {d.mailboxes}
              </a>
            </dd>
            <dt>Aliases</dt>
            <dd>
              {details.usage.aliasCount} of {d.aliases}
            </dd>
            <dt>Quota given to mailboxes</dt>
            <dd>
              {details.usage.quotaSumMiB} MiB of {d.quota} MiB
            </dd>
            <dt>Created</dt>
            <dd>{d.created.toISOString().slice(0, 16).replace('T', ' ')} UTC</dd>
          </dl>
        </section>
        <section aria-labelledby="settings-heading">
          <h2 id="settings-heading">Settings</h2>
          <FormErrors errors={errors} />
          <CsrfForm view={view} action={`/admin/domains/${enc(d.domain)}`} id="domain-form">
            {isSuper ? (
              <DomainFieldset values={values} errors={errors} />
            ) : (
              <>
                <Field name="description" label="Description" value={values.description} error={errors?.description} />
                <p class="muted">Limits and the domain's state are changed by a superadmin.</p>
              </>
            )}
            <div class="actions">
              <button type="submit">Save</button>
            </div>
          </CsrfForm>
        </section>
        <section aria-labelledby="domain-alias-heading">
          <h2 id="domain-alias-heading">Alias domains of {d.domain}</h2>
          <AliasDomainTable view={view} rows={details.aliasDomains} showTarget={false} />
          <AliasDomainForm view={view} targets={[d.domain]} target={d.domain} />
        </section>
        {isSuper ? (
          <section aria-labelledby="delete-heading">
            <h2 id="delete-heading">Delete</h2>
            <p>
              A domain can be deleted once it has no mailboxes. Its aliases, alias domains and domain admin assignments
              go with it.
            </p>
            <a class="button secondary" href={`/admin/domains/${enc(d.domain)}/delete`} id="delete-domain">
              Delete {d.domain}…
            </a>
          </section>
        ) : null}
      </>,
    );
  };

  app.get('/domains/:domain', async (c) => {
    const details = unwrap(await getDomain(deps, c.get('console').actor, c.req.param('domain')));
    return editPage(c, details, details.domain);
  });

  app.post('/domains/:domain', async (c) => {
    const view = c.get('console');
    const details = unwrap(await getDomain(deps, view.actor, c.req.param('domain')));
    const isSuper = view.actor.role === 'superadmin';
    const raw = await c.req.parseBody();
    let input: z.output<typeof domainFieldsSchema>;
    if (isSuper) {
      const form = await readForm(c, domainForm);
      if (!form.ok) return editPage(c, details, echoFields(raw), form.errors, 400);
      const fields = domainFieldsSchema.safeParse(form.data);
      if (!fields.success) return editPage(c, details, echoFields(raw), issues(fields.error.issues), 400);
      input = fields.data;
    } else {
      input = { description: typeof raw.description === 'string' ? raw.description.slice(0, 255) : '' };
    }
    const outcome = await updateDomain(deps, changeBy(c), details.domain.domain, input);
    if (!outcome.ok) {
      if (outcome.denial === 'invalid' || outcome.denial === 'conflict') {
        const values = isSuper ? echoFields(raw) : { ...details.domain, description: input.description ?? '' };
        return editPage(c, details, values, { [outcome.field ?? 'form']: outcome.message }, 400);
      }
      throw denialError(outcome);
    }
    return c.redirect(`/admin/domains/${enc(details.domain.domain)}?notice=saved`, 303);
  });

  app.get('/domains/:domain/delete', async (c) => {
    const view = c.get('console');
    const details = unwrap(await getDomain(deps, view.actor, c.req.param('domain')));
    if (view.actor.role !== 'superadmin')
      throw denialError({ denial: 'forbidden', message: 'only a superadmin deletes domains' });
    const d = details.domain.domain;
    return renderPage(
      c,
      { title: `Delete ${d}?`, section: SECTION },
      <section>
        {details.usage.mailboxCount > 0 ? (
          <p class="error" role="alert">
            {d} still has {details.usage.mailboxCount} mailboxes; delete them first.
          </p>
        ) : (
          <p>
            This deletes {d}, its aliases, its alias domains ({details.aliasDomains.length}) and its domain admin
            assignments. It cannot be undone.
          </p>
        )}
        <CsrfForm view={view} action={`/admin/domains/${enc(d)}/delete`}>
          <div class="actions">
            <button type="submit" class="danger" id="confirm-delete">
              Delete {d}
            </button>
            <a class="button secondary" href={`/admin/domains/${enc(d)}`}>
              Cancel
            </a>
          </div>
        </CsrfForm>
      </section>,
    );
  });

  app.post('/domains/:domain/delete', async (c) => {
    unwrap(await deleteDomain(deps, changeBy(c), c.req.param('domain')));
    return c.redirect('/admin/domains?notice=deleted', 303);
  });

  app.post('/alias-domains', async (c) => {
    const raw = await c.req.parseBody();
    const target = typeof raw.target_domain === 'string' ? raw.target_domain : '';
    const outcome = await createAliasDomain(deps, changeBy(c), {
      aliasDomain: typeof raw.alias_domain === 'string' ? raw.alias_domain : '',
      targetDomain: target,
      active: checked(raw.active),
    });
    if (!outcome.ok) throw denialError(outcome);
    return c.redirect(`/admin/domains/${enc(outcome.value.targetDomain)}?notice=alias-created`, 303);
  });

  app.post('/alias-domains/:name/active', async (c) => {
    const raw = await c.req.parseBody();
    const active = raw.active === '1';
    const outcome = unwrap(await setAliasDomainActive(deps, changeBy(c), c.req.param('name'), active));
    return c.redirect(
      `/admin/domains/${enc(outcome.targetDomain)}?notice=${active ? 'alias-activated' : 'alias-deactivated'}`,
      303,
    );
  });

  app.get('/alias-domains/:name/delete', async (c) => {
    const view = c.get('console');
    const record = unwrap(await getAliasDomain(deps, view.actor, c.req.param('name')));
    return renderPage(
      c,
      { title: `Delete ${record.aliasDomain}?`, section: SECTION },
      <section>
        <p>
          Mail to {record.aliasDomain} will no longer reach {record.targetDomain}. Aliases written under{' '}
          {record.aliasDomain} are deleted too.
        </p>
        <CsrfForm view={view} action={`/admin/alias-domains/${enc(record.aliasDomain)}/delete`}>
          <div class="actions">
            <button type="submit" class="danger" id="confirm-delete">
              Delete {record.aliasDomain}
            </button>
            <a class="button secondary" href={`/admin/domains/${enc(record.targetDomain)}`}>
              Cancel
            </a>
          </div>
        </CsrfForm>
      </section>,
    );
  });

  app.post('/alias-domains/:name/delete', async (c) => {
    const view = c.get('console');
    const record = unwrap(await getAliasDomain(deps, view.actor, c.req.param('name')));
    unwrap(await deleteAliasDomain(deps, changeBy(c), record.aliasDomain));
    return c.redirect(`/admin/domains/${enc(record.targetDomain)}?notice=alias-deleted`, 303);
  });

  return app;
}

/** What the admin typed, to show again next to the errors. */
function echoFields(raw: Record<string, unknown>): DomainFields {
  const text = (key: string) => (typeof raw[key] === 'string' ? (raw[key] as string) : '');
  const num = (key: string) => (text(key) === '' ? 0 : Number(text(key)) || 0);
  return {
    description: text('description'),
    active: checked(raw.active) ? 1 : 0,
    gal: checked(raw.gal) ? 1 : 0,
    backupmx: 0,
    mailboxes: num('mailboxes'),
    aliases: num('aliases'),
    defquota: num('defquota'),
    maxquota: num('maxquota'),
    quota: num('quota'),
  };
}

function issues(list: readonly z.core.$ZodIssue[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const issue of list) out[String(issue.path[0] ?? 'form')] ??= issue.message;
  return out;
}
