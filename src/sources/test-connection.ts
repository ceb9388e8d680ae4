// "Test connection" for unsaved IdP settings: checks, step by step, what postern will need from
// the provider and says precisely which step failed and why. Never throws for an IdP problem
// (that is the report's content) and never puts the client secret into a detail.
// mailcow's own test is a single client_credentials POST (reference/mailcow-compat.md §5.11).
import { randomBytes } from 'node:crypto';
import * as client from 'openid-client';
import { pickTemplate } from '../templates/pick-template.js';
import { clientAuthFor, tokenAuthMethodOf } from './client-auth.js';
import { idpFetch } from './idp-fetch.js';
import {
  type GenericOidcSettings,
  type IdpSettings,
  type KeycloakSettings,
  templateMappingsOf,
} from './idp-settings.js';

export type ConnectionStepName =
  | 'discovery'
  | 'endpoints'
  | 'client_credentials'
  | 'client_authentication'
  | 'jwks'
  | 'admin_api'
  | 'sample_user'
  | 'attribute_mapping';

export interface ConnectionStep {
  step: ConnectionStepName;
  ok: boolean;
  /** The step could not run for this provider type (ok stays true: nothing failed). */
  skipped?: true;
  detail: string;
}

export interface ConnectionReport {
  /** True when every step that ran succeeded; the first failing step ends the run. */
  ok: boolean;
  steps: ConnectionStep[];
}

export interface TestConnectionOptions {
  /** Budget of each request to the provider (POSTERN_IDP_TIMEOUT_MS). */
  timeoutMs: number;
  /**
   * A user to look up (email, or username without "@"): Keycloak's admin API finds it, and the
   * report says which attribute value it has and which template that maps to.
   */
  sampleUser?: string | undefined;
}

export async function testIdpConnection(
  settings: IdpSettings,
  options: TestConnectionOptions,
): Promise<ConnectionReport> {
  const steps: ConnectionStep[] = [];
  if (settings.authsource === 'keycloak') await testKeycloak(settings, options, steps);
  else await testGenericOidc(settings, options, steps);
  return { ok: steps.every((step) => step.ok), steps };
}

// ---------------------------------------------------------------------------------------------
// Keycloak: realm discovery → service-account token → (if sync/mailpassword need it) admin API.

