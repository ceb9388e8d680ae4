// The pieces every "test connection" run shares: the report's types, OIDC discovery, the JWK set,
// an openid-client configuration like sign-in's, and one sentence for each way a request to the
// provider can fail. test-connection.ts (Keycloak) and test-generic-oidc.ts compose them.
import * as client from 'openid-client';
import { idpFetch } from './idp-fetch.js';
import type { IdpSettings } from './idp-settings.js';

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

/** The keys ID tokens are verified with: jwks_uri must answer a JWK set with a signing key. */
export async function checkJwks(
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

export async function discover(
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

export function configure(
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

export interface OAuthRefusal {
  status: number;
  error: string;
  description?: string;
  /** e.g. `HTTP 401 invalid_client: Invalid client or Invalid client credentials` */
  text: string;
}

/** An OAuth error answer (RFC 6749 §5.2), from the body or a WWW-Authenticate challenge. */
export function oauthRefusal(error: unknown): OAuthRefusal | undefined {
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
  // IdP calls go through undici's own fetch (idp-fetch.ts), whose Response is not the global
  // class, so the response is recognised by its shape, not by instanceof.
  const cause = (error as { cause?: { status?: unknown; headers?: unknown } } | null)?.cause;
  return typeof cause?.status === 'number' && typeof cause.headers === 'object' ? cause.status : undefined;
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
