// GET /api/v1/audit: the audit trail, newest first, filtered by actor, target, action (exact or
// a `prefix.`), IP, time range and outcome, keyset-paged (`before` = the last id seen). Domain
// admins see only entries about their domains (the row's domain: an address target's domain, or
// the domain object itself); nothing here can change a row.
import { Hono } from 'hono';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { queryAudit } from '../../storage/audit.js';
import { authorizeArea, parseWith } from './admin-request.js';

const text = z.string().trim().min(1).max(255);
const query = z.strictObject({
  actor: text.optional(),
  target: text.optional(),
  action: z
    .string()
    .regex(/^[a-z0-9_.]{1,64}$/, 'must be an action such as admin.login, or a prefix ending in "." such as tfa.')
    .optional(),
  ip: z.string().trim().min(1).max(64).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  outcome: z.enum(['success', 'failure']).optional(),
  before: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

export function createAuditRoutes(deps: Pick<Deps, 'db'>) {
  const app = new Hono();
  app.use('*', authorizeArea({ kind: 'audit' }));
  app.get('/', async (c) => {
    const q = parseWith(query, c.req.query(), 'query');
    const actor = c.get('admin').actor;
    const rows = await queryAudit(deps.db, {
      ...(q.actor ? { actor: q.actor } : {}),
      ...(q.target ? { target: q.target } : {}),
      ...(q.action ? { action: q.action } : {}),
      ...(q.ip ? { ip: q.ip } : {}),
      ...(q.since ? { since: new Date(q.since) } : {}),
      ...(q.until ? { until: new Date(q.until) } : {}),
      ...(q.outcome ? { outcome: q.outcome } : {}),
      ...(q.before ? { beforeId: q.before } : {}),
      ...(actor.role === 'superadmin' ? {} : { domains: actor.domains }),
      limit: q.limit,
    });
    const last = rows.length === q.limit ? rows[rows.length - 1] : undefined;
    return c.json({
      entries: rows.map((row) => ({
        id: row.id,
        at: row.at instanceof Date ? row.at.toISOString() : row.at,
        actor: row.actor,
        actor_kind: row.actorKind,
        actor_role: row.actorRole,
        action: row.action,
        outcome: row.outcome,
        target: row.target,
        domain: row.domain,
        ip: row.ip,
        detail: row.detail,
        before: row.before,
        after: row.after,
      })),
      next: last
        ? `/api/v1/audit?${new URLSearchParams({ ...c.req.query(), before: String(last.id) }).toString()}`
        : null,
    });
  });
  return app;
}
