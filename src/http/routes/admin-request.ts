// Shared by the admin API's route files: JSON bodies and path parameters validated with zod into
// 400s that name the field, and who/where a change came from for the audit log.

import type { Context } from 'hono';
import type { z } from 'zod';
import { AppError } from '../../errors.js';
import type { AuditActor } from '../../storage/audit.js';
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
  actor: AuditActor;
  ip: string | undefined;
}

/** Set by requireAdmin: which kind of key admitted the caller, never the key. */
export function changeOrigin(c: Context): ChangeOrigin {
  const admin = c.get('admin');
  return { actor: `api:${admin.via}`, ip: clientIp(c) };
}
