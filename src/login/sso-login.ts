// Browser single sign-on: the OIDC authorization-code flow (PKCE + state + nonce, the state
// bound to the browser that started it) from the redirect to the IdP to a provisioned mailbox.
// Plain functions over deps: never imports hono. Refusals are returned values with a status and
// a public message; faults (MySQL, Redis) are thrown. An unreachable IdP is a refusal with
// status 502, so the browser gets a clear page instead of an error envelope.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import * as oidc from 'openid-client';
import { foldAddress } from '../address.js';
import { keys } from '../cache/keys.js';
import type { Redis } from '../cache/redis.js';
import type { Config } from '../config/schema.js';
import { sha256Hex } from '../digest.js';
import { parseJsonRecord } from '../json-record.js';
import type { Logger } from '../log.js';
import { type IdpSettings, loadIdpSettings } from '../sources/idp-settings.js';
import { createOidcClients, type OidcClientSetup, settingsHashOf } from '../sources/oidc-client.js';
import type { SecretBox } from '../sources/secret-box.js';
import type { Db } from '../storage/db.js';
import { classifyIdpError, describeIdpError, idpUnreachable } from './idp-errors.js';
import { provisionSsoMailbox, type SsoIdentity, type SsoLoginOutcome } from './provision-sso-mailbox.js';
import { auditSsoRefusal, refuse, type WebRefusal } from './web-refusal.js';

export interface SsoLoginDeps {
  config: Pick<Config, 'redisPrefix' | 'publicUrl' | 'idpTimeoutMs'>;
  db: Db;
  redis: Redis;
  log: Logger;
  secretBox: SecretBox;
}

/** How long a started SSO login may take at the IdP before its state expires. */
export const SSO_TRANSACTION_TTL_SECONDS = 600;

/** The Redis key of a pending SSO login; exported so tests can tamper with a stored transaction. */
export function ssoTransactionKey(redisPrefix: string, state: string): string {
  return keys.ssoTransaction({ prefix: redisPrefix }, sha256Hex(state));
}

/** What a pending SSO login keeps server-side between the redirect and the callback. */
interface SsoTransaction {
  /** sha256 of the pre-login cookie: the callback must come from the browser that started. */
  binding: string;
  codeVerifier: string;
  nonce: string;
  settingsHash: string;
  createdAt: number;
}

const isSsoTransaction = (v: Partial<SsoTransaction>) =>
  typeof v.binding === 'string' && typeof v.codeVerifier === 'string' && typeof v.nonce === 'string';

export type BeginSsoOutcome = { ok: true; authorizationUrl: string; binding: string } | WebRefusal;

export interface SsoLogin {
  /** Start an SSO login: store a transaction and return where to send the browser. */
  beginSso(): Promise<BeginSsoOutcome>;
  /**
   * Finish an SSO login from the IdP's redirect. `binding` is the pre-login cookie's value.
   * Each state works once, whatever the outcome.
   */
  completeSso(input: { callbackUrl: URL; binding: string | undefined; ip?: string }): Promise<SsoLoginOutcome>;
}

