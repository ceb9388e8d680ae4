// The admin JSON API (/api/v1) against real MariaDB: API-key guard (configured key and mailcow's
// api table), IdP settings with a write-only encrypted secret and test connection, mailbox
// templates, a mailbox's auth source (proved through the passdb) and app passwords.
// Test connection runs against panva's oidc-provider (generic OIDC) and, since no real Keycloak
// can run here, the Keycloak fake (test/support/fake-keycloak.ts; src/sources has the full matrix).
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSecretBox } from '../src/sources/secret-box.js';
import { startTestPostern, type TestPostern } from './support/env.js';
import { type FakeKeycloak, startFakeKeycloak } from './support/fake-keycloak.js';
import { seedAppPassword, seedDomain, seedMailbox } from './support/seed.js';

const API_KEY = 'config-api-key-0123456789abcdefghijklmnop';
const SECRET_KEY = 'secret-box-key-0123456789abcdefghijklmnopq';
const CLIENT_SECRET = 'kc-client-secret-7f3a9c';
const NEW_CLIENT_SECRET = 'kc-client-secret-rotated-41b2';
const MAILCOW_RW_KEY = 'MAILCOW-RW-KEY-ABCDEF-123456';
const MAILCOW_RO_KEY = 'MAILCOW-RO-KEY-ABCDEF-123456';
const MAILCOW_ELSEWHERE_KEY = 'MAILCOW-ELSEWHERE-KEY-123456';
const MAILCOW_INACTIVE_KEY = 'MAILCOW-INACTIVE-KEY-1234567';
const SECRETS = [CLIENT_SECRET, NEW_CLIENT_SECRET];
const RIP = '198.51.100.20';

let postern: TestPostern;
let keycloak: FakeKeycloak;
let keycloakUrl: string;
/** Every response body the API sent, to prove no secret ever left. */
const responseTexts: string[] = [];

interface ApiResponse {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON
  body: any;
  text: string;
}

async function api(
  method: string,
  path: string,
  options: { body?: unknown; key?: string | null; contentType?: string; headers?: Record<string, string> } = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...options.headers };
  const key = options.key === undefined ? API_KEY : options.key;
  if (key !== null) headers['x-api-key'] = key;
  if (options.body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  const response = await fetch(`${postern.webUrl}/api/v1${path}`, {
    method,
    headers,
    ...(options.body === undefined
      ? {}
      : { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) }),
  });
  const text = await response.text();
  responseTexts.push(text);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body, text };
}

function keycloakSettings(overrides: Record<string, unknown> = {}) {
  return {
    authsource: 'keycloak',
    server_url: keycloakUrl,
    realm: 'mail',
    version: '26.0.0',
    client_id: 'postern',
    client_secret: CLIENT_SECRET,
    redirect_url: 'https://mail.example.org/login/sso/callback',
    ...overrides,
  };
}

/** mysql2 hands JSON columns back parsed or as text, depending on the server's column type. */
function fromJson(value: unknown) {
  return typeof value === 'string' ? JSON.parse(value) : value;
}

async function idpRow(key: string): Promise<string | undefined> {
  const row = await postern.deps.db.one<{ value: string }>('SELECT value FROM identity_provider WHERE `key` = ?', [
    key,
  ]);
  return row?.value;
}

async function auditRows(action: string) {
  return postern.deps.db.many<{
    actor: string;
    action: string;
    target: string | null;
    detail: unknown;
    before_values: unknown;
    after_values: unknown;
    ip: string | null;
  }>(
    'SELECT actor, action, target, detail, before_values, after_values, ip FROM postern_audit WHERE action = ? ORDER BY id',
    [action],
  );
}

beforeAll(async () => {
  keycloak = await startFakeKeycloak({
    clients: [{ clientId: 'postern', secret: CLIENT_SECRET }],
    users: [
      { username: 'ada', email: 'ada@example.org', emailVerified: true, attributes: { mailcow_template: ['x'] } },
    ],
  });
  keycloakUrl = keycloak.url;

  postern = await startTestPostern('admin_api', {
    POSTERN_API_KEY: API_KEY,
    POSTERN_SECRET_KEY: SECRET_KEY,
    POSTERN_BCRYPT_COST: '5',
    POSTERN_IDP_TIMEOUT_MS: '3000',
  });
  const { db, hashPool } = postern.deps;
  await seedDomain(db, 'example.org');
  await seedMailbox(db, {
    username: 'alice@example.org',
    passwordHash: await hashPool.hash('alice local pw', 'BLF-CRYPT'),
  });
  await seedMailbox(db, { username: 'bob@example.org', passwordHash: await hashPool.hash('bob local pw', 'SSHA256') });
  for (const [key, allowFrom, access, active] of [
    [MAILCOW_RW_KEY, '127.0.0.1', 'rw', 1],
    [MAILCOW_RO_KEY, '10.0.0.0/8, 127.0.0.1', 'ro', 1],
    [MAILCOW_ELSEWHERE_KEY, '192.0.2.0/24', 'rw', 1],
    [MAILCOW_INACTIVE_KEY, '127.0.0.1', 'rw', 0],
  ] as const) {
    await db.execute('INSERT INTO api (api_key, allow_from, access, active) VALUES (?, ?, ?, ?)', [
      key,
      allowFrom,
      access,
      active,
    ]);
  }
});

