// A real OpenID provider for end-to-end tests: panva's oidc-provider on 127.0.0.1:<free port>,
// mounted Keycloak-style under /realms/<realm> with Keycloak's endpoint paths, so the same
// instance serves generic-OIDC discovery, Keycloak-shaped settings and mailcow's three-URL setup.
// PKCE is required; consent is granted automatically; the login form is ours (plain HTML with
// #username, #password, #idp-login) so a browser can fill it. Account claims can be changed
// between logins.
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import Provider, { type ClientAuthMethod, type Configuration } from 'oidc-provider';

export interface TestAccount {
  username: string;
  password: string;
  email: string;
  /** Default true; null leaves the claim out (a provider that does not send it). */
  email_verified?: boolean | null;
  name?: string;
  mailcow_template?: string;
}

export interface TestOidcProvider {
  /** Base URL, e.g. http://127.0.0.1:43210 (Keycloak's server_url). */
  baseUrl: string;
  realm: string;
  /** `${baseUrl}/realms/${realm}`: the issuer for discovery. */
  issuer: string;
  /** Keycloak's endpoint URLs under the issuer (for mailcow's manual generic-OIDC setup). */
  endpoints: { authorize: string; token: string; userinfo: string };
  clientId: string;
  clientSecret: string;
  /** Add or replace an account. */
  setAccount(account: TestAccount): void;
  /** Change claims of an existing account (e.g. mailcow_template) before its next login. */
  setClaims(username: string, claims: Partial<Omit<TestAccount, 'username'>>): void;
  close(): Promise<void>;
}

const PROTOCOL = '/protocol/openid-connect';

