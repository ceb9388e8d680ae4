// /admin/templates: mailbox templates (list, create, edit, delete; domain admins read only) and,
// for superadmins, the attribute → template mapping of the IdP settings: ordered rows (add,
// remove, move, default), a preview of what a value or a sample IdP user gets and why, and the
// number of mailboxes a sync dry run would change. Changes go through the API's use-cases.
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import {
  changeMapping,
  findSampleUser,
  type MappingChange,
  mappingOf,
  previewMapping,
  settingsOfMapping,
} from '../../admin/mapping-preview.js';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { idpFetch } from '../../sources/idp-fetch.js';
import { loadIdpSettings } from '../../sources/idp-settings.js';
import { createKeycloakAdminClient } from '../../sources/keycloak-admin.js';
import { listMailboxTemplates } from '../../storage/templates.js';
import { runSync } from '../../sync/run-sync.js';
import { FLAG_ATTRIBUTES, TEMPLATE_ACL_KEYS } from '../../templates/apply-template.js';
import { describeProvider, saveIdentityProvider } from '../routes/admin-identity-provider.js';
import { changeOrigin } from '../routes/admin-request.js';
import { createTemplate, deleteTemplate, findOrFail, updateTemplate } from '../routes/admin-templates.js';
import { type MappingSection, TemplateEditor, TemplatesPage } from '../views/console-templates.js';
import { authorizePage, checked } from './context.js';
import { renderPage } from './page.js';

const SECTION = '/admin/templates';

const mappingForm = z.discriminatedUnion('op', [
  z.object({ op: z.literal('add'), value: z.string().max(255), template: z.string().max(255) }),
  z.object({ op: z.enum(['up', 'down', 'remove']), index: z.coerce.number().int().min(0) }),
  z.object({ op: z.literal('default'), template: z.string().max(255) }),
]);