afterAll(async () => {
  await postern?.destroy();
  await keycloak?.close();
});

describe('admin API key guard', () => {
  it.each([
    { who: 'a request without X-API-Key', key: null, method: 'GET', status: 401 },
    { who: 'a wrong key', key: 'not-the-key-0123456789abcdefghijkl', method: 'GET', status: 401 },
    { who: 'the configured key', key: API_KEY, method: 'GET', status: 200 },
    { who: 'a mailcow rw key allowed from 127.0.0.1', key: MAILCOW_RW_KEY, method: 'GET', status: 200 },
    { who: 'a mailcow ro key reading', key: MAILCOW_RO_KEY, method: 'GET', status: 200 },
    { who: 'a mailcow ro key writing', key: MAILCOW_RO_KEY, method: 'POST', status: 403 },
    {
      who: 'a mailcow key whose allow_from excludes 127.0.0.1',
      key: MAILCOW_ELSEWHERE_KEY,
      method: 'GET',
      status: 401,
    },
    { who: 'an inactive mailcow key', key: MAILCOW_INACTIVE_KEY, method: 'GET', status: 401 },
  ])('answers $status to $who', async ({ key, method, status }) => {
    const response = await api(method, '/templates', {
      key,
      ...(method === 'POST' ? { body: { name: 'guard-probe' } } : {}),
    });
    expect(response.status).toBe(status);
  });

  // The test client is 127.0.0.1, a trusted proxy by default (POSTERN_TRUSTED_PROXIES): behind the
  // shipped nginx, allow_from is checked against the browser's address nginx forwarded, as mailcow
  // checks its API clients' own address, not the proxy's.
  it.each([
    {
      who: 'a client nginx forwarded from inside allow_from',
      key: MAILCOW_ELSEWHERE_KEY,
      from: '192.0.2.9',
      status: 200,
    },
    { who: 'a client nginx forwarded from outside allow_from', key: MAILCOW_RW_KEY, from: '203.0.113.9', status: 401 },
  ])('answers $status to $who', async ({ key, from, status }) => {
    const response = await api('GET', '/templates', { key, headers: { 'x-forwarded-for': from } });
    expect(response.status).toBe(status);
  });

  it('answers 401, not 404, for an unknown path without a key, so the API cannot be mapped', async () => {
    const response = await api('GET', '/no-such-area', { key: null });
    expect(response.status).toBe(401);
  });

  it('refuses a read-only key on every kind of change', async () => {
    for (const [method, path] of [
      ['PUT', '/identity-provider'],
      ['DELETE', '/identity-provider'],
      ['POST', '/identity-provider/test'],
      ['PUT', '/mailboxes/alice@example.org/authsource'],
      ['DELETE', '/templates/1'],
    ] as const) {
      const response = await api(method, path, { key: MAILCOW_RO_KEY, body: {} });
      expect(response.status, `${method} ${path}`).toBe(403);
    }
  });
});

