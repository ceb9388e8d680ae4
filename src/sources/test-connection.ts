// "Test connection" for unsaved IdP settings: checks, step by step, what postern will need from
// the provider and says precisely which step failed and why. Never throws for an IdP problem
// (that is the report's content) and never puts the client secret into a detail.
// mailcow's own test is a single client_credentials POST (reference/mailcow-compat.md §5.11).
import * as client from 'openid-client';
import { pickTemplate } from '../templates/pick-template.js';
import { clientAuthFor } from './client-auth.js';
import {
  type ConnectionReport,
  type ConnectionStep,
  checkJwks,
  configure,
  describeFailure,
  discover,
  type OAuthRefusal,
  oauthRefusal,
  type TestConnectionOptions,
} from './connection-steps.js';
import { idpFetch } from './idp-fetch.js';
import { type IdpSettings, type KeycloakSettings, templateMappingsOf } from './idp-settings.js';
import { testGenericOidc } from './test-generic-oidc.js';

export type {
  ConnectionReport,
  ConnectionStep,
  ConnectionStepName,
  TestConnectionOptions,
} from './connection-steps.js';

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
