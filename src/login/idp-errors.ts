// What openid-client throws during a browser sign-in, sorted into refusals a person can read
// (the IdP is away, or its answer is not acceptable) and log detail without tokens or bodies.
import * as oidc from 'openid-client';
import { refuse, type WebRefusal } from './web-refusal.js';

export function idpUnreachable(): WebRefusal {
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
export function classifyIdpError(error: unknown): WebRefusal {
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
export function describeIdpError(error: unknown): Record<string, unknown> {
  if (error instanceof oidc.ResponseBodyError) return { name: error.name, status: error.status, error: error.error };
  if (error instanceof oidc.AuthorizationResponseError) return { name: error.name, error: error.error };
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? error.cause.message : undefined;
    return { name: error.name, code: (error as { code?: string }).code, message: error.message, cause };
  }
  return { message: String(error) };
}
