// "Test connection" for a generic OIDC provider: discovery (or the three configured URLs), the
// JWK set, then the client authentication probe. Steps and failure wording: connection-steps.ts.
import { randomBytes } from 'node:crypto';
import * as client from 'openid-client';
import { clientAuthFor, tokenAuthMethodOf } from './client-auth.js';
import {
  type ConnectionStep,
  checkJwks,
  configure,
  describeFailure,
  discover,
  oauthRefusal,
  type TestConnectionOptions,
} from './connection-steps.js';
import { idpFetch } from './idp-fetch.js';
import type { GenericOidcSettings } from './idp-settings.js';

export async function testGenericOidc(
  settings: GenericOidcSettings,
  options: TestConnectionOptions,
  steps: ConnectionStep[],
) {
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
