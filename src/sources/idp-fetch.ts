// The fetch postern uses to talk to an identity provider (discovery, token, userinfo, Keycloak's
// admin API). TLS certificates are verified, except when the provider's settings carry mailcow's
// `ignore_ssl_error` (a lab IdP with a self-signed certificate): then, for these calls only,
// any certificate is accepted. Everything else postern does keeps verifying.
// IdP connections live in two connection pools of this module's own (not Node's global one), so
// deps.close() can close them: kept alive, they would outlast the process's other sockets.
import { Agent, fetch as undiciFetch } from 'undici';
import type { IdpSettings } from './idp-settings.js';

let verifiedTls: Agent | undefined;
let unverifiedTls: Agent | undefined;

/** The pool for a provider: made on first use, again after closeIdpConnections(). */
function agentFor(ignoreSslError: boolean): Agent {
  if (ignoreSslError) {
    unverifiedTls ??= new Agent({ connect: { rejectUnauthorized: false } });
    return unverifiedTls;
  }
  verifiedTls ??= new Agent();
  return verifiedTls;
}

type UndiciInput = Parameters<typeof undiciFetch>[0];
type UndiciInit = NonNullable<Parameters<typeof undiciFetch>[1]>;

const fetchThrough = (ignoreSslError: boolean) =>
  ((input: string | URL, init?: RequestInit) =>
    undiciFetch(input as UndiciInput, {
      ...(init as UndiciInit),
      dispatcher: agentFor(ignoreSslError),
    })) as unknown as typeof fetch;

const verifiedFetch = fetchThrough(false);
const fetchWithoutCertificateChecks = fetchThrough(true);

export function idpFetch(settings: Pick<IdpSettings, 'ignore_ssl_error'>): typeof fetch {
  return settings.ignore_ssl_error ? fetchWithoutCertificateChecks : verifiedFetch;
}

/**
 * Closes the IdP connections (deps.close() calls it): requests under way finish first; a later
 * IdP call opens a new pool. The pools are the process's, so in a process of several posterns
 * (tests) one's close ends the others' idle connections too, which they simply open again.
 */
export async function closeIdpConnections(): Promise<void> {
  const open = [verifiedTls, unverifiedTls].filter((agent): agent is Agent => agent !== undefined);
  verifiedTls = undefined;
  unverifiedTls = undefined;
  await Promise.all(open.map((agent) => agent.close()));
}

/** The warning to log once when a provider is reached without certificate checks. */
export const UNVERIFIED_TLS_WARNING =
  'identity_provider.ignore_ssl_error is set: TLS certificates of the identity provider are not verified';
