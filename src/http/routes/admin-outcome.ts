// A use-case's denial as the HTTP error the API and the console answer with.
import type { Denial } from '../../admin/domains.js';
import { AppError } from '../../errors.js';

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
