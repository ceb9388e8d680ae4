// Browser sign-in use-cases: the OIDC authorization-code flow (PKCE + state + nonce) with
// mailbox provisioning from templates, and the local-password sign-in. Plain functions over
// deps: never imports hono. Refusals are returned values with a status and a public message;
// faults (MySQL, Redis) are thrown. An unreachable IdP is a refusal with status 502, so the
// browser gets a clear page instead of an error envelope.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import * as oidc from 'openid-client';
import { foldAddress } from '../address.js';
import { keys } from '../cache/keys.js';
import type { Redis } from '../cache/redis.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { createRateLimiter, limitsFromConfig, type RateLimiter } from '../rate-limit/limiter.js';
import { clientAuthFor } from '../sources/client-auth.js';
import { idpFetch, UNVERIFIED_TLS_WARNING } from '../sources/idp-fetch.js';
import {
  type GenericOidcSettings,
  type IdpSettings,
  loadIdpSettings,
  templateMappingsOf,
} from '../sources/idp-settings.js';
import type { SecretBox } from '../sources/secret-box.js';
import { recordAudit } from '../storage/audit.js';
import type { Db } from '../storage/db.js';
import { findLoginMailbox } from '../storage/mailboxes.js';
import { findMailboxTemplateByName } from '../storage/templates.js';
import { applyTemplateToMailbox, createMailboxFromTemplate } from '../templates/apply-template.js';
import { pickTemplate } from '../templates/pick-template.js';
import type { CredentialVerifier } from './mail-login.js';

export interface WebLoginDeps {
  config: Pick<
    Config,
    | 'redisPrefix'
    | 'publicUrl'
    | 'idpTimeoutMs'
    | 'secretKey'
    | 'banUserThreshold'
    | 'banIpThreshold'
    | 'banWindowSeconds'
    | 'banSeconds'
    | 'banExemptNetworks'
    | 'knownGoodIpSeconds'
  >;
  db: Db;
  redis: Redis;
  log: Logger;
  secretBox: SecretBox;
  verifier: CredentialVerifier;
}

/** A refusal shown to the browser as a page; `message` is public, `reason` is for logs and tests. */
export interface WebRefusal {
  ok: false;
  status: 400 | 401 | 403 | 404 | 409 | 429 | 500 | 502;
  reason: string;
  title: string;
  message: string;
}

const refuse = (status: WebRefusal['status'], reason: string, title: string, message: string): WebRefusal => ({
  ok: false,
  status,
  reason,
  title,
  message,
});

