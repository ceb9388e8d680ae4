// The fetch postern uses to talk to an identity provider (discovery, token, userinfo, Keycloak's
// admin API). TLS certificates are verified, except when the provider's settings carry mailcow's
// `ignore_ssl_error` (a lab IdP with a self-signed certificate): then, for these calls only,
// any certificate is accepted. Everything else postern does keeps verifying.
import { Agent, fetch as undiciFetch } from 'undici';
import type { IdpSettings } from './idp-settings.js';

let unverifiedAgent: Agent | undefined;

/** Accepts any server certificate: made once, used only for providers with ignore_ssl_error. */
function unverifiedTls(): Agent {
  unverifiedAgent ??= new Agent({ connect: { rejectUnauthorized: false } });
  return unverifiedAgent;
}

type UndiciInput = Parameters<typeof undiciFetch>[0];
type UndiciInit = NonNullable<Parameters<typeof undiciFetch>[1]>;

const fetchWithoutCertificateChecks = ((input: string | URL, init?: RequestInit) =>
  undiciFetch(input as UndiciInput, {
    ...(init as UndiciInit),
    dispatcher: unverifiedTls(),
  })) as unknown as typeof fetch;

export function idpFetch(settings: Pick<IdpSettings, 'ignore_ssl_error'>): typeof fetch {
  return settings.ignore_ssl_error ? fetchWithoutCertificateChecks : fetch;
}

/** The warning to log once when a provider is reached without certificate checks. */
export const UNVERIFIED_TLS_WARNING =
  'identity_provider.ignore_ssl_error is set: TLS certificates of the identity provider are not verified';