describe('identity provider settings', () => {
  it('reports state none before anything is configured', async () => {
    const response = await api('GET', '/identity-provider');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ state: 'none', problems: [], settings: null });
  });

  it('refuses to switch a mailbox to an IdP while none is configured', async () => {
    const response = await api('PUT', '/mailboxes/alice@example.org/authsource', { body: { authsource: 'keycloak' } });
    expect(response.status).toBe(409);
    expect(response.body.error.message).toMatch(/no identity provider is configured/);
  });

  it('stores Keycloak settings with the client secret encrypted and answers without it', async () => {
    const response = await api('PUT', '/identity-provider', { body: keycloakSettings({ periodic_sync: true }) });
    expect(response.status).toBe(200);
    expect(response.body.state).toBe('ok');
    expect(response.body.settings).toMatchObject({
      authsource: 'keycloak',
      realm: 'mail',
      periodic_sync: true,
      attribute_field: 'mailcow_template',
      client_secret: { set: true, encrypted: true },
    });
    expect(response.text).not.toContain(CLIENT_SECRET);
    const stored = await idpRow('client_secret');
    expect(stored).toBeDefined();
    expect(stored).not.toBe(CLIENT_SECRET);
    expect(stored).not.toContain(CLIENT_SECRET);
    expect(createSecretBox(SECRET_KEY).open(stored as string)).toBe(CLIENT_SECRET);
  });

  it('writes the change to the audit log as api:config without the secret', async () => {
    const [entry] = await auditRows('identity_provider.update');
    expect(entry).toMatchObject({ actor: 'api:config', target: 'identity_provider', ip: '127.0.0.1' });
    const detail = fromJson(entry?.detail);
    expect(detail).toMatchObject({ authsource: 'keycloak', client_secret: 'replaced' });
    expect(detail.changed).toEqual(expect.arrayContaining(['authsource', 'server_url', 'realm', 'client_id']));
    expect(JSON.stringify(detail)).not.toContain(CLIENT_SECRET);
  });

  it('reads the settings back with the secret reduced to {"set": true}', async () => {
    const response = await api('GET', '/identity-provider');
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      state: 'ok',
      problems: [],
      settings: { server_url: keycloakUrl, client_id: 'postern', client_secret: { set: true, encrypted: true } },
    });
    expect(response.text).not.toContain(CLIENT_SECRET);
  });

  it('keeps the stored secret when a PUT omits client_secret or sends GET\'s {"set": true} back', async () => {
    const { client_secret: _omitted, ...withoutSecret } = keycloakSettings({ periodic_sync: true, sync_interval: 30 });
    expect((await api('PUT', '/identity-provider', { body: withoutSecret })).status).toBe(200);
    const roundTrip = (await api('GET', '/identity-provider')).body.settings;
    expect((await api('PUT', '/identity-provider', { body: { ...roundTrip, import_users: true } })).status).toBe(200);
    expect(createSecretBox(SECRET_KEY).open((await idpRow('client_secret')) as string)).toBe(CLIENT_SECRET);
    expect(await idpRow('sync_interval')).toBe('30');
    expect(await idpRow('import_users')).toBe('1');
    const entries = await auditRows('identity_provider.update');
    const detail = fromJson(entries.at(-1)?.detail);
    expect(detail).toMatchObject({ client_secret: 'kept', changed: ['import_users'] });
    expect([fromJson(entries.at(-1)?.before_values), fromJson(entries.at(-1)?.after_values)]).toEqual([
      { import_users: '' },
      { import_users: '1' },
    ]);
  });

  it.each([
    { problem: 'a missing realm', body: () => keycloakSettings({ realm: undefined }), message: /realm/ },
    {
      problem: 'a server_url that is not a URL',
      body: () => keycloakSettings({ server_url: 'keycloak' }),
      message: /server_url: must be an http\(s\) URL/,
    },
    {
      problem: 'an unknown provider type',
      body: () => keycloakSettings({ authsource: 'saml' }),
      message: /authsource: must be one of keycloak, generic-oidc/,
    },
    {
      problem: 'an unknown key',
      body: () => keycloakSettings({ client_secrt: 'typo' }),
      message: /client_secrt: not a keycloak setting/,
    },
    { problem: 'a wrong type', body: () => keycloakSettings({ periodic_sync: 'yes' }), message: /periodic_sync/ },
    {
      problem: 'a mapping to a template that does not exist',
      body: () => keycloakSettings({ mappers: ['staff'], templates: ['Nope'] }),
      message: /templates\[0\]: no mailbox template named "Nope"/,
    },
    {
      problem: 'mappers and templates of different length',
      body: () => keycloakSettings({ mappers: ['a', 'b'], templates: ['Default'] }),
      message: /templates: needs one entry per mappers entry/,
    },
    {
      problem: 'a default_template that does not exist',
      body: () => keycloakSettings({ default_template: 'Nope' }),
      message: /default_template: no mailbox template named "Nope"/,
    },
    { problem: 'a body that is not an object', body: () => ['keycloak'], message: /body: must be a JSON object/ },
  ])('answers 400 naming the field for $problem', async ({ body, message }) => {
    const response = await api('PUT', '/identity-provider', { body: body() });
    expect(response.status).toBe(400);
    expect(response.body.error.message).toMatch(message);
  });

  it.each([
    { problem: 'malformed JSON', body: '{"authsource":', contentType: 'application/json', message: /not valid JSON/ },
    {
      problem: 'a form body',
      body: 'authsource=keycloak',
      contentType: 'application/x-www-form-urlencoded',
      message: /Content-Type must be application\/json/,
    },
  ])('answers 400 to $problem', async ({ body, contentType, message }) => {
    const response = await api('PUT', '/identity-provider', { body, contentType });
    expect(response.status).toBe(400);
    expect(response.body.error.message).toMatch(message);
  });

  it('tests unsaved settings with the stored secret when the body has none', async () => {
    const { client_secret: _omitted, ...withoutSecret } = keycloakSettings({ periodic_sync: true });
    const response = await api('POST', '/identity-provider/test', { body: withoutSecret });
    expect(response.status).toBe(200);
    expect(response.body.ok).toBe(true);
    expect(response.body.steps.map((step: { step: string; ok: boolean }) => [step.step, step.ok])).toEqual([
      ['discovery', true],
      ['jwks', true],
      ['client_credentials', true],
      ['admin_api', true],
    ]);
  });

  it('looks up ?sample_user= and says what its attribute maps to', async () => {
    const { client_secret: _omitted, ...withoutSecret } = keycloakSettings();
    const response = await api('POST', '/identity-provider/test?sample_user=ada@example.org', { body: withoutSecret });
    expect(response.status).toBe(200);
    expect(response.body.steps.slice(-2)).toEqual([
      { step: 'sample_user', ok: true, detail: 'found user "ada" <ada@example.org>: enabled, email verified' },
      {
        step: 'attribute_mapping',
        ok: false,
        detail:
          'the user has mailcow_template = "x"; no mapping matches and there is no default template: sign-in and sync would not create a mailbox',
      },
    ]);
  });

  it('says which step failed when the tested secret is wrong, without echoing it', async () => {
    const response = await api('POST', '/identity-provider/test', {
      body: keycloakSettings({ client_secret: NEW_CLIENT_SECRET }),
    });
    expect(response.status).toBe(200);
    expect(response.body.ok).toBe(false);
    expect(response.body.steps.at(-1)).toMatchObject({
      step: 'client_credentials',
      ok: false,
      detail: expect.stringMatching(/client secret rejected for client "postern" \(HTTP 401 unauthorized_client/),
    });
    expect(response.text).not.toContain(NEW_CLIENT_SECRET);
  });

  it('rejects a test body that fails validation with 400', async () => {
    const response = await api('POST', '/identity-provider/test', {
      body: keycloakSettings({ server_url: 'ftp://x' }),
    });
    expect(response.status).toBe(400);
    expect(response.body.error.message).toMatch(/server_url/);
  });

  it("refuses with 409 to change the provider type while mailboxes use the current one (mailcow's authsource_in_use)", async () => {
    await postern.deps.db.execute("UPDATE mailbox SET authsource = 'keycloak' WHERE username = 'bob@example.org'");
    const response = await api('PUT', '/identity-provider', {
      body: {
        authsource: 'generic-oidc',
        postern_issuer_url: `${keycloakUrl}/realms/mail`,
        client_id: 'postern',
        redirect_url: 'https://mail.example.org/login/sso/callback',
      },
    });
    expect(response.status).toBe(409);
    expect(response.body.error.message).toMatch(/authsource_in_use: 1 mailbox \(keycloak\)/);
    expect(await idpRow('authsource')).toBe('keycloak');
  });

  it('refuses with 409 to delete the provider while a mailbox still uses it', async () => {
    const response = await api('DELETE', '/identity-provider');
    expect(response.status).toBe(409);
    expect(response.body.error.message).toMatch(/authsource_in_use/);
    await postern.deps.db.execute("UPDATE mailbox SET authsource = 'mailcow' WHERE username = 'bob@example.org'");
  });
});

