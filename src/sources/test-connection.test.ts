// testIdpConnection against the Keycloak fake (test/support/fake-keycloak.ts, which answers as
// Keycloak's own code does, cited there) and a small HTTP double for a generic OIDC issuer, a
// Keycloak realm whose discovery names another hostname, and servers that fail or hang.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeKeycloak, startFakeKeycloak } from '../../test/support/fake-keycloak.js';
import { genericOidcSettingsSchema, keycloakSettingsSchema } from './idp-settings.js';
import { testIdpConnection } from './test-connection.js';

interface FakeClient {
  secret: string;
  /** Keycloak: "Service accounts roles" on. Generic: client_credentials grant allowed. */
  serviceAccount: boolean;
  /** Keycloak: the service account has realm-management → view-users. */
  viewUsers?: boolean;
}

const CLIENTS: Record<string, FakeClient> = {
  postern: { secret: 'right-secret-123', serviceAccount: true, viewUsers: true },
  'login-only': { secret: 'login-only-secret', serviceAccount: false },
  'no-view': { secret: 'no-view-secret', serviceAccount: true, viewUsers: false },
};

let server: Server;
let base: string;
let kc: FakeKeycloak;
let closedPortUrl: string;

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** client_secret_post or client_secret_basic, as Keycloak accepts both. */
function presentedCredentials(req: IncomingMessage, form: URLSearchParams) {
  const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
  if (basic?.[1]) {
    const [id = '', secret = ''] = Buffer.from(basic[1], 'base64').toString('utf8').split(':');
    return { id: decodeURIComponent(id), secret: decodeURIComponent(secret), method: 'basic' };
  }
  return { id: form.get('client_id') ?? '', secret: form.get('client_secret') ?? '', method: 'post' };
}

function discoveryDocument(issuer: string, extra: Record<string, unknown> = {}) {
  return {
    issuer,
    authorization_endpoint: `${issuer}/protocol/openid-connect/auth`,
    token_endpoint: `${issuer}/protocol/openid-connect/token`,
    userinfo_endpoint: `${issuer}/protocol/openid-connect/userinfo`,
    jwks_uri: `${issuer}/protocol/openid-connect/certs`,
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', 'password'],
    token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic', 'client_secret_post'],
    ...extra,
  };
}

async function handle(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? '/', base);
  const path = url.pathname;
  // A Keycloak realm whose discovery document names another public hostname.
  if (path === '/realms/skewed/.well-known/openid-configuration') {
    return json(res, 200, discoveryDocument('https://sso.example.com/realms/skewed'));
  }
  // A generic OIDC issuer at /oidc that advertises client_secret_basic only.
  if (path === '/oidc/.well-known/openid-configuration') {
    return json(res, 200, {
      issuer: `${base}/oidc`,
      authorization_endpoint: `${base}/oidc/auth`,
      token_endpoint: `${base}/oidc/token`,
      userinfo_endpoint: `${base}/oidc/me`,
      jwks_uri: `${base}/oidc/jwks`,
      token_endpoint_auth_methods_supported: ['client_secret_basic'],
    });
  }
  if (path === '/oidc/token' && req.method === 'POST') {
    const form = await readForm(req);
    const presented = presentedCredentials(req, form);
    const known = CLIENTS[presented.id];
    if (!known || known.secret !== presented.secret || presented.method !== 'basic') {
      res.setHeader('www-authenticate', 'Basic realm="oidc"');
      return json(res, 401, { error: 'invalid_client', error_description: 'client authentication failed' });
    }
    // Client authentication passed; a made-up code is then refused (RFC 6749 §5.2).
    return json(res, 400, { error: 'invalid_grant', error_description: 'grant request is invalid' });
  }
  if (path === '/oidc/jwks') {
    return json(res, 200, { keys: [{ kid: 'k1', kty: 'RSA', alg: 'RS256', use: 'sig', n: 'AQAB', e: 'AQAB' }] });
  }
  if (path === '/enc-only/.well-known/openid-configuration') {
    return json(res, 200, { ...discoveryDocument(`${base}/enc-only`), jwks_uri: `${base}/enc-only/jwks` });
  }
  if (path === '/enc-only/jwks') return json(res, 200, { keys: [{ kid: 'e1', kty: 'RSA', use: 'enc' }] });
  if (path === '/oidc/auth') return json(res, 400, { error: 'invalid_request' });
  if (path === '/oidc/me') return json(res, 401, { error: 'invalid_token' });
  if (path === '/broken/auth') return json(res, 502, { error: 'bad gateway' });
  // Never answers: the caller's timeout has to end the request.
  if (path.startsWith('/hang/')) return;
  return json(res, 404, { error: 'not found' });
}

