// What an admin (session or API key) was refused after it was let in: 403 (its role or a
// read-only key never reaches this) and a domain admin's 404 (an object outside its domains
// answers like a missing one: to the caller a probe of another domain looks like a typo, to the
// audit trail it does not; a superadmin's 404 is a missing object and is not written). Written off the request's path through the audit writer,
// throttled per actor, method and path so a script retrying one URL writes one row per window.
import type { Context } from 'hono';
import type { AuditWriter } from '../audit/audit-writer.js';
import { AppError } from '../errors.js';
import type { AuditActorRef } from '../storage/audit.js';
import { clientIp } from './client-ip.js';

const REFUSED = new Set(['forbidden', 'not_found']);

/** Call after `next()` in an admin guard: audits the error hono handled for `actor`, if it was a refusal. */
export function auditAdminRefusal(c: Context, actor: AuditActorRef, auditWriter: AuditWriter | undefined): void {
  const error = c.error;
  if (!auditWriter || !(error instanceof AppError) || !REFUSED.has(error.code)) return;
  // A superadmin reaches every object: its 404s are missing objects, not refusals.
  if (error.code === 'not_found' && actor.role === 'superadmin') return;
  const ip = clientIp(c);
  const method = c.req.method;
  const path = c.req.path.slice(0, 512);
  auditWriter.record(
    {
      actor,
      action: 'admin.refused',
      // No target or domain: the row must not show up in the audit view of the domain probed.
      detail: { method, path, status: error.status, reason: error.message },
      ...(ip ? { ip } : {}),
    },
    { throttleKey: `admin.refused:${actor.kind}:${actor.name}:${method}:${path}` },
  );
}