describe('mailbox auth source', () => {
  it('shows a mailbox with has_local_password and never its hash', async () => {
    const response = await api('GET', '/mailboxes/Alice@Example.org');
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      username: 'alice@example.org',
      authsource: 'mailcow',
      active: 1,
      quota: 1024 * 1024 * 1024,
      has_local_password: true,
      attributes: { imap_access: '1' },
    });
    expect(response.body).not.toHaveProperty('password');
    expect(response.text).not.toMatch(/\$2[aby]\$|\{BLF-CRYPT\}/);
  });

  it.each([
    { path: '/mailboxes/nobody@example.org', status: 404, message: /no mailbox nobody@example\.org/ },
    { path: '/mailboxes/not-an-address', status: 400, message: /username: must be a mailbox address/ },
  ])('answers $status for $path', async ({ path, status, message }) => {
    const response = await api('GET', path);
    expect(response.status).toBe(status);
    expect(response.body.error.message).toMatch(message);
  });

  it('switches to the IdP keeping the local hash, then back to mailcow where the old password works again', async () => {
    const login = () =>
      postern.passdb({ username: 'alice@example.org', password: 'alice local pw', real_rip: RIP, service: 'imap' });
    const hashBefore = (
      await postern.deps.db.one<{ password: string }>(
        "SELECT password FROM mailbox WHERE username = 'alice@example.org'",
      )
    )?.password;
    expect((await login()).status).toBe(200);

    const toIdp = await api('PUT', '/mailboxes/alice@example.org/authsource', { body: { authsource: 'keycloak' } });
    expect(toIdp.status).toBe(200);
    expect(toIdp.body).toMatchObject({ authsource: 'keycloak', has_local_password: true });
    expect((await login()).status).toBe(401);
    const hashWhileIdp = (
      await postern.deps.db.one<{ password: string }>(
        "SELECT password FROM mailbox WHERE username = 'alice@example.org'",
      )
    )?.password;
    expect(hashWhileIdp).toBe(hashBefore);

    const back = await api('PUT', '/mailboxes/alice@example.org/authsource', { body: { authsource: 'mailcow' } });
    expect(back.status).toBe(200);
    expect(back.body.authsource).toBe('mailcow');
    expect((await login()).status).toBe(200);

    const entries = await auditRows('mailbox.authsource');
    expect(entries.map((entry) => [entry.target, fromJson(entry.before_values), fromJson(entry.after_values)])).toEqual(
      [
        ['alice@example.org', { authsource: 'mailcow' }, { authsource: 'keycloak' }],
        ['alice@example.org', { authsource: 'keycloak' }, { authsource: 'mailcow' }],
      ],
    );
  });

  it.each([
    {
      body: { authsource: 'generic-oidc' },
      status: 409,
      message: /configured identity provider is keycloak, not generic-oidc/,
    },
    { body: { authsource: 'ldap' }, status: 400, message: /authsource: must be mailcow, keycloak or generic-oidc/ },
    { body: {}, status: 400, message: /authsource/ },
    { body: { authsource: 'mailcow', password: 'x' }, status: 400, message: /password/ },
  ])('answers $status to $body', async ({ body, status, message }) => {
    const response = await api('PUT', '/mailboxes/alice@example.org/authsource', { body });
    expect(response.status).toBe(status);
    expect(response.body.error.message).toMatch(message);
  });

  it('records the actor of a mailcow api key as api:mailcow-api', async () => {
    const response = await api('PUT', '/mailboxes/bob@example.org/authsource', {
      key: MAILCOW_RW_KEY,
      body: { authsource: 'keycloak' },
    });
    expect(response.status).toBe(200);
    const entries = await auditRows('mailbox.authsource');
    expect(entries.at(-1)).toMatchObject({ actor: 'api:mailcow-api', target: 'bob@example.org' });
    await api('PUT', '/mailboxes/bob@example.org/authsource', { body: { authsource: 'mailcow' } });
  });
});

