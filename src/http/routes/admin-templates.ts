// /api/v1/templates: mailcow's mailbox templates. Attributes are stored the way mailcow's seeded
// Default stores them (flags as numbers 0/1, quota in bytes), so mailcow's UI reads them too.
// `Default` can be neither renamed nor deleted; a template the IdP settings name cannot be
// renamed or deleted either, or mappings would silently point nowhere.
import { Hono } from 'hono';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { changedFields, recordAudit } from '../../storage/audit.js';
import { readIdpRows } from '../../storage/mailbox-admin.js';
import { DEFAULT_MAILBOX_TEMPLATE_ATTRIBUTES } from '../../storage/migrations/0001-mailcow-core.js';
import {
  deleteMailboxTemplate,
  findMailboxTemplateById,
  insertMailboxTemplate,
  listMailboxTemplates,
  type MailboxTemplate,
  updateMailboxTemplate,
} from '../../storage/templates.js';
import { FLAG_ATTRIBUTES, TEMPLATE_ACL_KEYS } from '../../templates/apply-template.js';
import { authorizeArea, type ChangeOrigin, changeOrigin, parseWith, readJsonBody } from './admin-request.js';

type TemplateDeps = Pick<Deps, 'db'>;

const DEFAULT_TEMPLATE_NAME = 'Default';
const BYTES_PER_MIB = 1024 * 1024;

/** 0/1, also as "0"/"1" or a boolean; stored as the number mailcow's Default uses. */
const flag = z
  .custom<0 | 1 | '0' | '1' | boolean>((value) => [0, 1, '0', '1', true, false].includes(value as never), {
    message: 'must be 0 or 1',
  })
  .transform((value): 0 | 1 => (value === 1 || value === '1' || value === true ? 1 : 0));

const FLAG_KEYS = [...FLAG_ATTRIBUTES, ...TEMPLATE_ACL_KEYS] as const;

const flags = Object.fromEntries(FLAG_KEYS.map((key) => [key, flag.optional()])) as Record<
  (typeof FLAG_KEYS)[number],
  z.ZodOptional<typeof flag>
>;

const attributesSchema = z
  .strictObject({
    /** Bytes; 0 = unlimited. */
    quota: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    /** mailcow's add/edit API takes MiB; converted to bytes. */
    quota_mib: z
      .number()
      .int()
      .min(0)
      .max(Math.floor(Number.MAX_SAFE_INTEGER / BYTES_PER_MIB))
      .optional(),
    /** 1 = active, 2 = receives mail but no login, 0 = inactive. */
    active: z
      .union([z.literal(0), z.literal(1), z.literal(2), z.literal('0'), z.literal('1'), z.literal('2')], {
        error: 'must be 0, 1 or 2',
      })
      .transform(Number)
      .optional(),
    quarantine_notification: z.enum(['never', 'hourly', 'daily', 'weekly']).optional(),
    quarantine_category: z.enum(['reject', 'add_header', 'all']).optional(),
    /** Rate limit: `rl_value` messages per `rl_frame` (s, m, h, d); '' = no limit. */
    rl_frame: z.enum(['s', 'm', 'h', 'd']).optional(),
    rl_value: z
      .union([z.literal(''), z.number().int().min(1), z.string().regex(/^[1-9]\d{0,9}$/)], {
        error: 'must be a positive whole number or ""',
      })
      .transform((value) => (value === '' ? '' : Number(value)))
      .optional(),
    tags: z.array(z.string().trim().min(1, 'must not be empty').max(255)).max(100).optional(),
    tagged_mail_handler: z.enum(['subfolder', 'subject', 'none']).optional(),
    ...flags,
  })
  .superRefine((value, ctx) => {
    if (value.quota !== undefined && value.quota_mib !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['quota_mib'], message: 'give quota (bytes) or quota_mib, not both' });
    }
  })
  .transform(({ quota_mib, ...rest }) =>
    quota_mib === undefined ? rest : { ...rest, quota: quota_mib * BYTES_PER_MIB },
  );

const templateName = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(255)
  .refine((name) => !/\p{Cc}/u.test(name), 'must not contain control characters');

const createBody = z.strictObject({ name: templateName, attributes: attributesSchema.default({}) });
const updateBody = z
  .strictObject({ name: templateName.optional(), attributes: attributesSchema.optional() })
  .refine((body) => body.name !== undefined || body.attributes !== undefined, 'give name and/or attributes');

const templateId = z
  .string()
  .regex(/^[1-9]\d{0,9}$/, 'must be a positive whole number')
  .transform(Number);

export function view(template: MailboxTemplate) {
  return { id: template.id, name: template.name, attributes: template.attributes };
}

export function createTemplateRoutes(deps: TemplateDeps) {
  const app = new Hono();
  // Domain admins read templates (to know what applies to their mailboxes); only superadmins edit.
  app.use('*', authorizeArea({ kind: 'templates' }));

  app.get('/', async (c) => c.json({ templates: (await listMailboxTemplates(deps.db)).map(view) }));

  app.get('/:id', async (c) => c.json(view(await findOrFail(deps, c.req.param('id')))));

  app.post('/', async (c) => {
    const id = await createTemplate(deps, await readJsonBody(c), changeOrigin(c));
    return c.json(view(await findOrFail(deps, String(id))), 201);
  });

  app.put('/:id', async (c) => {
    const id = await updateTemplate(deps, c.req.param('id'), await readJsonBody(c), changeOrigin(c));
    return c.json(view(await findOrFail(deps, String(id))));
  });

  app.delete('/:id', async (c) => {
    await deleteTemplate(deps, c.req.param('id'), changeOrigin(c));
    return c.json({ success: true });
  });

  return app;
}