export async function startOidcProvider(options: {
  redirectUris: string[];
  realm?: string;
  clientId?: string;
  clientSecret?: string;
  accounts?: TestAccount[];
  /** Serve https with this key and certificate (e.g. a self-signed one) instead of http. */
  tls?: { key: string; cert: string };
  /**
   * The client authentication methods the provider allows (oidc-provider's `clientAuthMethods`,
   * also what discovery lists): e.g. ['client_secret_basic'] makes it refuse client_secret_post
   * with invalid_client. Default: oidc-provider's own list (both secret methods).
   */
  clientAuthMethods?: ClientAuthMethod[];
  /**
   * false: behave like providers that compare the HTTP Basic password without form-decoding it
   * (RFC 6749 §2.3.1 says to decode; openid-client encodes every character outside A-Z a-z 0-9,
   * `-`, `_` and `.` included), so a secret with such characters is refused over Basic.
   * Default true (oidc-provider decodes, as the RFC says).
   */
  decodesBasicCredentials?: boolean;
}): Promise<TestOidcProvider> {
  const realm = options.realm ?? 'mail';
  const prefix = `/realms/${realm}`;
  const clientId = options.clientId ?? 'postern';
  const clientSecret = options.clientSecret ?? 'postern-test-client-secret';
  const accounts = new Map<string, TestAccount>();
  for (const account of options.accounts ?? []) accounts.set(account.username, { ...account });

  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server = options.tls
    ? createTlsServer(options.tls, (req, res) => handler(req, res))
    : createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const baseUrl = `${options.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = `${baseUrl}${prefix}`;

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-signing-key', alg: 'RS256', use: 'sig' };

  const configuration: Configuration = {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: options.redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: options.clientAuthMethods?.[0] ?? 'client_secret_basic',
      },
    ],
    ...(options.clientAuthMethods ? { clientAuthMethods: options.clientAuthMethods } : {}),
    // v9 requires PKCE only for public clients by default; Keycloak can require it for all.
    pkce: { required: () => true },
    // Keycloak-like ID tokens: scope claims in the ID token too, not only at userinfo.
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      // Keycloak users get custom attributes through a mapper on a default scope (profile here).
      profile: ['name', 'preferred_username', 'mailcow_template'],
      mailcow_template: ['mailcow_template'],
    },
    scopes: ['openid', 'profile', 'email', 'mailcow_template'],
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    cookies: { keys: ['postern-test-provider-cookie-key'] },
    ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 3600, IdToken: 600, Interaction: 600, Session: 3600 },
    jwks: { keys: [signingKey] },
    routes: {
      authorization: `${PROTOCOL}/auth`,
      token: `${PROTOCOL}/token`,
      userinfo: `${PROTOCOL}/userinfo`,
      jwks: `${PROTOCOL}/certs`,
      end_session: `${PROTOCOL}/logout`,
      revocation: `${PROTOCOL}/revoke`,
      introspection: `${PROTOCOL}/token/introspect`,
    },
    async findAccount(_ctx, id) {
      const account = accounts.get(id);
      if (!account) return undefined;
      return {
        accountId: id,
        async claims() {
          const current = accounts.get(id) ?? account;
          return {
            sub: id,
            email: current.email,
            ...(current.email_verified === null ? {} : { email_verified: current.email_verified ?? true }),
            preferred_username: current.username,
            ...(current.name ? { name: current.name } : {}),
            ...(current.mailcow_template !== undefined ? { mailcow_template: current.mailcow_template } : {}),
          };
        },
      };
    },
  };
  const provider = new Provider(issuer, configuration);
  const providerCallback = provider.callback();

  async function interactions(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', baseUrl);
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name === 'login') {
      if (req.method === 'POST' && url.pathname.endsWith('/login')) {
        const form = new URLSearchParams(await readBody(req));
        const account = accounts.get(form.get('username') ?? '');
        if (!account || account.password !== form.get('password')) {
          return sendHtml(res, 200, loginForm(details.uid, 'Invalid username or password.'));
        }
        return provider.interactionFinished(
          req,
          res,
          { login: { accountId: account.username } },
          { mergeWithLastSubmission: false },
        );
      }
      return sendHtml(res, 200, loginForm(details.uid));
    }
    if (details.prompt.name === 'consent') {
      // Consent is granted automatically, for exactly what was asked.
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({
            accountId: details.session?.accountId ?? '',
            clientId: String(details.params.client_id),
          });
      if (!grant) throw new Error('grant vanished');
      const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    sendHtml(res, 400, `<p>unexpected prompt ${details.prompt.name}</p>`);
  }

  handler = (req, res) => {
    const path = req.url ?? '/';
    if (path.startsWith('/interaction/')) {
      interactions(req, res).catch((error: unknown) => {
        if (!res.headersSent) sendHtml(res, 500, `<p>${escapeHtml(String(error))}</p>`);
        else res.end();
      });
      return;
    }
    if (path === prefix || path.startsWith(`${prefix}/`)) {
      if (options.decodesBasicCredentials === false) keepBasicCredentialsEncoded(req);
      // Mounted under the issuer's path: oidc-provider derives its mount path from originalUrl.
      (req as IncomingMessage & { originalUrl?: string }).originalUrl = path;
      req.url = path.slice(prefix.length) || '/';
      providerCallback(req, res);
      return;
    }
    res.statusCode = 404;
    res.end();
  };

  return {
    baseUrl,
    realm,
    issuer,
    endpoints: {
      authorize: `${issuer}${PROTOCOL}/auth`,
      token: `${issuer}${PROTOCOL}/token`,
      userinfo: `${issuer}${PROTOCOL}/userinfo`,
    },
    clientId,
    clientSecret,
    setAccount(account) {
      accounts.set(account.username, { ...account });
    },
    setClaims(username, claims) {
      const account = accounts.get(username);
      if (!account) throw new Error(`no test account ${username}`);
      accounts.set(username, { ...account, ...claims });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/**
 * Rewrite an HTTP Basic header so that oidc-provider's form-decoding yields the raw, still
 * form-encoded id and password: what a provider that skips the decoding compares.
 */
function keepBasicCredentialsEncoded(req: IncomingMessage): void {
  const header = req.headers.authorization;
  if (!header?.startsWith('Basic ')) return;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const cut = decoded.indexOf(':');
  if (cut < 0) return;
  const encode = (value: string) => encodeURIComponent(value);
  const id = decoded.slice(0, cut);
  const password = decoded.slice(cut + 1);
  req.headers.authorization = `Basic ${Buffer.from(`${encode(id)}:${encode(password)}`).toString('base64')}`;
}

function loginForm(uid: string, error?: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test IdP sign-in</title></head><body>
<h1>Test identity provider</h1>
${error ? `<p role="alert" id="idp-error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${encodeURIComponent(uid)}/login">
<label for="username">Username</label> <input id="username" name="username" autocomplete="username">
<label for="password">Password</label> <input id="password" name="password" type="password">
<button id="idp-login" type="submit">Sign in</button>
</form></body></html>`;
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.end(html);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