describe('mailbox templates', () => {
  let staffId: number;

  it("lists mailcow's seeded Default template", async () => {
    const response = await api('GET', '/templates');
    expect(response.status).toBe(200);
    expect(response.body.templates).toEqual([
      expect.objectContaining({ name: 'Default', attributes: expect.objectContaining({ quota: 0, imap_access: 1 }) }),
    ]);
  });

  it("creates a template on top of Default's attributes, stored as numbers like mailcow's", async () => {
    const response = await api('POST', '/templates', {
      body: {
        name: 'staff',
        attributes: { quota_mib: 2048, imap_access: '0', pop3_access: false, active: 2, tags: ['staff'] },
      },
    });
    expect(response.status).toBe(201);
    staffId = response.body.id;
    expect(response.body).toMatchObject({
      name: 'staff',
      attributes: {
        quota: 2048 * 1024 * 1024,
        imap_access: 0,
        pop3_access: 0,
        smtp_access: 1,
        active: 2,
        tags: ['staff'],
      },
    });
    expect(response.body.attributes).not.toHaveProperty('quota_mib');
    const row = await postern.deps.db.one<{ attributes: unknown; type: string }>(
      'SELECT type, attributes FROM templates WHERE id = ?',
      [staffId],
    );
    expect(row?.type).toBe('mailbox');
    expect(fromJson(row?.attributes)).toMatchObject({
      quota: 2147483648,
      imap_access: 0,
      sogo_access: 1,
      rl_frame: 's',
    });
    const [entry] = await auditRows('template.create');
    expect(entry).toMatchObject({ actor: 'api:config', target: `template:${staffId}` });
    expect(fromJson(entry?.after_values)).toMatchObject({ name: 'staff', quota: 2147483648, imap_access: 0 });
  });

  it.each([
    { problem: 'a negative quota', body: { name: 't1', attributes: { quota: -1 } }, message: /attributes\.quota/ },
    {
      problem: 'a flag that is not 0 or 1',
      body: { name: 't1', attributes: { imap_access: 5 } },
      message: /attributes\.imap_access: must be 0 or 1/,
    },
    {
      problem: 'active 3',
      body: { name: 't1', attributes: { active: 3 } },
      message: /attributes\.active: must be 0, 1 or 2/,
    },
    {
      problem: 'both quota and quota_mib',
      body: { name: 't1', attributes: { quota: 1, quota_mib: 1 } },
      message: /attributes\.quota_mib: give quota \(bytes\) or quota_mib, not both/,
    },
    {
      problem: 'an unknown attribute',
      body: { name: 't1', attributes: { imap_acces: 1 } },
      message: /attributes: Unrecognized key.*imap_acces/,
    },
    {
      problem: 'a bad quarantine_notification',
      body: { name: 't1', attributes: { quarantine_notification: 'monthly' } },
      message: /attributes\.quarantine_notification/,
    },
    { problem: 'an empty name', body: { name: '  ', attributes: {} }, message: /name: must not be empty/ },
    { problem: 'a missing name', body: { attributes: {} }, message: /name/ },
  ])('answers 400 naming the field for $problem', async ({ body, message }) => {
    const response = await api('POST', '/templates', { body });
    expect(response.status).toBe(400);
    expect(response.body.error.message).toMatch(message);
  });

  it('refuses a second template with the same name', async () => {
    const response = await api('POST', '/templates', { body: { name: 'staff' } });
    expect(response.status).toBe(409);
    expect(response.body.error.message).toMatch(/already exists/);
  });

  it.each([
    { path: '/templates/abc', status: 400, message: /id: must be a positive whole number/ },
    { path: '/templates/999999', status: 404, message: /no mailbox template with id 999999/ },
  ])('answers $status for $path', async ({ path, status, message }) => {
    const response = await api('GET', path);
    expect(response.status).toBe(status);
    expect(response.body.error.message).toMatch(message);
  });

  it('merges changed attributes into the stored ones and renames', async () => {
    const response = await api('PUT', `/templates/${staffId}`, {
      body: { name: 'staff-2', attributes: { imap_access: 1, quota: 1000 } },
    });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      id: staffId,
      name: 'staff-2',
      attributes: { imap_access: 1, pop3_access: 0, quota: 1000, active: 2 },
    });
    expect((await api('GET', `/templates/${staffId}`)).body.name).toBe('staff-2');
    const [entry] = await auditRows('template.update');
    expect([fromJson(entry?.before_values), fromJson(entry?.after_values)]).toEqual([
      { name: 'staff', imap_access: 0, quota: 2048 * 1024 * 1024 },
      { name: 'staff-2', imap_access: 1, quota: 1000 },
    ]);
  });

  it.each([
    { action: 'renamed', method: 'PUT', body: { name: 'Standard' } },
    { action: 'deleted', method: 'DELETE', body: undefined },
  ])('refuses with 409 when the Default template would be $action', async ({ action, method, body }) => {
    const defaultId = (await api('GET', '/templates')).body.templates.find(
      (t: { name: string }) => t.name === 'Default',
    ).id;
    const response = await api(method, `/templates/${defaultId}`, body === undefined ? {} : { body });
    expect(response.status).toBe(409);
    expect(response.body.error.message).toBe(`the template "Default" cannot be ${action}`);
  });

  it('refuses to delete or rename a template the IdP mappings or default_template use, naming where', async () => {
    const saved = await api('PUT', '/identity-provider', {
      body: keycloakSettings({ mappers: ['staff'], templates: ['staff-2'], default_template: 'staff-2' }),
    });
    expect(saved.status).toBe(200);
    const deletion = await api('DELETE', `/templates/${staffId}`);
    expect(deletion.status).toBe(409);
    expect(deletion.body.error.message).toBe(
      'the template "staff-2" cannot be deleted: the identity provider uses it (mapping mailcow_template="staff", default_template)',
    );
    const rename = await api('PUT', `/templates/${staffId}`, { body: { name: 'staff-3' } });
    expect(rename.status).toBe(409);
    expect(rename.body.error.message).toMatch(/cannot be renamed: the identity provider uses it/);
  });

  it('deletes an unused template', async () => {
    expect((await api('PUT', '/identity-provider', { body: keycloakSettings() })).status).toBe(200);
    const response = await api('DELETE', `/templates/${staffId}`);
    expect(response.status).toBe(200);
    expect((await api('GET', `/templates/${staffId}`)).status).toBe(404);
    const [entry] = await auditRows('template.delete');
    expect(entry).toMatchObject({ target: `template:${staffId}` });
  });
});

