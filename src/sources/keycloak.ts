// Keycloak's "mailpassword flow" (mailcow-compat.md §7): with `mailpassword_flow` on, the mailbox
// password of a keycloak mailbox is checked against the user's `mailcow_password` attribute (a
// {SCHEME} hash) read through the Admin API. Unlike mailcow, a user disabled in Keycloak is
// refused. Lookups are cached briefly in process; an unreachable Keycloak is a fault (thrown).
import { foldAddress } from '../address.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Db } from '../storage/db.js';
import type { LoginMailbox } from '../storage/mailboxes.js';
import { idpFetch } from './idp-fetch.js';
import { type KeycloakSettings, loadIdpSettings } from './idp-settings.js';
import { createKeycloakAdminClient, type KeycloakAdminClient, type KeycloakAdminOptions } from './keycloak-admin.js';
import type { SecretBox } from './secret-box.js';
import type { PasswordHashLookup, PasswordSource } from './types.js';

/** mailcow's attribute name; the docs ask for a hash such as {BLF-CRYPT}$2y$... */
export const MAILCOW_PASSWORD_ATTRIBUTE = 'mailcow_password';

export interface KeycloakPasswordSourceDeps {
  db: Pick<Db, 'many'>;
  secretBox: SecretBox;
  config: Pick<Config, 'idpTimeoutMs'>;
  log: Logger;
}

export interface KeycloakPasswordSourceOptions {
  /** How long settings read from identity_provider are reused. */
  settingsTtlMs?: number;
  /** How long a user's lookup (hash, disabled, unknown) is reused; faults are never cached. */
  userTtlMs?: number;
  /** Bound on cached users (oldest evicted first). */
  maxCachedUsers?: number;
  now?: () => number;
  /** Tests: fetch/retry overrides for the admin client. */
  clientOptions?: Partial<Pick<KeycloakAdminOptions, 'fetch' | 'retry' | 'sleep'>>;
}

interface CachedLookup {
  result: PasswordHashLookup;
  expiresAt: number;
}

const NO_LOCAL_PASSWORD: PasswordHashLookup = { ok: false, reason: 'no_local_password' };

/**
 * The keycloak PasswordSource for createSourceRegistry({ keycloak }). Without mailpassword_flow
 * (or without a valid Keycloak provider) keycloak mailboxes have no mailbox password and sign
 * in with app passwords only, as before.
 */
export function createKeycloakPasswordSource(
  deps: KeycloakPasswordSourceDeps,
  options: KeycloakPasswordSourceOptions = {},
): PasswordSource {
  const now = options.now ?? Date.now;
  const settingsTtlMs = options.settingsTtlMs ?? 10_000;
  const userTtlMs = options.userTtlMs ?? 30_000;
  const maxCachedUsers = options.maxCachedUsers ?? 10_000;

  let settingsCache: { settings: KeycloakSettings | undefined; expiresAt: number } | undefined;
  let settingsInFlight: Promise<KeycloakSettings | undefined> | undefined;
  let client: { signature: string; client: KeycloakAdminClient } | undefined;
  const users = new Map<string, CachedLookup>();
  const inFlight = new Map<string, Promise<PasswordHashLookup>>();

  async function currentSettings(): Promise<KeycloakSettings | undefined> {
    if (settingsCache && now() < settingsCache.expiresAt) return settingsCache.settings;
    settingsInFlight ??= loadIdpSettings(deps.db, deps.secretBox)
      .then((loaded) => {
        let settings: KeycloakSettings | undefined;
        if (loaded.state === 'ok' && loaded.settings.authsource === 'keycloak') settings = loaded.settings;
        else if (loaded.state === 'invalid') {
          deps.log.warn({ problems: loaded.problems }, 'identity provider settings invalid: mailpassword flow off');
        }
        settingsCache = { settings, expiresAt: now() + settingsTtlMs };
        return settings;
      })
      .finally(() => {
        settingsInFlight = undefined;
      });
    return settingsInFlight;
  }

  function clientFor(settings: KeycloakSettings): KeycloakAdminClient {
    // A new client (and token) whenever the connection settings change; the secret is part of
    // the signature only in memory.
    const signature = JSON.stringify([
      settings.server_url,
      settings.realm,
      settings.client_id,
      settings.client_secret,
      settings.ignore_ssl_error,
      settings.postern_token_auth_method,
    ]);
    if (client?.signature !== signature) {
      users.clear();
      client = {
        signature,
        client: createKeycloakAdminClient({
          serverUrl: settings.server_url,
          realm: settings.realm,
          clientId: settings.client_id,
          clientSecret: settings.client_secret,
          clientAuthMethod: settings.postern_token_auth_method,
          timeoutMs: deps.config.idpTimeoutMs,
          // Dovecot waits for this answer: retry once, quickly, then report a temporary failure.
          retry: { attempts: 2, baseDelayMs: 100, maxDelayMs: 500 },
          fetch: idpFetch(settings),
          ...options.clientOptions,
        }),
      };
    }
    return client.client;
  }

  async function lookUp(settings: KeycloakSettings, email: string): Promise<PasswordHashLookup> {
    const user = await clientFor(settings).findUserByEmail(email);
    if (!user) return { ok: false, reason: 'unknown_upstream' };
    if (!user.enabled) return { ok: false, reason: 'disabled_upstream' };
    const hash = user.attributes?.[MAILCOW_PASSWORD_ATTRIBUTE]?.[0];
    // No attribute (or Keycloak ≥ 24 hiding an undeclared attribute): no mailbox password.
    if (!hash) return NO_LOCAL_PASSWORD;
    return { ok: true, hash };
  }

  return {
    kind: 'keycloak',
    async lookupPasswordHash(mailbox: LoginMailbox): Promise<PasswordHashLookup> {
      const settings = await currentSettings();
      if (!settings?.mailpassword_flow) return NO_LOCAL_PASSWORD;
      const email = foldAddress(mailbox.username);
      const cached = users.get(email);
      if (cached && now() < cached.expiresAt) return cached.result;
      let pending = inFlight.get(email);
      if (!pending) {
        // Concurrent logins of one user (Dovecot retries, two passdb calls) share one request.
        pending = lookUp(settings, email)
          .then((result) => {
            if (users.size >= maxCachedUsers) users.delete(users.keys().next().value as string);
            users.delete(email);
            users.set(email, { result, expiresAt: now() + userTtlMs });
            return result;
          })
          .finally(() => inFlight.delete(email));
        inFlight.set(email, pending);
      }
      return pending;
    },
  };
}
