// What an auth source must answer for a mail login: which stored hash the mailbox password is
// checked against. Denials are values; an unreachable backend throws an AppError.
import type { LoginMailbox, MailboxAuthSource } from '../storage/mailboxes.js';

export type { MailboxAuthSource };

export type PasswordHashLookup =
  | { ok: true; hash: string }
  | {
      ok: false;
      /** no_local_password: the source never accepts the mailbox password (IdP users use app passwords). */
      reason: 'no_local_password' | 'disabled_upstream' | 'unknown_upstream';
    };

export interface PasswordSource {
  readonly kind: MailboxAuthSource;
  /** The hash the mailbox password must match. Throws AppError('backend_unavailable') on faults. */
  lookupPasswordHash(mailbox: LoginMailbox): Promise<PasswordHashLookup>;
}
