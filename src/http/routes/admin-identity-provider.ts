// /api/v1/identity-provider: read, replace, delete and test the one configured IdP. The client
// secret is write-only: responses say whether one is set, never what it is. mailcow's rules
// apply: no provider type change and no delete while mailboxes still belong to another IdP.
import { Hono } from 'hono';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import {
  genericOidcSettingsSchema,
  type IdpSettings,
  idpSettingsSchema,
  keycloakSettingsSchema,
  loadIdpSettings,
  saveIdpSettings,
} from '../../sources/idp-settings.js';
import type { SecretBox } from '../../sources/secret-box.js';
import { testIdpConnection } from '../../sources/test-connection.js';
import { recordAudit } from '../../storage/audit.js';
import type { Db } from '../../storage/db.js';
import { countExternalMailboxes, deleteIdpRows, readIdpRows } from '../../storage/mailbox-admin.js';
import { listMailboxTemplates } from '../../storage/templates.js';
import {
  authorizeArea,
  type ChangeOrigin,
  changeOrigin,
  describeIssues,
  isPlainObject,
  parseWith,
  readJsonBody,
} from './admin-request.js';

type IdpDeps = Pick<Deps, 'db' | 'secretBox' | 'config' | 'log'>;

const PROVIDER_TYPES = ['keycloak', 'generic-oidc'] as const;
/** Rows that hold secrets in mailcow's table (the LDAP bind password and the cached token too). */
const SECRET_ROWS = new Set(['client_secret', 'bindpass', 'access_token']);
const SEALED_PREFIX = 'postern:v1:';
const testQuery = z.object({ sample_user: z.string().trim().min(1).max(320).optional() });

export function createIdentityProviderRoutes(deps: IdpDeps) {
  const app = new Hono();
  app.use('*', authorizeArea({ kind: 'identity_provider' }));

  app.get('/', async (c) => c.json(await describeProvider(deps)));

  app.put('/', async (c) => {
    await saveIdentityProvider(deps, await readJsonBody(c), changeOrigin(c));
    return c.json(await describeProvider(deps));
  });

  app.delete('/', async (c) => {
    const inUse = Object.entries(await countExternalMailboxes(deps.db));
    if (inUse.length > 0) {
      throw new AppError(
        'conflict',
        `authsource_in_use: ${describeCounts(inUse)} still use an identity provider; switch them to mailcow first`,
      );
    }
    const stored = await readIdpRows(deps.db);
    if (Object.keys(stored).length === 0) throw new AppError('not_found', 'no identity provider is configured');
    await deleteIdpRows(deps.db);
    await recordAudit(deps.db, {
      ...changeOrigin(c),
      action: 'identity_provider.delete',
      target: 'identity_provider',
      detail: { authsource: stored.authsource ?? null },
    });
    return c.json({ success: true });
  });

  // ?sample_user=<email or username>: also look that user up and say which template it maps to.
  app.post('/test', async (c) => {
    const { sample_user: sampleUser } = parseWith(testQuery, c.req.query(), 'query');
    return c.json(await testIdentityProvider(deps, await readJsonBody(c), sampleUser));
  });

  return app;
}

/**
 * PUT's use-case, shared with the console: validates the settings (a body without a secret keeps
 * the stored one), checks template references and mailboxes of another provider, saves, audits.
 * Throws AppError 400/409 with the reason.
 */
export async function saveIdentityProvider(deps: IdpDeps, body: unknown, origin: ChangeOrigin): Promise<void> {
  if (!deps.config.secretKey) {
    throw new AppError(
      'bad_request',
      'POSTERN_SECRET_KEY is not set: postern cannot store the client secret encrypted',
    );
  }
  const stored = await readIdpRows(deps.db);
  const settings = await settingsFromBody(body, stored, deps.secretBox);
  await checkTemplateReferences(deps.db, settings);
  const inUse = Object.entries(await countExternalMailboxes(deps.db)).filter(
    ([source]) => source !== settings.authsource,
  );
  if (inUse.length > 0) {
    throw new AppError(
      'conflict',
      `authsource_in_use: ${describeCounts(inUse)} still use another provider; switch them to mailcow or ${settings.authsource} first`,
    );
  }
  const detail = describeChanges(stored, settings, deps.secretBox);
  await saveIdpSettings(deps.db, settings, deps.secretBox);
  await recordAudit(deps.db, {
    ...origin,
    action: 'identity_provider.update',
    target: 'identity_provider',
    detail,
    ...changedSettings(stored, settings, detail.changed),
  });
}

/** The test connection on (unsaved) settings, as POST /test and the console run it. */
export async function testIdentityProvider(deps: IdpDeps, body: unknown, sampleUser?: string) {
  const stored = await readIdpRows(deps.db);
  const settings = await settingsFromBody(body, stored, deps.secretBox);
  const report = await testIdpConnection(settings, { timeoutMs: deps.config.idpTimeoutMs, sampleUser });
  deps.log.info(
    { authsource: settings.authsource, ok: report.ok, failedStep: report.steps.find((step) => !step.ok)?.step },
    'identity provider connection tested',
  );
  return report;
}