async function testKeycloak(settings: KeycloakSettings, options: TestConnectionOptions, steps: ConnectionStep[]) {
  const realmPath = `/realms/${encodeURIComponent(settings.realm)}`;
  const issuer = `${settings.server_url}${realmPath}`;
  const discovered = await discover(issuer, settings, options, steps, {
    notFoundHint: `does realm "${settings.realm}" exist? Keycloak before 17 also needs /auth in server_url`,
  });
  if (!discovered) return;
  if (!(await checkJwks(discovered, settings, options, steps))) return;

  // The service account is what sync, import and the mailpassword flow use; login does not.
  const needsServiceAccount = settings.periodic_sync || settings.import_users || settings.mailpassword_flow;
  const sampleUser = options.sampleUser?.trim() || undefined;
  // The client authentication sign-in and sync use (client-auth.ts), nothing else.
  const config = configure(discovered, settings, clientAuthFor(settings), options);
  const tokenEndpoint = String(discovered.token_endpoint);
  let accessToken: string | undefined;
  try {
    const tokens = await client.clientCredentialsGrant(config);
    accessToken = tokens.access_token;
    steps.push({
      step: 'client_credentials',
      ok: true,
      detail: `client "${settings.client_id}" got a service-account token from ${tokenEndpoint}`,
    });
  } catch (error) {
    const refusal = oauthRefusal(error);
    const verdict = refusal ? readKeycloakRefusal(refusal) : undefined;
    const client = `client "${settings.client_id}"`;
    if (!refusal || !verdict) {
      steps.push({ step: 'client_credentials', ok: false, detail: describeFailure(error, tokenEndpoint, options) });
    } else if (verdict === 'unknown_client') {
      steps.push({
        step: 'client_credentials',
        ok: false,
        detail: `no enabled client "${settings.client_id}" in realm "${settings.realm}" (${refusal.text}): check client_id, and that the client is enabled`,
      });
    } else if (verdict === 'wrong_secret') {
      steps.push({
        step: 'client_credentials',
        ok: false,
        detail: `client secret rejected for ${client} (${refusal.text}): copy it again from the client's Credentials tab`,
      });
    } else if (verdict === 'no_service_account') {
      steps.push({
        step: 'client_credentials',
        ok: !needsServiceAccount,
        detail: needsServiceAccount
          ? `client id and secret accepted, but the client has no service account (${refusal.text}): turn on "Service accounts roles" for ${client}; periodic sync, user import and the mailpassword flow need it`
          : `client id and secret accepted; the client has no service account (${refusal.text}), which only periodic sync, user import and the mailpassword flow need`,
      });
    } else {
      steps.push({
        step: 'client_credentials',
        ok: false,
        detail: `${client} is a public or bearer-only client (${refusal.text}): turn on "Client authentication" for it, postern signs in with a client secret`,
      });
    }
    return;
  }

  if (!needsServiceAccount && !sampleUser) return;
  const usersUrl = `${settings.server_url}/admin${realmPath}/users?max=1`;
  let response: Response;
  try {
    response = await idpFetch(settings)(usersUrl, {
      headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    steps.push({ step: 'admin_api', ok: false, detail: describeFailure(error, usersUrl, options) });
    return;
  }
  await response.body?.cancel().catch(() => undefined);
  const detail = (() => {
    switch (response.status) {
      case 200:
        return `the service account may list users (${usersUrl})`;
      case 403:
        return `service account lacks view-users: give the service account of client "${settings.client_id}" the realm-management role view-users (HTTP 403 from ${usersUrl})`;
      case 401:
        return `the admin API refused the service-account token (HTTP 401 from ${usersUrl})`;
      case 404:
        return `HTTP 404 from ${usersUrl}: no Keycloak admin API there (check server_url)`;
      default:
        return `unexpected HTTP ${response.status} from ${usersUrl}`;
    }
  })();
  steps.push({ step: 'admin_api', ok: response.status === 200, detail });
  if (response.status !== 200 || !sampleUser || !accessToken) return;
  await checkSampleUser(settings, accessToken, sampleUser, options, steps);
}

/**
 * Finds the sample user as sync would (`email=…&exact=true`, or `username=` without "@"; the full
 * representation, so attributes are included) and maps its attribute as sign-in would create
 * the mailbox (pick-template.ts, purpose "create").
 */
async function checkSampleUser(
  settings: KeycloakSettings,
  accessToken: string,
  sampleUser: string,
  options: TestConnectionOptions,
  steps: ConnectionStep[],
) {
  const field = sampleUser.includes('@') ? 'email' : 'username';
  const url = `${settings.server_url}/admin/realms/${encodeURIComponent(settings.realm)}/users?${field}=${encodeURIComponent(sampleUser)}&exact=true`;
  let found:
    | {
        username?: string;
        email?: string;
        enabled?: boolean;
        emailVerified?: boolean;
        attributes?: Record<string, unknown>;
      }
    | undefined;
  try {
    const response = await idpFetch(settings)(url, {
      headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      steps.push({ step: 'sample_user', ok: false, detail: `unexpected HTTP ${response.status} from ${url}` });
      return;
    }
    const users: unknown = await response.json();
    if (!Array.isArray(users)) {
      steps.push({ step: 'sample_user', ok: false, detail: `${url} did not answer with a list of users` });
      return;
    }
    found = users.find((user) => typeof user === 'object' && user !== null) as typeof found;
  } catch (error) {
    steps.push({ step: 'sample_user', ok: false, detail: describeFailure(error, url, options) });
    return;
  }
  if (!found) {
    steps.push({
      step: 'sample_user',
      ok: false,
      detail: `no user with ${field} "${sampleUser}" in realm "${settings.realm}"`,
    });
    return;
  }
  const state = [
    found.enabled === false ? 'disabled' : 'enabled',
    found.emailVerified === true ? 'email verified' : 'email not verified (sign-in and sync refuse it)',
  ].join(', ');
  steps.push({
    step: 'sample_user',
    ok: true,
    detail: `found user "${found.username ?? sampleUser}"${found.email ? ` <${found.email}>` : ''}: ${state}`,
  });

  const raw = found.attributes?.[settings.attribute_field];
  const value = Array.isArray(raw) ? raw[0] : raw;
  const choice = pickTemplate(raw, templateMappingsOf(settings), 'create');
  const valueText =
    value === undefined
      ? `has no attribute "${settings.attribute_field}" (Keycloak 24 and later return only attributes declared in the realm's user profile)`
      : `has ${settings.attribute_field} = "${String(value)}"`;
  const mapping = (() => {
    switch (choice.why) {
      case 'mapped':
        return `maps to template "${choice.template}" (mapping "${choice.mapper}")`;
      case 'default':
        return `no mapping matches, so a new mailbox gets the default template "${choice.template}"`;
      case 'no_mapping':
        return 'no mapping matches and there is no default template: sign-in and sync would not create a mailbox';
    }
  })();
  steps.push({
    step: 'attribute_mapping',
    ok: choice.template !== undefined,
    detail: `the user ${valueText}; ${mapping}`,
  });
}

type KeycloakRefusal = 'unknown_client' | 'wrong_secret' | 'no_service_account' | 'not_confidential';

/**
 * Keycloak's answers to a client_credentials request, from its code (2026 main):
 * - unknown or disabled client: 401 `invalid_client` "Invalid client or Invalid client credentials"
 *   (services/.../authentication/AuthenticationProcessor.java, handleClientAuthException);
 * - wrong or missing secret: 401 `unauthorized_client`, same description
 *   (services/.../authentication/authenticators/client/ClientIdAndSecretAuthenticator.java);
 *   Keycloak before about 20 answered 400 `unauthorized_client` "Invalid client credentials";
 * - right credentials, service accounts off: 401 `unauthorized_client` "Client not enabled to
 *   retrieve service account"; a public or bearer-only client: "Public client not allowed to
 *   retrieve service account" / "Bearer-only client not allowed to retrieve service account"
 *   (services/.../protocol/oidc/grants/ClientCredentialsGrantType.java).
 * So the error code alone does not tell a wrong secret from a missing service account: the
 * description does. Undefined: not one of these (described as a plain failure).
 */
function readKeycloakRefusal(refusal: OAuthRefusal): KeycloakRefusal | undefined {
  const description = refusal.description ?? '';
  if (/not enabled to retrieve service account/i.test(description)) return 'no_service_account';
  if (/^(public|bearer-only) client not allowed/i.test(description)) return 'not_confidential';
  if (refusal.error === 'invalid_client') return 'unknown_client';
  if (refusal.error === 'unauthorized_client' && /invalid client credentials/i.test(description)) {
    return 'wrong_secret';
  }
  if (refusal.status === 401) return 'wrong_secret';
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Generic OIDC: discovery (or the three configured URLs) → client authentication probe.

async function testGenericOidc(settings: GenericOidcSettings, options: TestConnectionOptions, steps: ConnectionStep[]) {
  let metadata: client.ServerMetadata | undefined;
  if (settings.postern_issuer_url) {
    metadata = await discover(settings.postern_issuer_url, settings, options, steps, {});
    if (!metadata) return;
    if (!(await checkJwks(metadata, settings, options, steps))) return;
  } else {
    metadata = await checkEndpoints(settings, options, steps);
    if (!metadata) return;
  }
  await probeClientAuthentication(metadata, settings, options, steps);
  if (options.sampleUser?.trim()) {
    steps.push({
      step: 'sample_user',
      ok: true,
      skipped: true,
      detail:
        'not checked: a generic OIDC provider has no directory API to look a user up in; the attribute comes from the userinfo claims at sign-in (type a value into the mapping preview instead)',
    });
  }
}

async function checkEndpoints(
  settings: GenericOidcSettings,
  options: TestConnectionOptions,
  steps: ConnectionStep[],
): Promise<client.ServerMetadata | undefined> {
  const authorize = settings.authorize_url as string;
  const token = settings.token_url as string;
  const userinfo = settings.userinfo_url as string;
  const answers: string[] = [];
  // Any answer below 500 shows the endpoint is there: without parameters or a token the
  // authorization and userinfo endpoints are expected to answer 400/401. The token endpoint is
  // checked by the client authentication probe that follows.
  for (const [name, url] of [
    ['authorize_url', authorize],
    ['userinfo_url', userinfo],
  ] as const) {
    try {
      const response = await idpFetch(settings)(url, {
        redirect: 'manual',
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      await response.body?.cancel().catch(() => undefined);
      if (response.status >= 500) {
        steps.push({ step: 'endpoints', ok: false, detail: `${name}: HTTP ${response.status} from ${url}` });
        return undefined;
      }
      answers.push(`${name} answered HTTP ${response.status}`);
    } catch (error) {
      steps.push({ step: 'endpoints', ok: false, detail: `${name}: ${describeFailure(error, url, options)}` });
      return undefined;
    }
  }
  steps.push({ step: 'endpoints', ok: true, detail: answers.join('; ') });
  return {
    issuer: new URL(token).origin,
    authorization_endpoint: authorize,
    token_endpoint: token,
    userinfo_endpoint: userinfo,
  };
}

/**
 * Authenticate the client exactly as sign-in will (same openid-client ClientAuth, from
 * client-auth.ts), with the one token request sign-in makes: an authorization_code grant, here
 * with a code that cannot be valid. The provider must authenticate the client before it looks at
 * the code (RFC 6749 §3.2.1, §5.2), so `invalid_client` or a 401 means the credentials (or their
 * method) were refused, and `invalid_grant` (or another refusal of the request) means they passed.
 * A client_credentials probe would not do: a provider may refuse that grant before it checks the
 * client at all.
 */
async function probeClientAuthentication(
  metadata: client.ServerMetadata,
  settings: GenericOidcSettings,
  options: TestConnectionOptions,
  steps: ConnectionStep[],
) {
  const tokenEndpoint = metadata.token_endpoint;
  if (!tokenEndpoint) {
    steps.push({ step: 'client_authentication', ok: false, detail: 'the provider names no token_endpoint' });
    return;
  }
  const method = tokenAuthMethodOf(settings);
  // OIDC Discovery: an absent list means client_secret_basic only.
  const advertised = metadata.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
  const config = configure(metadata, settings, clientAuthFor(settings), options);
  const clientName = `client "${settings.client_id}"`;
  try {
    await client.genericGrantRequest(config, 'authorization_code', {
      code: `postern-connection-test-${randomBytes(12).toString('hex')}`,
      redirect_uri: settings.redirect_url,
      code_verifier: randomBytes(32).toString('base64url'),
    });
    steps.push({
      step: 'client_authentication',
      ok: true,
      detail: `${clientName} authenticated with ${method} at ${tokenEndpoint}`,
    });
  } catch (error) {
    const refusal = oauthRefusal(error);
    if (refusal && (refusal.status === 401 || refusal.error === 'invalid_client')) {
      const other = method === 'client_secret_basic' ? 'client_secret_post' : 'client_secret_basic';
      const hint = !advertised.includes(method)
        ? `the provider lists only ${advertised.filter((m) => m.startsWith('client_secret')).join(', ') || advertised.join(', ')}: set postern_token_auth_method to ${other}`
        : method === 'client_secret_basic'
          ? 'check the secret; a provider that does not form-decode HTTP Basic credentials refuses secrets with characters other than letters and digits this way: try postern_token_auth_method client_secret_post'
          : `check client id and secret, or try postern_token_auth_method ${other}`;
      steps.push({
        step: 'client_authentication',
        ok: false,
        detail: `client credentials rejected with ${method} at ${tokenEndpoint} (${refusal.text}): ${hint}`,
      });
    } else if (refusal && refusal.status < 500) {
      steps.push({
        step: 'client_authentication',
        ok: true,
        detail: `${clientName} authenticated with ${method} at ${tokenEndpoint} (the test code was refused as expected: ${refusal.text})`,
      });
    } else {
      steps.push({ step: 'client_authentication', ok: false, detail: describeFailure(error, tokenEndpoint, options) });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces.

/** The keys ID tokens are verified with: jwks_uri must answer a JWK set with a signing key. */
async function checkJwks(
  metadata: client.ServerMetadata,
  settings: IdpSettings,
  options: TestConnectionOptions,
  steps: ConnectionStep[],
): Promise<boolean> {
  const uri = metadata.jwks_uri;
  if (!uri) {
    steps.push({ step: 'jwks', ok: false, detail: 'the discovery document names no jwks_uri' });
    return false;
  }
  let body: unknown;
  try {
    const response = await idpFetch(settings)(uri, {
      headers: { accept: 'application/json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      steps.push({ step: 'jwks', ok: false, detail: `HTTP ${response.status} from ${uri}` });
      return false;
    }
    body = await response.json();
  } catch (error) {
    const detail =
      error instanceof SyntaxError ? `${uri} did not answer with JSON` : describeFailure(error, uri, options);
    steps.push({ step: 'jwks', ok: false, detail });
    return false;
  }
  const keys = (body as { keys?: unknown }).keys;
  if (!Array.isArray(keys)) {
    steps.push({ step: 'jwks', ok: false, detail: `${uri} answered no "keys" list (RFC 7517 §5)` });
    return false;
  }
  // A key without "use" may sign (RFC 7517 §4.2); "enc" keys are for encryption only.
  const signing = keys.filter((key) => (key as { use?: unknown }).use !== 'enc');
  const algs = [...new Set(signing.map((key) => String((key as { alg?: unknown }).alg ?? 'no alg')))].join(', ');
  const plural = (n: number) => `${n} key${n === 1 ? '' : 's'}`;
  steps.push({
    step: 'jwks',
    ok: signing.length > 0,
    detail:
      signing.length > 0
        ? `${plural(keys.length)} at ${uri}, ${plural(signing.length)} for signatures (${algs})`
        : `${plural(keys.length)} at ${uri}, none for signatures: ID tokens cannot be verified`,
  });
  return signing.length > 0;
}

async function discover(
  issuer: string,
  settings: IdpSettings,
  options: TestConnectionOptions,
  steps: ConnectionStep[],
  hints: { notFoundHint?: string },
): Promise<client.ServerMetadata | undefined> {
  const issuerUrl = new URL(issuer);
  const wellKnown = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  try {
    const config = await client.discovery(issuerUrl, settings.client_id, undefined, client.None(), {
      timeout: options.timeoutMs / 1000,
      execute: issuerUrl.protocol === 'http:' ? [client.allowInsecureRequests] : [],
      [client.customFetch]: idpFetch(settings),
    });
    const metadata = config.serverMetadata();
    const missing = (['authorization_endpoint', 'token_endpoint'] as const).filter((key) => !metadata[key]);
    if (missing.length > 0) {
      steps.push({
        step: 'discovery',
        ok: false,
        detail: `the discovery document at ${wellKnown} has no ${missing.join(' and ')}`,
      });
      return undefined;
    }
    // openid-client has already refused a document whose issuer is not the configured one.
    steps.push({
      step: 'discovery',
      ok: true,
      detail: `issuer ${metadata.issuer} answered at ${wellKnown} and matches the configured URL`,
    });
    return { ...metadata };
  } catch (error) {
    let detail = describeFailure(error, wellKnown, options);
    if (hints.notFoundHint && httpStatusOf(error) === 404) detail += ` (${hints.notFoundHint})`;
    steps.push({ step: 'discovery', ok: false, detail });
    return undefined;
  }
}

function configure(
  metadata: client.ServerMetadata,
  settings: IdpSettings,
  auth: client.ClientAuth,
  options: TestConnectionOptions,
): client.Configuration {
  const config = new client.Configuration(metadata, settings.client_id, undefined, auth);
  config.timeout = options.timeoutMs / 1000;
  config[client.customFetch] = idpFetch(settings);
  const urls = [metadata.issuer, metadata.token_endpoint].filter((url): url is string => typeof url === 'string');
  if (urls.some((url) => url.startsWith('http:'))) client.allowInsecureRequests(config);
  return config;
}

interface OAuthRefusal {
  status: number;
  error: string;
  description?: string;
  /** e.g. `HTTP 401 invalid_client: Invalid client or Invalid client credentials` */
  text: string;
}

/** An OAuth error answer (RFC 6749 §5.2), from the body or a WWW-Authenticate challenge. */
function oauthRefusal(error: unknown): OAuthRefusal | undefined {
  if (error instanceof client.ResponseBodyError) {
    const description = error.error_description ? `: ${error.error_description}` : '';
    return {
      status: error.status,
      error: error.error,
      ...(error.error_description ? { description: error.error_description } : {}),
      text: `HTTP ${error.status} ${error.error}${description}`,
    };
  }
  if (error instanceof client.WWWAuthenticateChallengeError) {
    const parameters = error.cause[0]?.parameters;
    const code = parameters?.error ?? (error.status === 401 ? 'invalid_client' : 'unknown_error');
    const description = parameters?.error_description ? `: ${parameters.error_description}` : '';
    return {
      status: error.status,
      error: code,
      ...(parameters?.error_description ? { description: parameters.error_description } : {}),
      text: `HTTP ${error.status} ${code}${description}`,
    };
  }
  return undefined;
}

function httpStatusOf(error: unknown): number | undefined {
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Response ? cause.status : undefined;
}

/** One sentence for a failed request: unreachable, timed out, HTTP status, or bad document. */
/** Node's codes for a server certificate that does not verify (self-signed, unknown CA, expired, wrong name). */
const CERTIFICATE_ERRORS =
  /SELF_SIGNED|UNABLE_TO_(VERIFY|GET_ISSUER)|CERT_(HAS_EXPIRED|NOT_YET_VALID|UNTRUSTED|REJECTED)|ERR_TLS_CERT_ALTNAME_INVALID/;

export function describeFailure(error: unknown, url: string, options: TestConnectionOptions): string {
  const refusal = oauthRefusal(error);
  if (refusal) return `${refusal.text} from ${url}`;
  if (isTimeout(error)) return `no answer from ${url} within ${options.timeoutMs} ms`;
  if (error instanceof TypeError) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code ?? cause?.message ?? error.message;
    if (cause?.code && CERTIFICATE_ERRORS.test(cause.code)) {
      return `the TLS certificate of ${url} is not trusted (${cause.code}): give the provider a certificate from a trusted CA, or set ignore_ssl_error for a lab provider`;
    }
    return `cannot reach ${url} (${reason})`;
  }
  const code = (error as { code?: string }).code;
  const status = httpStatusOf(error);
  switch (code) {
    case 'OAUTH_RESPONSE_IS_NOT_CONFORM':
      return status === undefined ? `unexpected answer from ${url}` : `HTTP ${status} from ${url}`;
    case 'OAUTH_RESPONSE_IS_NOT_JSON':
      return `${url} did not answer with JSON`;
    case 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED': {
      const cause = (error as { cause?: { expected?: string; body?: { issuer?: unknown } } }).cause;
      return `the discovery document names issuer "${String(cause?.body?.issuer)}", but postern expects "${cause?.expected}" (the provider's public hostname must match the configured URL)`;
    }
    case 'OAUTH_HTTP_REQUEST_FORBIDDEN':
      return `${url} is not https`;
    default: {
      const message = error instanceof Error ? error.message : String(error);
      const inner = (error as { cause?: unknown }).cause;
      const innerMessage = inner instanceof Error && inner.message !== message ? ` (${inner.message})` : '';
      return `${message}${innerMessage} at ${url}`;
    }
  }
}

function isTimeout(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  const name = (error as { name?: string }).name;
  const causeName = (error as { cause?: { name?: string } }).cause?.name;
  return code === 'OAUTH_TIMEOUT' || name === 'TimeoutError' || causeName === 'TimeoutError';
}
