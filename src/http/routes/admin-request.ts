// Shared by the admin API's route files: JSON bodies and path parameters validated with zod into
// 400s that name the field, and who/where a change came from for the audit log.
import type { Context, MiddlewareHandler } from 'hono';
import type { z } from 'zod';
import { type Action, type AdminObject, can } from '../../admin/roles.js';
import { AppError } from '../../errors.js';
import type { AuditActorRef } from '../../storage/audit.js';
import { auditActorOf } from '../admin-auth.js';
import { clientIp } from '../client-ip.js';

/** `attributes.quota: must be ...; name: required` (never the offending value: it may be a secret). */
export function describeIssues(issues: readonly z.core.$ZodIssue[], root = 'body'): string {
  return issues
    .map((issue) => {
      const path = issue.path.map((part, index) =>
        typeof part === 'number' ? `[${part}]` : `${index ? '.' : ''}${String(part)}`,
      );
      return `${path.join('') || root}: ${issue.message}`;
    })
    .join('; ');
}

/** The request body as JSON; 400 when it is not `application/json` or does not parse. */
export async function readJsonBody(c: Context): Promise<unknown> {
  const contentType = c.req.header('content-type') ?? '';
  if (!contentType.toLowerCase().startsWith('application/json')) {
    throw new AppError('bad_request', 'Content-Type must be application/json');
  }
  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError('bad_request', 'body is not valid JSON');
  }
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown, root = 'body'): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new AppError('bad_request', describeIssues(parsed.error.issues, root));
  return parsed.data;
}

export async function readBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  return parseWith(schema, await readJsonBody(c));
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface ChangeOrigin {
  actor: AuditActorRef;
  ip: string | undefined;
}

/** Set by requireAdmin: the admin or key (its audit name, never the key) and its role. */
export function changeOrigin(c: Context): ChangeOrigin {
  return { actor: auditActorOf(c.get('admin')), ip: clientIp(c) };
}

/**
 * The role check on the object itself: throws 404 for an object outside the caller's domains
 * (worded like a missing one, so existence does not leak), 403 for what the role never reaches.
 */
export function authorize(c: Context, action: Action, object: AdminObject, notFoundMessage = 'not found'): void {
  const permission = can(c.get('admin').actor, action, object);
  if (permission.allowed) return;
  if (permission.denial === 'not_found') throw new AppError('not_found', notFoundMessage);
  if (permission.denial === 'read_only') throw new AppError('forbidden', 'this API key is read-only');
  throw new AppError('forbidden', 'your role does not allow this');
}

/** GET/HEAD read, every other method writes. */
export function actionOf(c: Context): Action {
  return c.req.method === 'GET' || c.req.method === 'HEAD' ? 'read' : 'write';
}

/** For areas that are one object as a whole (IdP settings, templates, sync): check every request. */
export function authorizeArea(object: AdminObject): MiddlewareHandler {
  return async (c, next) => {
    authorize(c, actionOf(c), object);
    await next();
  };
}
