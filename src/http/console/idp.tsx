// /admin/identity-provider: the IdP settings form and its test connection, over the same
// use-cases as /api/v1/identity-provider (save with audit, test on unsaved settings). Superadmins
// only (can(): identity_provider). The client secret is never rendered.
import { type Context, Hono } from 'hono';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { describeProvider, saveIdentityProvider, testIdentityProvider } from '../routes/admin-identity-provider.js';
import { changeOrigin } from '../routes/admin-request.js';
import { FIELDS, IdpPage, type IdpType } from '../views/console-idp.js';
import { authorizePage, checked } from './context.js';
import { renderPage } from './page.js';

type IdpDeps = Pick<Deps, 'db' | 'secretBox' | 'config' | 'log'>;
const SECTION = '/admin/identity-provider';
/** Keys kept from the stored settings when the form does not carry them (the mapping lives on the Templates page). */
const CARRIED_KEYS = ['mappers', 'templates', 'default_template', 'attribute_field'] as const;

export function createConsoleIdp(deps: IdpDeps) {
  const app = new Hono();

  app.get('/identity-provider', async (c) => {
    authorizePage(c, 'read', { kind: 'identity_provider' });
    const current = await describeProvider(deps);
    const storedType = current.authsource === 'generic-oidc' ? 'generic-oidc' : 'keycloak';
    const type = parseType(c.req.query('type')) ?? storedType;
    const values = current.settings && current.settings.authsource === type ? current.settings : defaultsFor(type);
    return show(c, current, type, values as Record<string, unknown>, {
      notice: c.req.query('saved') ? 'The identity provider settings were saved.' : undefined,
    });
  });

  app.post('/identity-provider', async (c) => {
    authorizePage(c, 'write', { kind: 'identity_provider' });
    const current = await describeProvider(deps);
    const { type, body, sampleUser } = await bodyFromForm(c, current);
    try {
      await saveIdentityProvider(deps, body, changeOrigin(c));
    } catch (error) {
      if (!(error instanceof AppError) || !error.expose) throw error;
      return show(c, current, type, body, { errors: errorsOf(error.message), status: error.status, sampleUser });
    }
    return c.redirect(`${SECTION}?saved=1`, 303);
  });

  app.post('/identity-provider/test', async (c) => {
    authorizePage(c, 'write', { kind: 'identity_provider' });
    const current = await describeProvider(deps);
    const { type, body, sampleUser } = await bodyFromForm(c, current);
    try {
      const report = await testIdentityProvider(deps, body, sampleUser);
      return show(c, current, type, body, { report, sampleUser });
    } catch (error) {
      if (!(error instanceof AppError) || !error.expose) throw error;
      return show(c, current, type, body, { errors: errorsOf(error.message), status: error.status, sampleUser });
    }
  });

  return app;
}

type Described = Awaited<ReturnType<typeof describeProvider>>;

function show(
  c: Context,
  current: Described,
  type: IdpType,
  values: Record<string, unknown>,
  extra: {
    notice?: string | undefined;
    errors?: Record<string, string>;
    status?: number;
    sampleUser?: string | undefined;
    report?: Parameters<typeof IdpPage>[0]['report'];
  },
) {
  return renderPage(
    c,
    {
      title: 'Identity provider',
      section: SECTION,
      notice: extra.notice,
      ...(extra.status ? { status: extra.status as 400 } : {}),
    },
    <IdpPage
      view={c.get('console')}
      type={type}
      values={values}
      state={current.state}
      problems={current.problems}
      secretSet={hasStoredSecret(current)}
      errors={extra.errors}
      sampleUser={extra.sampleUser}
      report={extra.report}
    />,
  );
}

function hasStoredSecret(current: Described): boolean {
  if (current.settings) return true;
  const stored = 'stored' in current ? (current.stored as Record<string, unknown>) : {};
  return (stored.client_secret as { set?: boolean } | undefined)?.set === true;
}

function parseType(value: string | undefined): IdpType | undefined {
  return value === 'keycloak' || value === 'generic-oidc' ? value : undefined;
}

function defaultsFor(type: IdpType): Record<string, unknown> {
  const common = {
    attribute_field: 'mailcow_template',
    login_provisioning: true,
    postern_token_auth_method: 'client_secret_post',
  };
  return type === 'keycloak'
    ? { ...common, version: '26.0.0', sync_interval: 15, postern_max_drop_percent: 20 }
    : { ...common, client_scopes: 'openid profile email mailcow_template' };
}

/**
 * The posted form → the API's settings body: every field of the type from the form (checkboxes
 * absent = off, empty optional URLs left out), the mapping keys from the stored settings, and an
 * empty secret as "keep the stored one".
 */
async function bodyFromForm(c: Context, current: Described) {
  const form = await c.req.parseBody();
  const type = parseType(String(form.authsource ?? '')) ?? 'keycloak';
  const body: Record<string, unknown> = { authsource: type };
  const stored = current.settings as Record<string, unknown> | null;
  for (const key of CARRIED_KEYS) if (stored && stored[key] !== undefined) body[key] = stored[key];
  for (const spec of FIELDS[type]) {
    const raw = form[spec.key];
    const text = typeof raw === 'string' ? raw : '';
    if (spec.kind === 'bool') body[spec.key] = checked(raw);
    else if (spec.kind === 'secret') {
      if (text !== '') body[spec.key] = text;
      else if (hasStoredSecret(current)) body[spec.key] = { set: true };
    } else if (text.trim() !== '' || !spec.key.endsWith('_url') || spec.key === 'redirect_url') body[spec.key] = text;
  }
  const sample = typeof form.sample_user === 'string' ? form.sample_user.trim().slice(0, 320) : '';
  return { type, body, sampleUser: sample || undefined };
}

/** `server_url: must be ...; realm: required` → one message per field (the rest under `form`). */
function errorsOf(message: string): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const part of message.split('; ')) {
    const field = /^([a-z_]+)(?:\[\d+\])?: /.exec(part)?.[1] ?? 'form';
    errors[field] = errors[field] ? `${errors[field]}; ${part}` : part;
  }
  return errors;
}