export function createConsoleTemplates(deps: Deps) {
  const app = new Hono();
  const canEdit = (c: Context) => c.get('console').actor.role === 'superadmin';

  async function showList(
    c: Context,
    extra: { errors?: Record<string, string>; status?: number; dryRun?: MappingSection['dryRun'] } = {},
  ) {
    const templates = await listMailboxTemplates(deps.db);
    let mapping: MappingSection | 'no_idp' | undefined;
    if (canEdit(c)) {
      const current = await describeProvider(deps);
      if (!current.settings) mapping = 'no_idp';
      else {
        const rows = mappingOf(current.settings);
        mapping = {
          attributeField: current.settings.attribute_field,
          ...rows,
          ...(extra.dryRun ? { dryRun: extra.dryRun } : {}),
        };
        const value = c.req.query('value')?.slice(0, 255);
        const sampleUser = c.req.query('sample_user')?.trim().slice(0, 320);
        if (sampleUser) mapping.preview = await previewSample(c, sampleUser, rows);
        else if (value !== undefined) {
          mapping.preview = { input: value, result: previewMapping(value, rows, current.settings.attribute_field) };
        }
      }
    }
    return renderPage(
      c,
      {
        title: 'Templates',
        section: SECTION,
        notice: c.req.query('saved') ? 'Saved.' : undefined,
        ...(extra.status ? { status: extra.status as 400 } : {}),
      },
      <TemplatesPage
        view={c.get('console')}
        templates={templates}
        canEdit={canEdit(c)}
        mapping={mapping}
        errors={extra.errors}
        protocolKeys={FLAG_ATTRIBUTES}
      />,
    );
  }

  async function previewSample(c: Context, email: string, rows: ReturnType<typeof mappingOf>) {
    const loaded = await loadIdpSettings(deps.db, deps.secretBox);
    if (loaded.state !== 'ok' || loaded.settings.authsource !== 'keycloak') {
      return {
        input: c.req.query('value') ?? '',
        sampleUser: email,
        result: undefined,
        note: 'A sample user can be looked up only at a Keycloak provider (its admin API); type the value instead.',
      };
    }
    const settings = loaded.settings;
    const client = createKeycloakAdminClient({
      serverUrl: settings.server_url,
      realm: settings.realm,
      clientId: settings.client_id,
      clientSecret: settings.client_secret,
      clientAuthMethod: settings.postern_token_auth_method,
      timeoutMs: deps.config.idpTimeoutMs,
      retry: { attempts: 1 },
      fetch: idpFetch(settings),
    });
    try {
      const user = await findSampleUser(client, email, settings.attribute_field);
      if (!user)
        return { input: '', sampleUser: email, result: undefined, note: `No IdP user has the email ${email}.` };
      return {
        input: '',
        sampleUser: email,
        result: previewMapping(user.value, rows, settings.attribute_field),
        note: `IdP user "${user.username}" has ${settings.attribute_field} = ${JSON.stringify(user.value ?? null)}.`,
      };
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      return { input: '', sampleUser: email, result: undefined, note: `The IdP could not be asked: ${error.message}` };
    }
  }

  app.get('/templates', async (c) => {
    authorizePage(c, 'read', { kind: 'templates' });
    return showList(c);
  });

  app.post('/templates', async (c) => {
    authorizePage(c, 'write', { kind: 'templates' });
    const form = await c.req.parseBody();
    try {
      const id = await createTemplate(deps, { name: String(form.name ?? '') }, changeOrigin(c));
      return c.redirect(`${SECTION}/${id}?saved=1`, 303);
    } catch (error) {
      return showList(c, refusal(error));
    }
  });

  app.post('/templates/mapping', async (c) => {
    authorizePage(c, 'write', { kind: 'identity_provider' });
    const form = mappingForm.safeParse(await c.req.parseBody());
    if (!form.success) throw new AppError('bad_request', 'That mapping change is not understood.');
    const current = await describeProvider(deps);
    if (!current.settings) throw new AppError('conflict', 'Configure the identity provider first.');
    const op = form.data;
    const change: MappingChange =
      op.op === 'add'
        ? { op: 'add', value: op.value, template: op.template }
        : op.op === 'default'
          ? { op: 'default', template: op.template }
          : op.op === 'remove'
            ? { op: 'remove', index: op.index }
            : { op: 'move', index: op.index, to: op.op === 'up' ? op.index - 1 : op.index + 1 };
    try {
      const next = changeMapping(mappingOf(current.settings), change);
      await saveIdentityProvider(deps, { ...current.settings, ...settingsOfMapping(next) }, changeOrigin(c));
    } catch (error) {
      return showList(c, refusal(error));
    }
    return c.redirect(`${SECTION}?saved=1#mapping-heading`, 303);
  });

  app.post('/templates/dry-run', async (c) => {
    authorizePage(c, 'write', { kind: 'sync' });
    const result = await runSync(deps, {
      triggeredBy: c.get('console').username,
      dryRun: true,
      signal: deps.background.signal,
    });
    const dryRun: MappingSection['dryRun'] =
      result.state === 'ran'
        ? {
            runId: result.report.runId,
            created: result.report.counts.created,
            updated: result.report.counts.updated,
            changed: result.report.counts.created + result.report.counts.updated,
          }
        : {
            problem:
              result.state === 'busy'
                ? 'A sync is running right now; try the dry run again when it has finished.'
                : result.state === 'disabled'
                  ? `No dry run: ${result.reason}.`
                  : 'No dry run was made.',
          };
    return showList(c, { dryRun });
  });

  app.get('/templates/:id', async (c) => {
    authorizePage(c, 'read', { kind: 'templates' });
    const template = await findOrFail(deps, c.req.param('id'));
    return renderPage(
      c,
      {
        title: `Template ${template.name}`,
        section: SECTION,
        notice: c.req.query('saved') ? 'Saved.' : undefined,
      },
      <TemplateEditor
        view={c.get('console')}
        template={template}
        canEdit={canEdit(c)}
        protocolKeys={FLAG_ATTRIBUTES}
        aclKeys={TEMPLATE_ACL_KEYS}
      />,
    );
  });

  app.post('/templates/:id', async (c) => {
    authorizePage(c, 'write', { kind: 'templates' });
    const template = await findOrFail(deps, c.req.param('id'));
    const form = await c.req.parseBody();
    const attributes: Record<string, unknown> = {
      quota_mib: Number(form.quota_mib ?? 0),
      active: String(form.active ?? '1'),
    };
    for (const key of [...FLAG_ATTRIBUTES, ...TEMPLATE_ACL_KEYS]) attributes[key] = checked(form[key]) ? 1 : 0;
    try {
      await updateTemplate(deps, String(template.id), { name: String(form.name ?? ''), attributes }, changeOrigin(c));
    } catch (error) {
      const { errors, status } = refusal(error);
      return renderPage(
        c,
        { title: `Template ${template.name}`, section: SECTION, status: status as 400 },
        <TemplateEditor
          view={c.get('console')}
          template={template}
          canEdit
          protocolKeys={FLAG_ATTRIBUTES}
          aclKeys={TEMPLATE_ACL_KEYS}
          errors={errors}
        />,
      );
    }
    return c.redirect(`${SECTION}/${template.id}?saved=1`, 303);
  });

  app.post('/templates/:id/delete', async (c) => {
    authorizePage(c, 'write', { kind: 'templates' });
    try {
      await deleteTemplate(deps, c.req.param('id'), changeOrigin(c));
    } catch (error) {
      return showList(c, refusal(error));
    }
    return c.redirect(`${SECTION}?saved=1`, 303);
  });

  return app;
}

/** A refused change (400/404/409) shown on the page; anything else is the console's error page. */
function refusal(error: unknown): { errors: Record<string, string>; status: number } {
  if (!(error instanceof AppError) || !error.expose) throw error;
  return { errors: { form: error.message }, status: error.status };
}
