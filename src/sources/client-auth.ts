// How postern authenticates its OIDC client at the provider's token endpoint: one setting,
// `postern_token_auth_method`, read in one place, so sign-in, the test connection and the
// Keycloak service account all send the client secret the same way.
//
// - client_secret_post (the default, what mailcow does: data/web/inc/functions.inc.php,
//   identity_provider('init') builds league/oauth2-client's GenericProvider / the Keycloak
//   provider without an optionProvider, so the default PostAuthOptionProvider puts client_id and
//   client_secret in the form body; 'get-keycloak-admin-token' posts them with http_build_query):
//   the secret travels in the form body, which every provider decodes.
// - client_secret_basic (RFC 6749 §2.3.1, OIDC's default when discovery lists nothing): HTTP
//   Basic. openid-client form-encodes id and secret first, as the RFC says, and encodes every
//   character outside A-Z a-z 0-9 (`-`, `_`, `.` included: oauth4webapi formUrlEncode); a provider
//   that compares the Basic password without decoding it refuses such secrets (invalid_client).
import * as oidc from 'openid-client';
import type { IdpSettings } from './idp-settings.js';

export const TOKEN_AUTH_METHODS = ['client_secret_post', 'client_secret_basic'] as const;
export type TokenAuthMethod = (typeof TOKEN_AUTH_METHODS)[number];

export function tokenAuthMethodOf(settings: Pick<IdpSettings, 'postern_token_auth_method'>): TokenAuthMethod {
  return settings.postern_token_auth_method;
}

/** openid-client's client authentication for these settings (sign-in and the test connection). */
export function clientAuthFor(
  settings: Pick<IdpSettings, 'postern_token_auth_method' | 'client_secret'>,
): oidc.ClientAuth {
  return tokenAuthMethodOf(settings) === 'client_secret_basic'
    ? oidc.ClientSecretBasic(settings.client_secret)
    : oidc.ClientSecretPost(settings.client_secret);
}
