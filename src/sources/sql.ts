// Local mailboxes: the password hash lives in mailbox.password, as mailcow writes it.
import type { PasswordSource } from './types.js';

export function createSqlSource(): PasswordSource {
  return {
    kind: 'mailcow',
    async lookupPasswordHash(mailbox) {
      // mailcow stores '' for IdP-created mailboxes; an empty hash must never verify.
      return mailbox.passwordHash
        ? { ok: true, hash: mailbox.passwordHash }
        : { ok: false, reason: 'no_local_password' };
    },
  };
}
