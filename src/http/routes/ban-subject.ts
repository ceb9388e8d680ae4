// The path parameters of a ban lift, shared by the admin API and the internal listener.
import { z } from 'zod';
import { AppError } from '../../errors.js';
import type { Scope } from '../../rate-limit/store.js';

const scopeSchema = z.enum(['ip', 'user']);

/** Parses `:scope/:subject`; 400 for a scope other than ip/user or an empty or absurd subject. */
export function parseBanTarget(
  scope: string | undefined,
  subject: string | undefined,
): { scope: Scope; subject: string } {
  const parsedScope = scopeSchema.safeParse(scope);
  if (!parsedScope.success) throw new AppError('bad_request', 'scope must be ip or user');
  if (!subject || subject.length > 320) throw new AppError('bad_request', 'subject must be an IP, a /64 or a username');
  return { scope: parsedScope.data, subject };
}
