// Between the admin use-cases and HTTP: who asks (changeBy), and a denial as the HTTP error the
// API and the console answer with.
import type { Context } from 'hono';
import type { ChangeBy, Denial } from '../../admin/domains.js';
import { AppError } from '../../errors.js';
import { auditActorOf } from '../admin-auth.js';
import { clientIp } from '../client-ip.js';

/** Who is asking (set by requireAdmin or the console guard), for a use-case and its audit row. */
export function changeBy(c: Context): ChangeBy {
  const principal = c.get('admin');
  return { actor: principal.actor, auditActor: auditActorOf(principal), ip: clientIp(c) };
}

const CODES = {
  not_found: 'not_found',
  forbidden: 'forbidden',
  read_only: 'forbidden',
  invalid: 'bad_request',
  conflict: 'conflict',
} as const;

export function denialError(outcome: { denial: Denial; message: string }): AppError {
  return new AppError(CODES[outcome.denial], outcome.message);
}

/** The value of a successful outcome; a denial is thrown as its AppError. */
export function unwrap<T>(outcome: { ok: true; value: T } | { ok: false; denial: Denial; message: string }): T {
  if (!outcome.ok) throw denialError(outcome);
  return outcome.value;
}