/** GET's answer: state, problems, and the settings with secrets reduced to "is one set". */
export async function describeProvider(deps: IdpDeps) {
  const stored = await readIdpRows(deps.db);
  // Parse through a box that never decrypts: reading the settings must not need the key.
  const loaded = await loadIdpSettings(deps.db, blindBox);
  const secret = describeStoredSecret(stored.client_secret, deps.secretBox);
  if (loaded.state === 'none') return { state: 'none' as const, problems: [], settings: null };
  if (loaded.state === 'invalid') {
    return {
      state: 'invalid' as const,
      authsource: loaded.authsource,
      problems: [...loaded.problems, ...secret.problems],
      settings: null,
      stored: Object.fromEntries(
        Object.entries(stored).map(([key, value]) => [key, SECRET_ROWS.has(key) ? { set: value !== '' } : value]),
      ),
    };
  }
  return {
    state: secret.problems.length > 0 ? ('invalid' as const) : ('ok' as const),
    authsource: loaded.settings.authsource,
    problems: secret.problems,
    settings: { ...loaded.settings, client_secret: { set: true, encrypted: secret.encrypted } },
  };
}

const SECRET_PRESENT = '\u0000secret-present';
const blindBox: SecretBox = {
  seal() {
    throw new Error('the blind box only reads');
  },
  open: (stored) => (stored === '' ? '' : SECRET_PRESENT),
};

function describeStoredSecret(value: string | undefined, box: SecretBox) {
  if (!value) return { encrypted: false, problems: [] as string[] };
  const encrypted = value.startsWith(SEALED_PREFIX);
  try {
    box.open(value);
    return { encrypted, problems: [] as string[] };
  } catch (error) {
    const reason = error instanceof AppError ? error.message : 'cannot be decrypted';
    return { encrypted, problems: [`client_secret: ${reason}`] };
  }
}

/**
 * A PUT or test body → typed settings. The secret is write-only, so a body without one (or
 * with GET's `{"set": true}`) means "keep the stored secret".
 */
async function settingsFromBody(body: unknown, stored: Record<string, string>, box: SecretBox): Promise<IdpSettings> {
  if (!isPlainObject(body))
    throw new AppError('bad_request', 'body: must be a JSON object of identity provider settings');
  const authsource = body.authsource;
  if (typeof authsource !== 'string' || !(PROVIDER_TYPES as readonly string[]).includes(authsource)) {
    throw new AppError('bad_request', `authsource: must be one of ${PROVIDER_TYPES.join(', ')}`);
  }
  const known = new Set(
    Object.keys(authsource === 'keycloak' ? keycloakSettingsSchema.shape : genericOidcSettingsSchema.shape),
  );
  const unknown = Object.keys(body).filter((key) => !known.has(key));
  if (unknown.length > 0) {
    throw new AppError('bad_request', `${unknown.join(', ')}: not a ${authsource} setting`);
  }
  const input: Record<string, unknown> = { ...body };
  const presented = body.client_secret;
  if (presented === undefined || (isPlainObject(presented) && presented.set === true)) {
    if (!stored.client_secret) throw new AppError('bad_request', 'client_secret: required (none is stored yet)');
    input.client_secret = box.open(stored.client_secret);
  }
  const parsed = idpSettingsSchema.safeParse(input);
  if (!parsed.success) throw new AppError('bad_request', describeIssues(parsed.error.issues));
  return parsed.data;
}

/** Mappings and default_template must name mailbox templates that exist. */
async function checkTemplateReferences(db: Db, settings: IdpSettings) {
  const problems: string[] = [];
  if (settings.mappers.length !== settings.templates.length) {
    problems.push(
      `templates: needs one entry per mappers entry (${settings.mappers.length} mappers, ${settings.templates.length} templates)`,
    );
  }
  settings.mappers.forEach((value, index) => {
    if (value.trim() === '') problems.push(`mappers[${index}]: must not be empty`);
  });
  const names = new Set((await listMailboxTemplates(db)).map((template) => template.name));
  settings.templates.forEach((name, index) => {
    if (!names.has(name)) problems.push(`templates[${index}]: no mailbox template named "${name}"`);
  });
  if (settings.default_template && !names.has(settings.default_template)) {
    problems.push(`default_template: no mailbox template named "${settings.default_template}"`);
  }
  if (problems.length > 0) throw new AppError('bad_request', problems.join('; '));
}

/** Audit detail: which keys changed, and whether the secret did; never a secret value. */
function describeChanges(stored: Record<string, string>, settings: IdpSettings, box: SecretBox) {
  const changed: string[] = [];
  for (const [key, value] of Object.entries(settings)) {
    if (key === 'client_secret' || value === undefined) continue;
    if (stored[key] !== encodeValue(value)) changed.push(key);
  }
  let secretChanged = true;
  try {
    secretChanged = !stored.client_secret || box.open(stored.client_secret) !== settings.client_secret;
  } catch {
    secretChanged = true;
  }
  return { authsource: settings.authsource, changed, client_secret: secretChanged ? 'replaced' : 'kept' };
}

/** The changed settings' row values before and after (never the client secret: only whether it changed). */
function changedSettings(stored: Record<string, string>, settings: IdpSettings, changed: readonly string[]) {
  const values = settings as unknown as Record<string, unknown>;
  return {
    before: Object.fromEntries(changed.map((key) => [key, stored[key] ?? null])),
    after: Object.fromEntries(changed.map((key) => [key, encodeValue(values[key])])),
  };
}

/** mailcow's row encoding, for comparison only (saveIdpSettings writes the rows). */
function encodeValue(value: unknown): string {
  if (typeof value === 'boolean') return value ? '1' : '';
  if (Array.isArray(value)) return JSON.stringify(value);
  return String(value);
}

function describeCounts(entries: [string, number][]): string {
  return entries.map(([source, count]) => `${count} mailbox${count === 1 ? '' : 'es'} (${source})`).join(', ');
}