export function createSsoLogin(deps: SsoLoginDeps): SsoLogin {
  const clients = createOidcClients(deps);
  const ks = { prefix: deps.config.redisPrefix };

  async function loadSettings(): Promise<{ ok: true; settings: IdpSettings } | WebRefusal> {
    const loaded = await loadIdpSettings(deps.db, deps.secretBox);
    if (loaded.state === 'none') {
      return refuse(
        404,
        'sso_not_configured',
        'Single sign-on is not set up',
        'No identity provider is configured. Sign in with your mailbox password, or ask an admin.',
      );
    }
    if (loaded.state === 'invalid') {
      deps.log.error(
        { problems: loaded.problems, authsource: loaded.authsource },
        'identity provider settings are invalid',
      );
      return refuse(
        502,
        'sso_misconfigured',
        'Single sign-on is misconfigured',
        'The identity provider settings are incomplete. Please tell an admin.',
      );
    }
    return { ok: true, settings: loaded.settings };
  }

  async function clientFor(settings: IdpSettings): Promise<{ ok: true; client: OidcClientSetup } | WebRefusal> {
    try {
      return { ok: true, client: await clients.get(settings) };
    } catch (error) {
      deps.log.warn({ err: describeIdpError(error) }, 'identity provider discovery failed');
      return idpUnreachable();
    }
  }

  return {
    async beginSso() {
      const loaded = await loadSettings();
      if (!loaded.ok) return loaded;
      const client = await clientFor(loaded.settings);
      if (!client.ok) return client;
      const { configuration, scope, redirectUri } = client.client;

      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const codeVerifier = oidc.randomPKCECodeVerifier();
      const binding = randomBytes(32).toString('base64url');
      const transaction: SsoTransaction = {
        binding: sha256Hex(binding),
        codeVerifier,
        nonce,
        settingsHash: settingsHashOf(loaded.settings),
        createdAt: Date.now(),
      };
      await deps.redis.set(
        ssoTransactionKey(ks.prefix, state),
        JSON.stringify(transaction),
        'EX',
        SSO_TRANSACTION_TTL_SECONDS,
      );
      const authorizationUrl = oidc.buildAuthorizationUrl(configuration, {
        redirect_uri: redirectUri,
        scope,
        state,
        nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      });
      return { ok: true, authorizationUrl: authorizationUrl.href, binding };
    },

    async completeSso({ callbackUrl, binding, ip }) {
      const state = callbackUrl.searchParams.get('state') ?? '';
      // GETDEL: a state is consumed by its first use, so a replayed callback finds nothing.
      const stored = state ? await deps.redis.getdel(ssoTransactionKey(ks.prefix, state)) : null;
      const transaction = parseJsonRecord<SsoTransaction>(stored, isSsoTransaction);
      if (!transaction) {
        return auditSsoRefusal(
          deps.db,
          ip,
          undefined,
          refuse(
            403,
            'invalid_state',
            'Sign-in link expired or already used',
            'This sign-in response is unknown, expired or was already used. Please start again.',
          ),
        );
      }
      if (!binding || !equalDigests(transaction.binding, sha256Hex(binding))) {
        return auditSsoRefusal(
          deps.db,
          ip,
          undefined,
          refuse(
            403,
            'foreign_state',
            'Sign-in started elsewhere',
            'This sign-in response does not belong to this browser. Please start again.',
          ),
        );
      }
      const loaded = await loadSettings();
      if (!loaded.ok) return loaded;
      const settings = loaded.settings;
      if (settingsHashOf(settings) !== transaction.settingsHash) {
        return refuse(
          409,
          'settings_changed',
          'Sign-in settings changed',
          'The single sign-on settings changed while you were signing in. Please start again.',
        );
      }
      const client = await clientFor(settings);
      if (!client.ok) return client;
      const { configuration, mode, redirectUri } = client.client;

      // openid-client derives redirect_uri from the URL it is given: use the configured public
      // one with the callback's query, not whatever host the request arrived on.
      const currentUrl = new URL(redirectUri);
      currentUrl.search = callbackUrl.search;
      if (mode === 'manual') currentUrl.searchParams.delete('iss');

      let claims: Record<string, unknown>;
      try {
        const tokens = await oidc.authorizationCodeGrant(configuration, currentUrl, {
          pkceCodeVerifier: transaction.codeVerifier,
          expectedState: state,
          ...(mode === 'discovery' ? { expectedNonce: transaction.nonce, idTokenExpected: true } : {}),
        });
        const idClaims = mode === 'discovery' ? (tokens.claims() as Record<string, unknown> | undefined) : undefined;
        const subject = idClaims && typeof idClaims.sub === 'string' ? idClaims.sub : oidc.skipSubjectCheck;
        const userinfo = (await oidc.fetchUserInfo(configuration, tokens.access_token, subject)) as Record<
          string,
          unknown
        >;
        claims = { ...idClaims, ...userinfo };
      } catch (error) {
        const refusal = classifyIdpError(error);
        deps.log.warn({ err: describeIdpError(error), reason: refusal.reason }, 'SSO callback refused');
        return auditSsoRefusal(deps.db, ip, undefined, refusal);
      }

      const identity = identityFrom(claims, settings);
      if (!identity.ok) return auditSsoRefusal(deps.db, ip, undefined, identity);
      return provisionSsoMailbox(deps, settings, identity.identity, { ip });
    },
  };
}

function equalDigests(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}

function identityFrom(
  claims: Record<string, unknown>,
  settings: Pick<IdpSettings, 'attribute_field' | 'postern_emails_always_verified'>,
): { ok: true; identity: SsoIdentity } | WebRefusal {
  const email = typeof claims.email === 'string' ? foldAddress(claims.email.trim()) : '';
  if (!/^[^\s@]+@[^\s@]+$/.test(email) || email.length > 255) {
    return refuse(
      403,
      'no_email',
      'No email address',
      'The identity provider did not send a usable email address for your account.',
    );
  }
  // mailcow ignores email_verified. Here an address claims a mailbox only when the provider says
  // it verified it, or when the admin declared that this provider verifies every address it
  // hands out (postern_emails_always_verified): then a missing claim is accepted, never `false`.
  const verified = claims.email_verified;
  const isVerified =
    verified === true ||
    verified === 'true' ||
    (verified === undefined && settings.postern_emails_always_verified === true);
  if (!isVerified) {
    return refuse(
      403,
      'email_unverified',
      'Email address not verified',
      verified === undefined
        ? `The identity provider did not say whether it verified ${email}. Ask an admin.`
        : `The identity provider has not verified ${email}.`,
    );
  }
  const given = typeof claims.given_name === 'string' ? claims.given_name : '';
  const family = typeof claims.family_name === 'string' ? claims.family_name : '';
  const name = typeof claims.name === 'string' && claims.name.trim() ? claims.name.trim() : `${given} ${family}`.trim();
  // Own claims only: an attribute_field such as `constructor` must not find what every object inherits.
  const attribute = Object.hasOwn(claims, settings.attribute_field) ? claims[settings.attribute_field] : undefined;
  return { ok: true, identity: { email, name: name.slice(0, 255), attribute } };
}
