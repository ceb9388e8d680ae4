// /api/v1/api-keys: API keys with a role, superadmins only. POST answers the key once (only its
// digest is kept); GET lists keys without it; DELETE revokes (the row stays, as history). Each
// create and revoke is audited, never with the key.
import { Hono } from 'hono';
import { z } from 'zod';
import { type ApiKeyOutcome, apiKeyAuditName, createApiKey, listKeys, revokeApiKey } from '../../admin/api-keys.js';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import type { ApiKeyRecord } from '../../storage/api-keys.js';
import { findApiKey } from '../../storage/api-keys.js';
import { recordAudit } from '../../storage/audit.js';
import { authorizeArea, changeOrigin, parseWith, readBody } from './admin-request.js';

/** An API key's name, the same rule for the JSON API and the console's form. */
export const apiKeyName = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .regex(/^[\p{L}\p{N} _.@:-]+$/u, 'letters, digits, spaces and _ . @ : - only');

const createBody = z
  .strictObject({
    name: apiKeyName,
    role: z.enum(['superadmin', 'domainadmin']),
    domains: z.array(z.string().trim().toLowerCase().min(1).max(255)).max(1000).optional(),
    access: z.enum(['ro', 'rw']).default('ro'),
    allow_from: z.array(z.string().trim().min(1).max(64)).min(1).max(64),
    expires_at: z.iso.datetime({ offset: true }).optional(),
  })
  .refine((body) => body.role === 'superadmin' || (body.domains?.length ?? 0) > 0, {
    message: 'a domainadmin key needs domains',
    path: ['domains'],
  })
  .refine((body) => body.role === 'domainadmin' || body.domains === undefined, {
    message: 'only a domainadmin key has domains',
    path: ['domains'],
  });

const keyId = z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER);

const iso = (value: Date | null) => (value instanceof Date ? value.toISOString() : null);

function stateOf(record: ApiKeyRecord, now = Date.now()): 'active' | 'expired' | 'revoked' {
  if (record.revokedAt) return 'revoked';
  if (record.expiresAt && record.expiresAt.getTime() <= now) return 'expired';
  return 'active';
}

export function view(record: ApiKeyRecord) {
  return {
    id: record.id,
    name: record.name,
    /** The key's first characters, to recognise it (`postern_AbCd…`); never the key. */
    hint: `postern_${record.hint}…`,
    role: record.role,
    domains: record.domains,
    access: record.access,
    allow_from: record.allowFrom.split(',').filter(Boolean),
    expires_at: iso(record.expiresAt),
    state: stateOf(record),
    created: iso(record.created),
    created_by: record.createdBy,
    last_used_at: iso(record.lastUsedAt),
    last_used_ip: record.lastUsedIp,
    revoked_at: iso(record.revokedAt),
    revoked_by: record.revokedBy,
  };
}

/** The fields an audit entry records (never the key or its digest). */
export function auditFields(record: ApiKeyRecord) {
  return {
    name: record.name,
    role: record.role,
    domains: record.domains,
    access: record.access,
    allow_from: record.allowFrom.split(',').filter(Boolean),
    expires_at: iso(record.expiresAt),
  };
}

function valueOrThrow<T>(outcome: ApiKeyOutcome<T>): T {
  if (outcome.ok) return outcome.value;
  throw new AppError(outcome.denial === 'not_found' ? 'not_found' : 'bad_request', outcome.message);
}

export function createApiKeyRoutes(deps: Pick<Deps, 'db'>) {
  const app = new Hono();
  app.use('*', authorizeArea({ kind: 'api_keys' }));

  app.get('/', async (c) => c.json({ api_keys: (await listKeys(deps.db)).map(view) }));

  app.post('/', async (c) => {
    const body = await readBody(c, createBody);
    const origin = changeOrigin(c);
    const { record, key } = valueOrThrow(
      await createApiKey(
        deps.db,
        {
          name: body.name,
          role: body.role,
          ...(body.domains ? { domains: body.domains } : {}),
          access: body.access,
          allowFrom: body.allow_from,
          ...(body.expires_at ? { expiresAt: new Date(body.expires_at) } : {}),
        },
        origin.actor.name,
      ),
    );
    await recordAudit(deps.db, {
      ...origin,
      action: 'api_key.create',
      target: apiKeyAuditName(record.id),
      after: auditFields(record),
    });
    c.header('cache-control', 'no-store');
    return c.json({ ...view(record), key }, 201);
  });

  app.get('/:id', async (c) => {
    const record = await findApiKey(deps.db, parseWith(keyId, c.req.param('id'), 'id'));
    if (!record) throw new AppError('not_found', 'no such API key');
    return c.json(view(record));
  });

  app.delete('/:id', async (c) => {
    const id = parseWith(keyId, c.req.param('id'), 'id');
    const origin = changeOrigin(c);
    const record = valueOrThrow(await revokeApiKey(deps.db, id, origin.actor.name));
    await recordAudit(deps.db, {
      ...origin,
      action: 'api_key.revoke',
      target: apiKeyAuditName(record.id),
      detail: auditFields(record),
      before: { revoked: false },
      after: { revoked: true },
    });
    return c.json({ success: true });
  });

  return app;
}
