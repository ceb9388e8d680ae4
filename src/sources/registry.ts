// The whole plugin system: one switch from mailbox.authsource to the source that answers for it.
import type { LoginMailbox } from '../storage/mailboxes.js';
import { createSqlSource } from './sql.js';
import type { PasswordSource } from './types.js';

export interface SourceRegistry {
  sourceFor(mailbox: LoginMailbox): PasswordSource;
}

/** IdP-backed mailboxes have no local password; their users sign in with app passwords. */
const appPasswordsOnly: PasswordSource = {
  kind: 'generic-oidc',
  async lookupPasswordHash() {
    return { ok: false, reason: 'no_local_password' };
  },
};

export function createSourceRegistry(extra: { keycloak?: PasswordSource } = {}): SourceRegistry {
  const sql = createSqlSource();
  return {
    sourceFor(mailbox) {
      switch (mailbox.authSource) {
        case 'mailcow':
          return sql;
        case 'keycloak':
          return extra.keycloak ?? appPasswordsOnly;
        // generic-oidc has no password API; ldap is not supported yet; NULL never logs in (as in mailcow).
        case 'generic-oidc':
        case 'ldap':
        case null:
          return appPasswordsOnly;
      }
    },
  };
}
