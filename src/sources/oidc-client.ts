// The OpenID Connect client for browser sign-in: from the stored IdP settings (Keycloak, or a
// generic provider by discovery or by mailcow's three URLs) to an openid-client Configuration,
// built once per settings and kept until they change. No flow state here: login/sso-login.ts
// runs the authorization-code flow with what this returns.
import * as oidc from 'openid-client';
import type { Config } from '../config/schema.js';
import { sha256Hex } from '../digest.js';
import type { Logger } from '../log.js';
import { clientAuthFor } from './client-auth.js';
import { idpFetch, UNVERIFIED_TLS_WARNING } from './idp-fetch.js';
import type { GenericOidcSettings, IdpSettings } from './idp-settings.js';

/** What a sign-in needs of the IdP: the openid-client Configuration, scopes and callback URL. */
export interface OidcClientSetup {
  configuration: oidc.Configuration;
  scope: string;
  redirectUri: string;
  /**
   * `discovery`: issuer known, ID token validated (issuer, audience, nonce).
   * `manual`: mailcow's three-URL setup without an issuer; see buildManualConfiguration.
   */
  mode: 'discovery' | 'manual';
}

/** Changes whenever a setting that shapes the client changes: a pending sign-in must finish with the settings it began with. */
export function settingsHashOf(settings: IdpSettings): string {
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
  return sha256Hex(JSON.stringify([...relevant, settings.client_id, settings.client_secret, settings.redirect_url]));
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

export interface OidcClients {
  /** The openid-client Configuration for these settings; built once per settings hash. */
  get(settings: IdpSettings): Promise<OidcClientSetup>;
}

export interface OidcClientsDeps {
  config: Pick<Config, 'publicUrl' | 'idpTimeoutMs'>;
  log: Logger;
}

/** Discovery (or mailcow's manual three-URL setup) once per settings, retried after a failure. */
export function createOidcClients(deps: OidcClientsDeps): OidcClients {
  const cache = new Map<string, Promise<OidcClientSetup>>();
  const warned = new Set<string>();
  const warnOnce = (key: string, message: string, detail: Record<string, unknown>) => {
    if (warned.has(key)) return;
    warned.add(key);
    deps.log.warn(detail, message);
  };
  const timeoutSeconds = deps.config.idpTimeoutMs / 1000;

  async function build(settings: IdpSettings): Promise<OidcClientSetup> {
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
    async get(settings) {
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
): OidcClientSetup {
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