/** How long a started SSO login may take at the IdP before its state expires. */
export const SSO_TRANSACTION_TTL_SECONDS = 600;

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/** The Redis key of a pending SSO login; exported so tests can tamper with a stored transaction. */
export function ssoTransactionKey(redisPrefix: string, state: string): string {
  return keys.ssoTransaction({ prefix: redisPrefix }, sha256(state));
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

/** The identity the IdP vouched for, reduced to what provisioning needs. */
export interface SsoIdentity {
  /** Email after foldAddress: the mailbox key. */
  email: string;
  name: string;
  /** Value of settings.attribute_field (string, or Keycloak's string array), if any. */
  attribute: unknown;
}

export type SsoLoginOutcome =
  | { ok: true; username: string; provisioned: boolean; template?: string; templateApplied: boolean }
  | WebRefusal;

// ---------------------------------------------------------------------------------------------
// OpenID Connect client configuration
// ---------------------------------------------------------------------------------------------

interface ClientSetup {
  configuration: oidc.Configuration;
  scope: string;
  redirectUri: string;
  /**
   * `discovery`: issuer known, ID token validated (issuer, audience, nonce).
   * `manual`: mailcow's three-URL setup without an issuer; see buildManualConfiguration.
   */
  mode: 'discovery' | 'manual';
}

function settingsHashOf(settings: IdpSettings): string {
  const relevant =
    settings.authsource === 'keycloak'
      ? [settings.authsource, settings.server_url, settings.realm, settings.version]
      : [
          settings.authsource,
          settings.postern_issuer_url,
          settings.authorize_url,
          settings.token_url,
          settings.userinfo_url,
          settings.client_scopes,
        ];
  return sha256(JSON.stringify([...relevant, settings.client_id, settings.client_secret, settings.redirect_url]));
}

/**
 * The callback URL the IdP must redirect to. mailcow's `redirect_url` is usually its bare base URL
 * (any mailcow page handles the callback); postern's callback has a fixed path, so a setting that
 * already points at it is used verbatim and anything else is replaced by the public URL's callback.
 */
export function redirectUriFor(settings: IdpSettings, publicUrl: string): string {
  try {
    const configured = new URL(settings.redirect_url);
    if (configured.pathname.replace(/\/+$/, '') === '/login/sso/callback') return configured.href;
  } catch {
    // the schema validated it; fall through to the public URL
  }
  return `${publicUrl}/login/sso/callback`;
}

function scopesFor(settings: IdpSettings): string {
  // mailcow requests Keycloak's `openid` only for version >= 20 (older ones answered userinfo
  // without it). We always need an ID token to check issuer, audience and nonce, so `openid` is
  // always requested, whatever the version, and whatever the admin listed for generic OIDC.
  const listed = settings.authsource === 'keycloak' ? ['profile', 'email'] : settings.client_scopes.split(/\s+/);
  return [...new Set(['openid', ...listed.filter(Boolean)])].join(' ');
}

function isHttp(url: string | undefined): boolean {
  return url?.startsWith('http:') ?? false;
}

function createClientCache(deps: Pick<WebLoginDeps, 'config' | 'log'>) {
  const cache = new Map<string, Promise<ClientSetup>>();
  const warned = new Set<string>();
  const warnOnce = (key: string, message: string, detail: Record<string, unknown>) => {
    if (warned.has(key)) return;
    warned.add(key);
    deps.log.warn(detail, message);
  };
  const timeoutSeconds = deps.config.idpTimeoutMs / 1000;

  async function build(settings: IdpSettings): Promise<ClientSetup> {
    const redirectUri = redirectUriFor(settings, deps.config.publicUrl);
    const scope = scopesFor(settings);
    if (settings.ignore_ssl_error) warnOnce('ssl', UNVERIFIED_TLS_WARNING, {});
    if (settings.authsource === 'generic-oidc' && !settings.postern_issuer_url) {
      return buildManualConfiguration(settings, { scope, redirectUri, timeoutSeconds, warnOnce });
    }
    const issuer =
      settings.authsource === 'keycloak'
        ? `${settings.server_url}/realms/${encodeURIComponent(settings.realm)}`
        : (settings.postern_issuer_url as string);
    const insecure = isHttp(issuer);
    if (insecure)
      warnOnce(`http:${issuer}`, 'identity provider issuer uses plain http; allowed for this issuer only', { issuer });
    const discovered = await oidc.discovery(new URL(issuer), settings.client_id, undefined, undefined, {
      timeout: timeoutSeconds,
      ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
      [oidc.customFetch]: idpFetch(settings),
    });
    // The one client authentication shared with the test connection (client-auth.ts).
    const auth = clientAuthFor(settings);
    const configuration = new oidc.Configuration(discovered.serverMetadata(), settings.client_id, undefined, auth);
    configuration.timeout = timeoutSeconds;
    configuration[oidc.customFetch] = idpFetch(settings);
    if (insecure) oidc.allowInsecureRequests(configuration);
    return { configuration, scope, redirectUri, mode: 'discovery' };
  }

  return {
    /** The openid-client Configuration for these settings; built once per settings hash. */
    async get(settings: IdpSettings): Promise<ClientSetup> {
      const hash = settingsHashOf(settings);
      let entry = cache.get(hash);
      if (!entry) {
        // Settings change rarely; keep only the current configuration.
        cache.clear();
        entry = build(settings);
        cache.set(hash, entry);
        // A failed discovery must be retried on the next login, not cached.
        entry.catch(() => cache.delete(hash));
      }
      return entry;
    },
  };
}

/**
 * mailcow's generic-OIDC setup: three URLs and no issuer. Without an issuer identifier no ID token
 * can be validated (openid-client compares its `iss` to the issuer), so, like mailcow, identity
 * comes only from the userinfo endpoint, reached with the access token that the configured token
 * endpoint returned for our PKCE-bound code. The ID token is dropped before openid-client sees it,
 * which also means the nonce cannot be checked; state and PKCE still are. Setting
 * postern_issuer_url switches to discovery and full ID-token validation.
 */
function buildManualConfiguration(
  settings: GenericOidcSettings,
  options: {
    scope: string;
    redirectUri: string;
    timeoutSeconds: number;
    warnOnce: (key: string, message: string, detail: Record<string, unknown>) => void;
  },
): ClientSetup {
  const tokenUrl = settings.token_url as string;
  const authorizeUrl = settings.authorize_url as string;
  const userinfoUrl = settings.userinfo_url as string;
  options.warnOnce(
    `manual:${tokenUrl}`,
    'generic-oidc without postern_issuer_url: ID tokens are ignored and identity comes from userinfo only (as in mailcow); set postern_issuer_url for issuer and nonce checks',
    { tokenUrl },
  );
  const insecure = [tokenUrl, authorizeUrl, userinfoUrl].some(isHttp);
  if (insecure) options.warnOnce(`http:${tokenUrl}`, 'identity provider endpoints use plain http', { tokenUrl });
  const configuration = new oidc.Configuration(
    {
      // Never compared with anything: ID tokens are removed below and no `iss` is expected.
      issuer: new URL(authorizeUrl).origin,
      authorization_endpoint: authorizeUrl,
      token_endpoint: tokenUrl,
      userinfo_endpoint: userinfoUrl,
      // An RFC 9207 `iss` in the callback would be compared with this made-up issuer, so the
      // callback's `iss` is dropped in completeSso (nothing to compare it with in this mode).
      authorization_response_iss_parameter_supported: false,
    },
    settings.client_id,
    undefined,
    clientAuthFor(settings),
  );
  configuration.timeout = options.timeoutSeconds;
  if (insecure) oidc.allowInsecureRequests(configuration);
  const fetchFromIdp = idpFetch(settings);
  configuration[oidc.customFetch] = async (url, init) => {
    const response = await fetchFromIdp(url, init as RequestInit);
    if (url !== new URL(tokenUrl).href || !response.ok) return response;
    const body = (await response.json()) as Record<string, unknown>;
    delete body.id_token;
    const headers = new Headers(response.headers);
    headers.delete('content-length');
    return new Response(JSON.stringify(body), { status: response.status, headers });
  };
  return { configuration, scope: options.scope, redirectUri: options.redirectUri, mode: 'manual' };
}

// ---------------------------------------------------------------------------------------------
// The SSO flow
// ---------------------------------------------------------------------------------------------

export type BeginSsoOutcome = { ok: true; authorizationUrl: string; binding: string } | WebRefusal;

export interface WebLogin {
  /** Start an SSO login: store a transaction and return where to send the browser. */
  beginSso(): Promise<BeginSsoOutcome>;
  /**
   * Finish an SSO login from the IdP's redirect. `binding` is the pre-login cookie's value.
   * Each state works once, whatever the outcome.
   */
  completeSso(input: { callbackUrl: URL; binding: string | undefined; ip?: string }): Promise<SsoLoginOutcome>;
  /** Sign in with a mailcow (local) mailbox password. */
  checkPassword(input: { username: string; password: string; ip?: string }): Promise<PasswordLoginOutcome>;
}

export function createWebLogin(deps: WebLoginDeps): WebLogin {
  const clients = createClientCache(deps);
  const ks = { prefix: deps.config.redisPrefix };
  const limiter = createWebLoginLimiter(deps);

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

  async function clientFor(settings: IdpSettings): Promise<{ ok: true; client: ClientSetup } | WebRefusal> {
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
        binding: sha256(binding),
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
      const transaction = stored ? parseTransaction(stored) : undefined;
      if (!transaction) {
        return auditRefusal(
          deps,
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
      if (!binding || !equalDigests(transaction.binding, sha256(binding))) {
        return auditRefusal(
          deps,
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
        return auditRefusal(deps, ip, undefined, refusal);
      }

      const identity = identityFrom(claims, settings);
      if (!identity.ok) return auditRefusal(deps, ip, undefined, identity);
      return provisionSsoMailbox(deps, settings, identity.identity, { ip });
    },

    checkPassword(input) {
      return checkWebPasswordLogin({ ...deps, limiter }, input);
    },
  };
}

function parseTransaction(text: string): SsoTransaction | undefined {
  try {
    const value = JSON.parse(text) as Partial<SsoTransaction>;
    if (
      typeof value.binding !== 'string' ||
      typeof value.codeVerifier !== 'string' ||
      typeof value.nonce !== 'string'
    ) {
      return undefined;
    }
    return value as SsoTransaction;
  } catch {
    return undefined;
  }
}

function equalDigests(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}

function idpUnreachable(): WebRefusal {
  return refuse(
    502,
    'idp_unreachable',
    'Identity provider unavailable',
    'The identity provider could not be reached or answered unexpectedly. Please try again later.',
  );
}

/**
 * What openid-client threw, sorted into "the IdP is away or broken" (502) and "this response is
 * not acceptable" (403): a bad nonce, issuer or audience, a rejected code, an error callback.
 */
function classifyIdpError(error: unknown): WebRefusal {
  // A refusal of postern's own client credentials (RFC 6749 §5.2: 401, invalid_client; openid-client
  // reports a 401 with a WWW-Authenticate challenge separately) is a configuration problem the
  // admin must fix, not an outage: never "unavailable".
  if (
    error instanceof oidc.WWWAuthenticateChallengeError ||
    (error instanceof oidc.ResponseBodyError && (error.status === 401 || error.error === 'invalid_client'))
  ) {
    return refuse(
      500,
      'idp_client_rejected',
      'Single sign-on is misconfigured',
      'The identity provider rejected this site’s client credentials. An administrator must check the client secret and the client authentication method (postern_token_auth_method), with the test connection.',
    );
  }
  if (error instanceof oidc.AuthorizationResponseError) {
    return refuse(
      403,
      'idp_denied',
      'Sign-in was not completed',
      `The identity provider did not sign you in (${safeCode(error.error)}).`,
    );
  }
  if (error instanceof oidc.ResponseBodyError) {
    if (error.status >= 500) return idpUnreachable();
    return refuse(
      403,
      'code_rejected',
      'Sign-in was refused',
      `The identity provider rejected this sign-in (${safeCode(error.error)}). Please start again.`,
    );
  }
  if (error instanceof oidc.ClientError) {
    switch (error.code) {
      case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED':
      case 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED':
      case 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED':
      case 'OAUTH_INVALID_RESPONSE':
        return refuse(
          403,
          'invalid_response',
          'Sign-in response rejected',
          'The identity provider’s response failed validation (issuer, nonce, audience or expiry). Please start again.',
        );
      default:
        return idpUnreachable();
    }
  }
  return idpUnreachable();
}

/** OAuth error codes are ASCII tokens; anything else is not echoed. */
function safeCode(code: string): string {
  return /^[\w.-]{1,64}$/.test(code) ? code : 'error';
}

/** Loggable detail of an IdP failure: codes and messages only, never tokens or bodies. */
function describeIdpError(error: unknown): Record<string, unknown> {
  if (error instanceof oidc.ResponseBodyError) return { name: error.name, status: error.status, error: error.error };
  if (error instanceof oidc.AuthorizationResponseError) return { name: error.name, error: error.error };
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? error.cause.message : undefined;
    return { name: error.name, code: (error as { code?: string }).code, message: error.message, cause };
  }
  return { message: String(error) };
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

async function auditRefusal(
  deps: Pick<WebLoginDeps, 'db'>,
  ip: string | undefined,
  actor: string | undefined,
  refusal: WebRefusal,
): Promise<WebRefusal> {
  await recordAudit(deps.db, {
    actor: actor ?? 'anonymous',
    action: 'sso.refused',
    ...(actor ? { target: actor } : {}),
    detail: { reason: refusal.reason, status: refusal.status },
    ...(ip ? { ip } : {}),
  });
  return refusal;
}

// ---------------------------------------------------------------------------------------------
// Provisioning (mailcow-compat.md §5 step 7-8, with postern's stricter rules)
// ---------------------------------------------------------------------------------------------

interface ExistingMailbox {
  username: string;
  active: number;
  authsource: string | null;
  kind: string;
  domain_active: number | null;
  [key: string]: unknown;
}

/**
 * Match the IdP identity to a mailbox by email, creating it from the mapped template on first
 * login and re-applying the mapped template on later ones. Never takes over a mailbox of
 * another auth source, and never re-enables a mailbox or domain an admin disabled.
 */
export async function provisionSsoMailbox(
  deps: Pick<WebLoginDeps, 'db' | 'log'>,
  settings: IdpSettings,
  identity: SsoIdentity,
  context: { ip?: string } = {},
): Promise<SsoLoginOutcome> {
  const email = foldAddress(identity.email);
  const mappings = templateMappingsOf(settings);
  const ip = context.ip;
  const refused = (refusal: WebRefusal) => auditRefusal(deps, ip, email, refusal);

  for (let attempt = 0; attempt < 2; attempt++) {
    const existing = await deps.db.one<ExistingMailbox>(
      `SELECT m.username, m.active, m.authsource, m.kind, d.active AS domain_active
         FROM mailbox m LEFT JOIN domain d ON d.domain = m.domain
        WHERE m.username = ? AND BINARY m.username = ?`,
      [email, email],
    );

    if (existing) {
      const source = existing.authsource ?? 'mailcow';
      if (source !== settings.authsource) {
        return refused(
          source === 'mailcow'
            ? refuse(
                409,
                'local_mailbox',
                'This mailbox uses its password',
                `The mailbox ${email} signs in with its password, not through single sign-on. Ask an admin to switch it to single sign-on.`,
              )
            : refuse(
                409,
                'other_source',
                'This mailbox uses another sign-in',
                `The mailbox ${email} belongs to another sign-in source (${source}). Ask an admin.`,
              ),
        );
      }
      if (['location', 'thing', 'group'].includes(existing.kind)) {
        return refused(
          refuse(
            403,
            'resource_mailbox',
            'Not a personal mailbox',
            `${email} is a resource mailbox and cannot sign in.`,
          ),
        );
      }

      let applied: string | undefined;
      const choice = pickTemplate(identity.attribute, mappings, 'update');
      if (choice.template) {
        const template = await findMailboxTemplateByName(deps.db, choice.template);
        if (!template) {
          deps.log.warn(
            { user: email, template: choice.template },
            'mapped template does not exist; mailbox left as it is',
          );
        } else {
          const result = await deps.db.transaction((tx) =>
            applyTemplateToMailbox(tx, {
              username: existing.username,
              template,
              ...(identity.name ? { name: identity.name } : {}),
            }),
          );
          if (result.changed) {
            applied = template.name;
            await recordAudit(deps.db, {
              actor: email,
              action: 'sso.template',
              target: existing.username,
              detail: { template: template.name, mapper: choice.why === 'mapped' ? choice.mapper : undefined },
              ...(ip ? { ip } : {}),
            });
          }
        }
      }

      // Re-read: applying a template may have lowered `active`.
      const now = await deps.db.one<{ active: number; domain_active: number | null }>(
        'SELECT m.active, d.active AS domain_active FROM mailbox m LEFT JOIN domain d ON d.domain = m.domain WHERE m.username = ? AND BINARY m.username = ?',
        [existing.username, existing.username],
      );
      if (!now || Number(now.active) !== 1) {
        return refused(
          refuse(403, 'mailbox_inactive', 'Mailbox disabled', `The mailbox ${email} is disabled. Ask an admin.`),
        );
      }
      if (Number(now.domain_active) !== 1) {
        return refused(
          refuse(403, 'domain_inactive', 'Domain disabled', `The domain of ${email} is disabled. Ask an admin.`),
        );
      }
      await recordAudit(deps.db, {
        actor: email,
        action: 'sso.login',
        target: existing.username,
        ...(ip ? { ip } : {}),
      });
      return {
        ok: true,
        username: existing.username,
        provisioned: false,
        templateApplied: applied !== undefined,
        ...(applied ? { template: applied } : {}),
      };
    }

    if (!settings.login_provisioning) {
      return refused(
        refuse(
          403,
          'provisioning_off',
          'No mailbox for this address',
          `There is no mailbox for ${email}, and mailboxes are not created at sign-in. Ask an admin.`,
        ),
      );
    }
    const choice = pickTemplate(identity.attribute, mappings, 'create');
    if (!choice.template) {
      return refused(
        refuse(
          403,
          'no_template',
          'No mailbox template',
          `No mailbox template matches your account, so no mailbox can be created for ${email}. Ask an admin.`,
        ),
      );
    }
    const template = await findMailboxTemplateByName(deps.db, choice.template);
    if (!template) {
      deps.log.error({ template: choice.template }, 'mapped template does not exist');
      return refused(
        refuse(
          403,
          'no_template',
          'No mailbox template',
          `The mailbox template "${choice.template}" does not exist, so no mailbox can be created for ${email}. Ask an admin.`,
        ),
      );
    }
    const created = await deps.db.transaction((tx) =>
      createMailboxFromTemplate(tx, {
        username: email,
        name: identity.name,
        authSource: settings.authsource,
        template,
      }),
    );
    if (!created.ok) {
      const domain = email.slice(email.lastIndexOf('@') + 1);
      switch (created.reason) {
        case 'exists':
          continue; // created concurrently (another tab, a sync): treat as an existing mailbox
        case 'unknown_domain':
          return refused(
            refuse(
              403,
              'unknown_domain',
              'Domain not hosted here',
              `The domain ${domain} is not hosted on this server, so no mailbox can be created for ${email}.`,
            ),
          );
        case 'inactive_domain':
          return refused(
            refuse(
              403,
              'inactive_domain',
              'Domain disabled',
              `The domain ${domain} is disabled, so no mailbox can be created for ${email}. Ask an admin.`,
            ),
          );
        case 'invalid_address':
          return refused(
            refuse(403, 'no_email', 'Unusable email address', `${email} cannot be used as a mailbox address.`),
          );
        case 'unusable_address':
          return refused(
            refuse(
              403,
              'unusable_address',
              'Unusable email address',
              `No mailbox can be created for ${email}: ${created.detail ?? 'it cannot be a mailbox address'}. Ask an admin.`,
            ),
          );
        case 'collides':
          deps.log.warn(
            { user: email, existing: created.existing },
            'SSO address is another spelling of an existing mailbox or alias under the database collation',
          );
          return refused(
            refuse(
              409,
              'address_collides',
              'Address already taken',
              `No mailbox can be created for ${email}: the mail database treats it as the same address as an existing mailbox or alias. Ask an admin.`,
            ),
          );
      }
    }
    await recordAudit(deps.db, {
      actor: email,
      action: 'sso.provision',
      target: email,
      detail: { template: template.name, why: choice.why, authsource: settings.authsource },
      ...(ip ? { ip } : {}),
    });
    if (Number(template.attributes.active ?? 1) !== 1) {
      return refused(
        refuse(
          403,
          'mailbox_inactive',
          'Mailbox created but disabled',
          `A mailbox was created for ${email}, but its template leaves it unable to sign in. Ask an admin.`,
        ),
      );
    }
    await recordAudit(deps.db, { actor: email, action: 'sso.login', target: email, ...(ip ? { ip } : {}) });
    return { ok: true, username: email, provisioned: true, template: template.name, templateApplied: true };
  }
  return refused(
    refuse(409, 'conflict', 'Please try again', 'Your mailbox changed while you were signing in. Please try again.'),
  );
}

// ---------------------------------------------------------------------------------------------
// Local-password sign-in
// ---------------------------------------------------------------------------------------------

export type PasswordLoginOutcome = { ok: true; username: string } | WebRefusal;

const WRONG_CREDENTIALS = refuse(
  401,
  'invalid_credentials',
  'Sign-in failed',
  'Wrong address or password. Mailboxes that use single sign-on cannot sign in with a password here: use the single sign-on button.',
);

/**
 * A mailcow (local) mailbox and its own password; app passwords do not open the portal and
 * IdP mailboxes have no password here. Failures go to the same kind of limiter as the passdb's
 * (distinct wrong passwords per user and per client IP, bans, known-good IPs), checked before
 * any hash runs. Every failure looks the same, so the page never tells which addresses exist.
 */
export async function checkWebPasswordLogin(
  deps: Pick<WebLoginDeps, 'db' | 'log' | 'verifier'> & { limiter: RateLimiter },
  input: { username: string; password: string; ip?: string },
): Promise<PasswordLoginOutcome> {
  const username = foldAddress(input.username.trim());
  if (!username || username.length > 255 || input.password.length === 0 || input.password.length > 4096) {
    return WRONG_CREDENTIALS;
  }
  const mailbox = await findLoginMailbox(deps.db, username);
  // Count against the canonical mailbox, as the passdb does: every spelling that finds it (alias
  // domains, letter case) shares its one budget. An unknown address is not counted by IP.
  const attempt = { ip: input.ip ?? '', username: mailbox?.username ?? username };
  const decision = await deps.limiter.check(attempt);
  if (decision.blocked) {
    deps.log.info({ user: attempt.username, ip: input.ip, scope: decision.scope }, 'web login rate-limited');
    const minutes = Math.max(1, Math.ceil(decision.retryAfterSeconds / 60));
    return refuse(
      429,
      'rate_limited',
      'Too many attempts',
      `Too many failed sign-ins. Please try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`,
    );
  }

  const hash = mailbox && mailbox.authSource === 'mailcow' ? mailbox.passwordHash : '';
  if (!mailbox || !hash) {
    await deps.verifier.verifyDummy(input.password);
    await deps.limiter.recordFailure({ ...attempt, password: input.password });
    deps.log.info(
      { user: username, reason: mailbox ? `authsource_${mailbox.authSource ?? 'none'}` : 'no_such_mailbox' },
      'web login failed',
    );
    return WRONG_CREDENTIALS;
  }
  const verdict = await deps.verifier.verify(mailbox.username, hash, input.password);
  if (!verdict.ok) {
    await deps.limiter.recordFailure({ ...attempt, password: input.password });
    deps.log.info({ user: username, reason: verdict.reason }, 'web login failed');
    return WRONG_CREDENTIALS;
  }
  // Only someone holding the password learns that the mailbox is disabled.
  if (mailbox.active !== 1 || !mailbox.domainActive) {
    await recordAudit(deps.db, {
      actor: mailbox.username,
      action: 'web.refused',
      target: mailbox.username,
      detail: { reason: mailbox.active !== 1 ? 'mailbox_inactive' : 'domain_inactive' },
      ...(input.ip ? { ip: input.ip } : {}),
    });
    return refuse(403, 'mailbox_inactive', 'Mailbox disabled', 'This mailbox or its domain is disabled. Ask an admin.');
  }
  await deps.limiter.recordSuccess(attempt);
  await recordAudit(deps.db, {
    actor: mailbox.username,
    action: 'web.login',
    target: mailbox.username,
    ...(input.ip ? { ip: input.ip } : {}),
  });
  return { ok: true, username: mailbox.username };
}

/**
 * src/rate-limit's limiter with the passdb's thresholds, in a key space of its own (`…web:`), so
 * browser failures and IMAP failures are banned independently. Its password fingerprints are keyed
 * from POSTERN_SECRET_KEY when set (replicas then agree), else from a per-process random key.
 */
export function createWebLoginLimiter(deps: Pick<WebLoginDeps, 'redis' | 'config' | 'log'>): RateLimiter {
  const { config } = deps;
  const fingerprintSecret = config.secretKey
    ? createHmac('sha256', config.secretKey).update('postern web-login limiter').digest('hex')
    : randomBytes(32).toString('hex');
  return createRateLimiter({
    redis: deps.redis,
    prefix: `${config.redisPrefix}web:`,
    ...limitsFromConfig(config),
    fingerprintSecret,
    log: deps.log,
  });
}

// ---------------------------------------------------------------------------------------------
// The portal's view of a signed-in mailbox
// ---------------------------------------------------------------------------------------------

export interface PortalMailbox {
  username: string;
  name: string;
  domain: string;
  /** Bytes; 0 = unlimited. */
  quotaBytes: number;
  usedBytes: number;
  authSource: string;
  /** mailcow's user_acl.app_passwds (1 when there is no row). */
  mayManageAppPasswords: boolean;
}

/** The mailbox behind a session, or undefined when it is gone, disabled or its domain is. */
export async function findPortalMailbox(db: Pick<Db, 'one'>, username: string): Promise<PortalMailbox | undefined> {
  const row = await db.one<{
    username: string;
    name: string | null;
    domain: string;
    quota: number | string;
    active: number;
    authsource: string | null;
    domain_active: number | null;
    used: number | string | null;
    app_passwds: number | null;
  }>(
    `SELECT m.username, m.name, m.domain, m.quota, m.active, m.authsource, d.active AS domain_active,
            q.bytes AS used, a.app_passwds
       FROM mailbox m
       LEFT JOIN domain d ON d.domain = m.domain
       LEFT JOIN quota2 q ON q.username = m.username
       LEFT JOIN user_acl a ON a.username = m.username
      WHERE m.username = ? AND BINARY m.username = ?`,
    [username, username],
  );
  if (!row || Number(row.active) !== 1 || Number(row.domain_active) !== 1) return undefined;
  return {
    username: row.username,
    name: row.name ?? '',
    domain: row.domain,
    quotaBytes: Number(row.quota),
    usedBytes: Number(row.used ?? 0),
    authSource: row.authsource ?? 'mailcow',
    mayManageAppPasswords: row.app_passwds === null || Number(row.app_passwds) === 1,
  };
}