/** POST's use-case (also the console's): a new template over mailcow's Default attributes; its id. */
export async function createTemplate(deps: TemplateDeps, input: unknown, origin: ChangeOrigin): Promise<number> {
  const body = parseWith(createBody, input);
  await refuseDuplicateName(deps, body.name);
  const attributes = { ...DEFAULT_MAILBOX_TEMPLATE_ATTRIBUTES, ...body.attributes };
  return deps.db.transaction(async (tx) => {
    const insertId = await insertMailboxTemplate(tx, body.name, attributes);
    await recordAudit(tx, {
      ...origin,
      action: 'template.create',
      target: `template:${insertId}`,
      detail: { name: body.name, attributes: Object.keys(body.attributes) },
      after: { name: body.name, ...attributes },
    });
    return insertId;
  });
}

/** PUT's use-case: rename (not Default, not while the IdP names it) and/or merge attributes. */
export async function updateTemplate(
  deps: TemplateDeps,
  rawId: string,
  input: unknown,
  origin: ChangeOrigin,
): Promise<number> {
  const template = await findOrFail(deps, rawId);
  const body = parseWith(updateBody, input);
  const renamed = body.name !== undefined && body.name !== template.name;
  if (renamed) {
    if (template.name === DEFAULT_TEMPLATE_NAME) {
      throw new AppError('conflict', `the template "${DEFAULT_TEMPLATE_NAME}" cannot be renamed`);
    }
    await refuseWhileUsed(deps, template, 'renamed');
    await refuseDuplicateName(deps, body.name as string);
  }
  const attributes = body.attributes === undefined ? undefined : { ...template.attributes, ...body.attributes };
  await deps.db.transaction(async (tx) => {
    await updateMailboxTemplate(tx, template.id, {
      ...(renamed ? { name: body.name } : {}),
      ...(attributes ? { attributes } : {}),
    });
    await recordAudit(tx, {
      ...origin,
      action: 'template.update',
      target: `template:${template.id}`,
      detail: {
        name: body.name ?? template.name,
        ...(renamed ? { renamed_from: template.name } : {}),
        attributes: Object.keys(body.attributes ?? {}),
      },
      // Only the fields this change really changed, with their values before and after.
      ...changedFields(
        { name: template.name, ...template.attributes },
        { name: renamed ? body.name : template.name, ...(attributes ?? template.attributes) },
      ),
    });
  });
  return template.id;
}

/** DELETE's use-case: never Default, never while the IdP settings name it. */
export async function deleteTemplate(deps: TemplateDeps, rawId: string, origin: ChangeOrigin): Promise<void> {
  const template = await findOrFail(deps, rawId);
  if (template.name === DEFAULT_TEMPLATE_NAME) {
    throw new AppError('conflict', `the template "${DEFAULT_TEMPLATE_NAME}" cannot be deleted`);
  }
  await refuseWhileUsed(deps, template, 'deleted');
  await deps.db.transaction(async (tx) => {
    await deleteMailboxTemplate(tx, template.id);
    await recordAudit(tx, {
      ...origin,
      action: 'template.delete',
      target: `template:${template.id}`,
      detail: { name: template.name },
      before: { name: template.name, ...template.attributes },
    });
  });
}

export async function findOrFail(deps: TemplateDeps, rawId: string): Promise<MailboxTemplate> {
  const id = parseWith(templateId, rawId, 'id');
  const template = await findMailboxTemplateById(deps.db, id);
  if (!template) throw new AppError('not_found', `no mailbox template with id ${id}`);
  return template;
}

// mailcow's names are not unique in the table and lookups take the first match, so a second
// template with the same name would be unreachable by name: refuse it.
async function refuseDuplicateName(deps: TemplateDeps, name: string) {
  const templates = await listMailboxTemplates(deps.db);
  if (templates.some((template) => template.name === name)) {
    throw new AppError('conflict', `a mailbox template named "${name}" already exists`);
  }
}

/** 409 naming where the IdP settings use this template (mappings by attribute value, default). */
async function refuseWhileUsed(deps: TemplateDeps, template: MailboxTemplate, verb: 'renamed' | 'deleted') {
  const rows = await readIdpRows(deps.db);
  const uses: string[] = [];
  const mappers = parseStringArray(rows.mappers);
  parseStringArray(rows.templates).forEach((name, index) => {
    if (name === template.name)
      uses.push(`mapping ${rows.attribute_field ?? 'mailcow_template'}="${mappers[index] ?? ''}"`);
  });
  if (rows.default_template === template.name) uses.push('default_template');
  if (uses.length > 0) {
    throw new AppError(
      'conflict',
      `the template "${template.name}" cannot be ${verb}: the identity provider uses it (${uses.join(', ')})`,
    );
  }
}

function parseStringArray(value: string | undefined): string[] {
  if (!value) return [];
  try {
    const parsed: unknown = JSON.parse(value);
    return Array.isArray(parsed) ? parsed.map(String) : [];
  } catch {
    return [];
  }
}