beforeAll(async () => {
  server = createServer((req, res) => {
    handle(req, res).catch(() => json(res, 500, { error: 'double failed' }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  kc = await startFakeKeycloak({
    clients: [
      { clientId: 'postern', secret: 'right-secret-123' },
      { clientId: 'login-only', secret: 'login-only-secret', serviceAccountsEnabled: false },
      { clientId: 'no-view', secret: 'no-view-secret', roles: [] },
      { clientId: 'switched-off', secret: 'switched-off-secret', enabled: false },
      { clientId: 'public-app', secret: '', publicClient: true },
    ],
    users: [
      { username: 'ada', email: 'ada@example.org', emailVerified: true, attributes: { mailcow_template: ['staff'] } },
      { username: 'bob', email: 'bob@example.org', emailVerified: false, attributes: { mailcow_template: ['guest'] } },
      { username: 'cy', email: 'cy@example.org', emailVerified: true },
    ],
  });
  const closed = createServer().listen(0, '127.0.0.1');
  await once(closed, 'listening');
  closedPortUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise((resolve) => closed.close(resolve));
});

afterAll(async () => {
  await kc?.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const TIMEOUT = { timeoutMs: 700 };

function keycloak(overrides: Record<string, unknown> = {}) {
  return keycloakSettingsSchema.parse({
    authsource: 'keycloak',
    server_url: kc.url,
    realm: 'mail',
    version: '26.0.0',
    client_id: 'postern',
    client_secret: 'right-secret-123',
    redirect_url: 'https://mail.example.org/login/sso/callback',
    ...overrides,
  });
}

function genericOidc(overrides: Record<string, unknown> = {}) {
  return genericOidcSettingsSchema.parse({
    authsource: 'generic-oidc',
    postern_issuer_url: `${base}/oidc`,
    client_id: 'postern',
    client_secret: 'right-secret-123',
    redirect_url: 'https://mail.example.org/login/sso/callback',
    ...overrides,
  });
}

type Expected = { ok: boolean; steps: [string, boolean, RegExp][] };

describe('testIdpConnection with Keycloak', () => {
  it.each<[string, () => Record<string, unknown>, Expected]>([
    [
      'passes discovery, the service-account token and the users list when sync is on',
      () => ({ periodic_sync: true }),
      {
        ok: true,
        steps: [
          ['discovery', true, /issuer http:\/\/127\.0\.0\.1:\d+\/realms\/mail answered/],
          ['jwks', true, /2 keys at .*\/certs, 1 key for signatures \(RS256\)/],
          ['client_credentials', true, /service-account token/],
          ['admin_api', true, /may list users/],
        ],
      },
    ],
    [
      'skips the admin API when neither sync, import nor the mailpassword flow is on',
      () => ({}),
      {
        ok: true,
        steps: [
          ['discovery', true, /answered/],
          ['jwks', true, /2 keys at .*\/certs, 1 key for signatures \(RS256\)/],
          ['client_credentials', true, /token/],
        ],
      },
    ],
    [
      'names a wrong client secret as such (Keycloak: 401 unauthorized_client "Invalid client or Invalid client credentials")',
      () => ({ client_secret: 'wrong-secret-456' }),
      {
        ok: false,
        steps: [
          ['discovery', true, /answered/],
          ['jwks', true, /2 keys at .*\/certs, 1 key for signatures \(RS256\)/],
          [
            'client_credentials',
            false,
            /client secret rejected for client "postern" \(HTTP 401 unauthorized_client: Invalid client or Invalid client credentials\)/,
          ],
        ],
      },
    ],
    [
      'names an unknown client id as such (Keycloak: 401 invalid_client)',
      () => ({ client_id: 'nobody' }),
      {
        ok: false,
        steps: [
          ['discovery', true, /answered/],
          ['jwks', true, /2 keys at .*\/certs, 1 key for signatures \(RS256\)/],
          ['client_credentials', false, /no enabled client "nobody" in realm "mail" \(HTTP 401 invalid_client/],
        ],
      },
    ],
    [
      'names a disabled client as such (Keycloak: 401 invalid_client)',
      () => ({ client_id: 'switched-off', client_secret: 'switched-off-secret' }),
      {
        ok: false,
        steps: [
          ['discovery', true, /answered/],
          ['jwks', true, /2 keys at .*\/certs, 1 key for signatures \(RS256\)/],
          ['client_credentials', false, /no enabled client "switched-off" in realm "mail"/],
        ],
      },
    ],
    [
      'names a public client as one that cannot authenticate with a secret',
      () => ({ client_id: 'public-app' }),
      {
        ok: false,
        steps: [
          ['discovery', true, /answered/],
          ['jwks', true, /2 keys at .*\/certs, 1 key for signatures \(RS256\)/],
          ['client_credentials', false, /public or bearer-only client .*Public client not allowed/],
        ],
      },
    ],
    [
      'accepts a client without service account when only login needs it',
      () => ({ client_id: 'login-only', client_secret: 'login-only-secret' }),
      {
        ok: true,
        steps: [
          ['discovery', true, /answered/],
          ['jwks', true, /2 keys at .*\/certs, 1 key for signatures \(RS256\)/],
          ['client_credentials', true, /accepted; the client has no service account/],
        ],
      },
    ],
    [
      'fails a client without service account when the mailpassword flow needs it',
      () => ({ client_id: 'login-only', client_secret: 'login-only-secret', mailpassword_flow: true }),
      {
        ok: false,
        steps: [
          ['discovery', true, /answered/],
          ['jwks', true, /2 keys at .*\/certs, 1 key for signatures \(RS256\)/],
          ['client_credentials', false, /accepted, but the client has no service account .*Service accounts roles/],
        ],
      },
    ],
    [
      'says the service account lacks view-users when the users list answers 403',
      () => ({ client_id: 'no-view', client_secret: 'no-view-secret', import_users: true }),
      {
        ok: false,
        steps: [
          ['discovery', true, /answered/],
          ['jwks', true, /2 keys at .*\/certs, 1 key for signatures \(RS256\)/],
          ['client_credentials', true, /token/],
          ['admin_api', false, /service account lacks view-users.*HTTP 403/],
        ],
      },
    ],
    [
      'reports an unknown realm as HTTP 404 at the realm discovery document',
      () => ({ realm: 'nope' }),
      {
        ok: false,
        steps: [['discovery', false, /HTTP 404 from .*\/realms\/nope\/\.well-known.*does realm "nope" exist/]],
      },
    ],
    [
      'reports an issuer that does not match server_url and realm',
      () => ({ server_url: base, realm: 'skewed' }),
      {
        ok: false,
        steps: [['discovery', false, /names issuer "https:\/\/sso\.example\.com\/realms\/skewed"/]],
      },
    ],
    [
      'reports an unreachable server as such',
      () => ({ server_url: closedPortUrl }),
      { ok: false, steps: [['discovery', false, /cannot reach .*ECONNREFUSED/]] },
    ],
    [
      'reports a server that does not answer within the timeout',
      () => ({ server_url: `${base}/hang` }),
      { ok: false, steps: [['discovery', false, /no answer from .* within 700 ms/]] },
    ],
  ])('%s', async (_title, overrides, expected) => {
    const report = await testIdpConnection(keycloak(overrides()), TIMEOUT);
    expect(report.ok).toBe(expected.ok);
    expect(report.steps.map((step) => [step.step, step.ok])).toEqual(expected.steps.map(([step, ok]) => [step, ok]));
    report.steps.forEach((step, index) => {
      expect(step.detail).toMatch(expected.steps[index]?.[2] as RegExp);
    });
    expect(JSON.stringify(report)).not.toMatch(/secret-(123|456)|login-only-secret|no-view-secret|switched-off-secret/);
  });
});

describe('testIdpConnection with a sample user (Keycloak)', () => {
  const mapped = { mappers: ['staff'], templates: ['Staff'], default_template: 'Basic' };
  const run = (sampleUser: string, overrides: Record<string, unknown> = mapped) =>
    testIdpConnection(keycloak(overrides), { ...TIMEOUT, sampleUser });
  const last = (report: Awaited<ReturnType<typeof run>>) => report.steps.slice(-3).map((s) => [s.step, s.ok, s.detail]);

  it('looks the user up by email through the admin API and names the template its attribute maps to', async () => {
    const report = await run('ada@example.org');
    expect(report.ok).toBe(true);
    expect(last(report)).toEqual([
      ['admin_api', true, expect.stringMatching(/may list users/)],
      ['sample_user', true, 'found user "ada" <ada@example.org>: enabled, email verified'],
      [
        'attribute_mapping',
        true,
        'the user has mailcow_template = "staff"; maps to template "Staff" (mapping "staff")',
      ],
    ]);
    expect(kc.requests.some((r) => r.query.email === 'ada@example.org' && r.query.exact === 'true')).toBe(true);
  });

  it('finds a user by username, says its email is unverified, and falls back to the default template', async () => {
    const report = await run('bob');
    expect(last(report).slice(1)).toEqual([
      [
        'sample_user',
        true,
        'found user "bob" <bob@example.org>: enabled, email not verified (sign-in and sync refuse it)',
      ],
      [
        'attribute_mapping',
        true,
        'the user has mailcow_template = "guest"; no mapping matches, so a new mailbox gets the default template "Basic"',
      ],
    ]);
  });

  it('fails the mapping step for a user without the attribute when there is no default template', async () => {
    const report = await run('cy@example.org', { mappers: ['staff'], templates: ['Staff'] });
    expect(report.ok).toBe(false);
    expect(report.steps.at(-1)).toEqual({
      step: 'attribute_mapping',
      ok: false,
      detail: expect.stringMatching(
        /^the user has no attribute "mailcow_template" \(Keycloak 24 .*\); no mapping matches and there is no default template/,
      ),
    });
  });

  it('names a user that is not in the realm', async () => {
    const report = await run('nobody@example.org');
    expect(report.ok).toBe(false);
    expect(report.steps.at(-1)).toEqual({
      step: 'sample_user',
      ok: false,
      detail: 'no user with email "nobody@example.org" in realm "mail"',
    });
  });

  it('checks the admin API for a sample user even when sync is off, and stops there without view-users', async () => {
    const report = await run('ada@example.org', { client_id: 'no-view', client_secret: 'no-view-secret' });
    expect(report.steps.map((s) => [s.step, s.ok])).toEqual([
      ['discovery', true],
      ['jwks', true],
      ['client_credentials', true],
      ['admin_api', false],
    ]);
  });
});

describe('testIdpConnection with generic OIDC', () => {
  it('fails a JWK set without a signing key', async () => {
    const report = await testIdpConnection(genericOidc({ postern_issuer_url: `${base}/enc-only` }), TIMEOUT);
    expect(report.ok).toBe(false);
    expect(report.steps.at(-1)).toEqual({
      step: 'jwks',
      ok: false,
      detail: `1 key at ${base}/enc-only/jwks, none for signatures: ID tokens cannot be verified`,
    });
  });

  it('says a sample user cannot be looked up at a generic OIDC provider, without failing the test', async () => {
    const report = await testIdpConnection(genericOidc({ postern_token_auth_method: 'client_secret_basic' }), {
      ...TIMEOUT,
      sampleUser: 'ada@example.org',
    });
    expect(report.ok).toBe(true);
    expect(report.steps.at(-1)).toMatchObject({ step: 'sample_user', ok: true, skipped: true });
  });

  it.each<[string, () => Record<string, unknown>, Expected]>([
    [
      'authenticates the client with the configured method, as sign-in does',
      () => ({ postern_token_auth_method: 'client_secret_basic' }),
      {
        ok: true,
        steps: [
          ['discovery', true, /issuer .*\/oidc answered/],
          ['jwks', true, /1 key at .*\/oidc\/jwks, 1 key for signatures \(RS256\)/],
          [
            'client_authentication',
            true,
            /authenticated with client_secret_basic .*refused as expected: .*invalid_grant/,
          ],
        ],
      },
    ],
    [
      'says the provider lists only client_secret_basic when it refuses the default client_secret_post',
      () => ({}),
      {
        ok: false,
        steps: [
          ['discovery', true, /answered/],
          ['jwks', true, /1 key at .*\/oidc\/jwks, 1 key for signatures \(RS256\)/],
          [
            'client_authentication',
            false,
            /client credentials rejected with client_secret_post .*lists only client_secret_basic: set postern_token_auth_method to client_secret_basic/,
          ],
        ],
      },
    ],
    [
      'names wrong credentials as rejected',
      () => ({ client_secret: 'wrong-secret-456', postern_token_auth_method: 'client_secret_basic' }),
      {
        ok: false,
        steps: [
          ['discovery', true, /answered/],
          ['jwks', true, /1 key at .*\/oidc\/jwks, 1 key for signatures \(RS256\)/],
          ['client_authentication', false, /client credentials rejected with client_secret_basic .*invalid_client/],
        ],
      },
    ],
    [
      'checks the three configured URLs when there is no issuer for discovery',
      () => ({
        postern_issuer_url: undefined,
        authorize_url: `${base}/oidc/auth`,
        token_url: `${base}/oidc/token`,
        userinfo_url: `${base}/oidc/me`,
        postern_token_auth_method: 'client_secret_basic',
      }),
      {
        ok: true,
        steps: [
          ['endpoints', true, /authorize_url answered HTTP 400; userinfo_url answered HTTP 401/],
          ['client_authentication', true, /authenticated with client_secret_basic/],
        ],
      },
    ],
    [
      'names the configured URL that fails',
      () => ({
        postern_issuer_url: undefined,
        authorize_url: `${base}/broken/auth`,
        token_url: `${base}/oidc/token`,
        userinfo_url: `${base}/oidc/me`,
      }),
      { ok: false, steps: [['endpoints', false, /authorize_url: HTTP 502/]] },
    ],
    [
      'names an unreachable token URL in the client authentication step',
      () => ({
        postern_issuer_url: undefined,
        authorize_url: `${base}/oidc/auth`,
        token_url: `${closedPortUrl}/token`,
        userinfo_url: `${base}/oidc/me`,
      }),
      {
        ok: false,
        steps: [
          ['endpoints', true, /answered/],
          ['client_authentication', false, /cannot reach .*\/token \(ECONNREFUSED\)/],
        ],
      },
    ],
  ])('%s', async (_title, overrides, expected) => {
    const report = await testIdpConnection(genericOidc(overrides()), TIMEOUT);
    expect(report.ok).toBe(expected.ok);
    expect(report.steps.map((step) => [step.step, step.ok])).toEqual(expected.steps.map(([step, ok]) => [step, ok]));
    report.steps.forEach((step, index) => {
      expect(step.detail).toMatch(expected.steps[index]?.[2] as RegExp);
    });
    expect(JSON.stringify(report)).not.toMatch(/secret-(123|456)|login-only-secret/);
  });
});