describe('admin webmail links', () => {
  it('are refused while POSTERN_ADMIN_WEBMAIL is off (the default), and the mailbox is untouched', async () => {
    const response = await api('POST', '/mailboxes/bob@example.org/webmail-link');
    expect(response.status).toBe(403);
    expect(JSON.stringify(response.body)).toContain('POSTERN_ADMIN_WEBMAIL');
    const links = await postern.deps.db.many("SELECT 1 FROM postern_audit WHERE action LIKE 'sogo.admin%'");
    expect(links).toHaveLength(0);
  });
});

describe('app passwords of a mailbox', () => {
  let ids: number[] = [];

  beforeAll(async () => {
    const { db, hashPool } = postern.deps;
    const hash = await hashPool.hash('app secret 1', 'SSHA256');
    ids = [
      await seedAppPassword(db, {
        mailbox: 'alice@example.org',
        passwordHash: hash,
        protocols: ['imap_access', 'smtp_access'],
        name: 'Phone',
      }),
      await seedAppPassword(db, {
        mailbox: 'alice@example.org',
        passwordHash: hash,
        protocols: ['dav_access'],
        name: 'Calendar',
        active: false,
      }),
      await seedAppPassword(db, {
        mailbox: 'bob@example.org',
        passwordHash: hash,
        protocols: ['imap_access'],
        name: 'Bob laptop',
      }),
    ];
  });

  it('lists them with protocols and never a hash', async () => {
    const response = await api('GET', '/mailboxes/alice@example.org/app-passwords');
    expect(response.status).toBe(200);
    expect(response.body.app_passwords).toEqual([
      {
        id: ids[0],
        name: 'Phone',
        protocols: ['imap_access', 'smtp_access'],
        active: true,
        created: expect.any(String),
      },
      { id: ids[1], name: 'Calendar', protocols: ['dav_access'], active: false, created: expect.any(String) },
    ]);
    expect(response.text).not.toMatch(/\{SSHA256\}|password"/);
  });

  it('deletes one, writes the audit log, and answers 404 the second time', async () => {
    const first = await api('DELETE', `/mailboxes/alice@example.org/app-passwords/${ids[0]}`);
    expect(first.status).toBe(200);
    expect((await api('DELETE', `/mailboxes/alice@example.org/app-passwords/${ids[0]}`)).status).toBe(404);
    const remaining = (await api('GET', '/mailboxes/alice@example.org/app-passwords')).body.app_passwords;
    expect(remaining.map((entry: { id: number }) => entry.id)).toEqual([ids[1]]);
    const [entry] = await auditRows('app_password.delete');
    expect(entry).toMatchObject({ actor: 'api:config', target: 'alice@example.org' });
  });

  it.each([
    {
      what: "another mailbox's app password",
      path: () => `/mailboxes/alice@example.org/app-passwords/${ids[2]}`,
      status: 404,
    },
    { what: 'an id that is not a number', path: () => '/mailboxes/alice@example.org/app-passwords/x', status: 400 },
    { what: 'an unknown mailbox', path: () => `/mailboxes/nobody@example.org/app-passwords/${ids[1]}`, status: 404 },
  ])('answers $status when deleting $what', async ({ path, status }) => {
    expect((await api('DELETE', path())).status).toBe(status);
  });
});

describe('deleting the identity provider', () => {
  it('deletes it once no mailbox uses it, and audits the delete', async () => {
    const response = await api('DELETE', '/identity-provider');
    expect(response.status).toBe(200);
    expect((await api('GET', '/identity-provider')).body.state).toBe('none');
    expect((await api('DELETE', '/identity-provider')).status).toBe(404);
    const [entry] = await auditRows('identity_provider.delete');
    expect(entry).toMatchObject({ actor: 'api:config', target: 'identity_provider' });
  });

  it('reports rows mailcow wrote but postern cannot use as invalid, secrets reduced to {"set": true}', async () => {
    const { db } = postern.deps;
    // mailcow stores the secret in plain text; a secret sealed under another key cannot be opened.
    for (const [key, value] of [
      ['authsource', 'keycloak'],
      ['realm', 'mail'],
      ['client_id', 'postern'],
      ['client_secret', CLIENT_SECRET],
      ['access_token', 'cached-service-account-token'],
    ] as const) {
      await db.execute('INSERT INTO identity_provider (`key`, value) VALUES (?, ?)', [key, value]);
    }
    const plain = await api('GET', '/identity-provider');
    expect(plain.status).toBe(200);
    expect(plain.body).toMatchObject({
      state: 'invalid',
      authsource: 'keycloak',
      settings: null,
      stored: { realm: 'mail', client_secret: { set: true }, access_token: { set: true } },
    });
    expect(plain.body.problems).toEqual(expect.arrayContaining([expect.stringMatching(/^server_url: /)]));
    expect(plain.text).not.toContain('cached-service-account-token');

    const foreign = createSecretBox('another-secret-key-0123456789abcdefghij').seal(CLIENT_SECRET);
    await db.execute("UPDATE identity_provider SET value = ? WHERE `key` = 'client_secret'", [foreign]);
    const sealed = await api('GET', '/identity-provider');
    expect(sealed.body.problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/^client_secret: a stored secret cannot be decrypted/)]),
    );
    await db.execute('DELETE FROM identity_provider');
  });

  it('never sent a client secret in any response of this suite', () => {
    expect(responseTexts.length).toBeGreaterThan(50);
    for (const text of responseTexts) for (const secret of SECRETS) expect(text).not.toContain(secret);
  });

  it('never wrote a client secret into the audit log', async () => {
    const rows = await postern.deps.db.many<{ detail: unknown }>('SELECT detail FROM postern_audit');
    const all = JSON.stringify(rows);
    for (const secret of SECRETS) expect(all).not.toContain(secret);
  });
});

