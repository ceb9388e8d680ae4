// The configured identity provider, stored in mailcow's `identity_provider` key/value table with
// mailcow's key names and encodings ("1"/"" booleans, JSON arrays), so mailcow and postern read
// the same settings. postern-only keys carry a `postern_` prefix. Secrets are sealed at rest.
import { z } from 'zod';
import type { Db } from '../storage/db.js';
import { readIdpRows, writeIdpRows } from '../storage/identity-provider.js';
import type { TemplateMappings } from '../templates/pick-template.js';
import type { SecretBox } from './secret-box.js';

const httpUrl = z
  .string()
  .trim()
  .refine((value) => {
    try {
      return ['http:', 'https:'].includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }, 'must be an http(s) URL');

const common = {
  client_id: z.string().trim().min(1, 'required'),
  client_secret: z.string().min(1, 'required'),
  redirect_url: httpUrl,
  /** Identity attribute/claim that selects the template (mailcow reads mailcow_template). */
  attribute_field: z.string().trim().min(1).max(128).default('mailcow_template'),
  mappers: z.array(z.string()).default([]),
  templates: z.array(z.string()).default([]),
  default_template: z.string().default(''),
  login_provisioning: z.boolean().default(true),
  ignore_ssl_error: z.boolean().default(false),
  /**
   * postern only, off by default: the provider verifies every email it hands out, so an SSO
   * identity without an `email_verified` claim is accepted. Off, a missing claim is refused.
   */
  postern_emails_always_verified: z.boolean().default(false),
  /**
   * How the client secret reaches the token endpoint (sign-in, test connection, Keycloak's
   * service account): in the form body (mailcow's way, the default) or as HTTP Basic.
   */
  postern_token_auth_method: z.enum(['client_secret_post', 'client_secret_basic']).default('client_secret_post'),
};

const sync = {
  periodic_sync: z.boolean().default(false),
  import_users: z.boolean().default(false),
  sync_interval: z.coerce.number().int().min(1).max(10_080).default(15),
  /** Deactivate IdP mailboxes whose user is disabled or gone (postern only; off by default). */
  postern_deprovision: z.boolean().default(false),
  /** A run that would remove more than this share of IdP users applies nothing. */
  postern_max_drop_percent: z.coerce.number().min(0).max(100).default(20),
};

export const keycloakSettingsSchema = z.object({
  authsource: z.literal('keycloak'),
  server_url: httpUrl.transform((value) => value.replace(/\/+$/, '')),
  realm: z
    .string()
    .trim()
    .min(1, 'required')
    .regex(/^[^/?#]+$/, 'must not contain / ? #'),
  /** Keycloak version; below 20 the `openid` scope must be requested explicitly. */
  version: z
    .string()
    .trim()
    .regex(/^\d+(\.\d+){0,2}$/, 'expected a version such as 26.0.0'),
  mailpassword_flow: z.boolean().default(false),
  ...common,
  ...sync,
});

export const genericOidcSettingsSchema = z
  .object({
    authsource: z.literal('generic-oidc'),
    /** postern addition: an issuer for discovery; the three URLs below then become optional. */
    postern_issuer_url: httpUrl.optional(),
    authorize_url: httpUrl.optional(),
    token_url: httpUrl.optional(),
    userinfo_url: httpUrl.optional(),
    client_scopes: z.string().trim().default('openid profile email mailcow_template'),
    ...common,
  })
  .superRefine((settings, ctx) => {
    if (settings.postern_issuer_url) return;
    for (const key of ['authorize_url', 'token_url', 'userinfo_url'] as const) {
      if (!settings[key]) ctx.addIssue({ code: 'custom', path: [key], message: 'required without postern_issuer_url' });
    }
  });

export const idpSettingsSchema = z.discriminatedUnion('authsource', [
  keycloakSettingsSchema,
  genericOidcSettingsSchema,
]);

export type KeycloakSettings = z.output<typeof keycloakSettingsSchema>;
export type GenericOidcSettings = z.output<typeof genericOidcSettingsSchema>;
export type IdpSettings = z.output<typeof idpSettingsSchema>;

const BOOLEAN_KEYS = new Set([
  'login_provisioning',
  'ignore_ssl_error',
  'periodic_sync',
  'import_users',
  'mailpassword_flow',
  'postern_deprovision',
  'postern_emails_always_verified',
]);
const JSON_KEYS = new Set(['mappers', 'templates', 'redirect_url_extra']);
const SECRET_KEYS = new Set(['client_secret']);

/** mailcow's row values → typed input for the schema. */
function decodeRows(rows: Record<string, string>, box: SecretBox): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(rows)) {
    if (BOOLEAN_KEYS.has(key)) input[key] = value === '1' || value === 'true';
    else if (JSON_KEYS.has(key)) input[key] = safeJsonArray(value);
    else if (SECRET_KEYS.has(key)) input[key] = value === '' ? '' : box.open(value);
    else input[key] = value;
  }
  // mailcow writes no row for login_provisioning until edited; a missing row means true.
  if (!Object.hasOwn(rows, 'login_provisioning')) delete input.login_provisioning;
  return input;
}

function safeJsonArray(value: string): string[] {
  try {
    const parsed: unknown = JSON.parse(value);
    return Array.isArray(parsed) ? parsed.map(String) : [];
  } catch {
    return [];
  }
}

/** Typed settings → mailcow's row values. */
export function encodeSettings(settings: IdpSettings, box: SecretBox): Record<string, string> {
  const rows: Record<string, string> = {};
  for (const [key, value] of Object.entries(settings)) {
    if (value === undefined) continue;
    if (BOOLEAN_KEYS.has(key)) rows[key] = value ? '1' : '';
    else if (JSON_KEYS.has(key)) rows[key] = JSON.stringify(value);
    else if (SECRET_KEYS.has(key)) rows[key] = box.seal(String(value));
    else rows[key] = String(value);
  }
  return rows;
}

export type LoadedIdpSettings =
  | { state: 'none' }
  | { state: 'invalid'; authsource: string; problems: string[] }
  | { state: 'ok'; settings: IdpSettings };

/** Read the provider; `invalid` (with reasons) when rows exist but are incomplete or wrong. */
export async function loadIdpSettings(db: Pick<Db, 'many'>, box: SecretBox): Promise<LoadedIdpSettings> {
  const raw = await readIdpRows(db);
  if (Object.keys(raw).length === 0) return { state: 'none' };
  const authsource = raw.authsource ?? '';
  if (authsource !== 'keycloak' && authsource !== 'generic-oidc') {
    return { state: 'invalid', authsource, problems: [`authsource: unsupported provider type "${authsource}"`] };
  }
  const parsed = idpSettingsSchema.safeParse(decodeRows(raw, box));
  if (!parsed.success) {
    return {
      state: 'invalid',
      authsource,
      problems: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
    };
  }
  return { state: 'ok', settings: parsed.data };
}

/** Replace the provider's keys (keys of the other provider type are left, as mailcow does). */
export async function saveIdpSettings(db: Pick<Db, 'transaction'>, settings: IdpSettings, box: SecretBox) {
  await writeIdpRows(db, encodeSettings(settings, box));
}

export function templateMappingsOf(settings: IdpSettings): TemplateMappings {
  return {
    mappers: settings.mappers,
    templates: settings.templates,
    ...(settings.default_template ? { defaultTemplate: settings.default_template } : {}),
  };
}