describe("test connection against panva's oidc-provider", () => {
  let server: Server;
  let issuer: string;

  beforeAll(async () => {
    server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const redirect = {
      redirect_uris: ['https://mail.example.org/login/sso/callback'],
      response_types: ['code' as const],
    };
    const provider = new Provider(issuer, {
      clients: [
        {
          client_id: 'mail',
          client_secret: 'mail-client-secret',
          grant_types: ['authorization_code', 'client_credentials'],
          ...redirect,
        },
        { client_id: 'login', client_secret: 'login-client-secret', grant_types: ['authorization_code'], ...redirect },
      ],
      features: { clientCredentials: { enabled: true } },
      ttl: { ClientCredentials: 600 },
    });
    server.on('request', provider.callback());
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  it.each([
    {
      who: 'a client allowed the client_credentials grant',
      id: 'mail',
      secret: 'mail-client-secret',
      ok: true,
      detail: /authenticated with client_secret_post .*refused as expected/,
    },
    {
      who: 'a login-only client (no client_credentials grant): the sign-in request authenticates it',
      id: 'login',
      secret: 'login-client-secret',
      ok: true,
      detail: /authenticated with client_secret_post .*invalid_grant/,
    },
    {
      who: 'a wrong secret',
      id: 'mail',
      secret: 'not-the-mail-secret',
      ok: false,
      detail: /client credentials rejected with client_secret_post .*invalid_client/,
    },
  ])('reports ok=$ok for $who', async ({ id, secret, ok, detail }) => {
    const response = await api('POST', '/identity-provider/test', {
      body: {
        authsource: 'generic-oidc',
        postern_issuer_url: issuer,
        client_id: id,
        client_secret: secret,
        redirect_url: 'https://mail.example.org/login/sso/callback',
      },
    });
    expect(response.status).toBe(200);
    expect(response.body.ok).toBe(ok);
    expect(response.body.steps[0]).toMatchObject({ step: 'discovery', ok: true });
    // The real provider's JWK set: its signing key(s).
    expect(response.body.steps[1]).toMatchObject({
      step: 'jwks',
      ok: true,
      detail: expect.stringMatching(/for signatures/),
    });
    expect(response.body.steps[2]).toMatchObject({
      step: 'client_authentication',
      ok,
      detail: expect.stringMatching(detail),
    });
    expect(response.text).not.toContain(secret);
  });
});

describe('without POSTERN_SECRET_KEY', () => {
  let bare: TestPostern;

  beforeAll(async () => {
    bare = await startTestPostern('admin_api_nokey', { POSTERN_API_KEY: API_KEY });
  });

  afterAll(async () => {
    await bare?.destroy();
  });

  it('refuses to store IdP settings with 400 naming the missing variable', async () => {
    const response = await fetch(`${bare.webUrl}/api/v1/identity-provider`, {
      method: 'PUT',
      headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
      body: JSON.stringify(keycloakSettings()),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { message: string } };
    expect(body.error.message).toMatch(/POSTERN_SECRET_KEY is not set/);
    const rows = await bare.deps.db.many('SELECT `key` FROM identity_provider');
    expect(rows).toEqual([]);
  });
});
