// The Keycloak fake against the behaviour of Keycloak's own code (cited per behaviour in
// test/support/fake-keycloak.ts): if the fake drifts, these fail before a sync test is fooled.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeKeycloak, type FakeKeycloakUser, startFakeKeycloak } from './support/fake-keycloak.js';

let kc: FakeKeycloak;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const users: FakeKeycloakUser[] = [
  {
    username: 'Alice',
    email: 'Alice@Example.org',
    emailVerified: true,
    attributes: { mailcow_template: ['premium'], nickname: ['al'] },
  },
  { username: 'bob', email: 'bob@example.org', enabled: false },
  { username: 'Zed', email: 'Zed@Example.org', federated: true },
  { username: 'Yann', email: 'Yann@Example.org', federated: true },
  { username: 'carol', email: 'carol@example.org', firstName: 'Carol', attributes: { department: ['sales'] } },
];

async function token(clientId = 'postern', secret = 'postern-secret', fake = kc): Promise<string> {
  const response = await fetch(`${fake.url}/realms/mail/protocol/openid-connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { access_token: string }).access_token;
}

async function admin(path: string, bearer?: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${kc.url}/admin/realms/mail${path}`, {
    headers: { authorization: `Bearer ${bearer ?? (await token())}` },
  });
  return { status: response.status, body: await response.json() };
}

async function usernames(query: string): Promise<string[]> {
  const { status, body } = await admin(`/users${query}`);
  expect(status).toBe(200);
  return (body as { username: string }[]).map((user) => user.username);
}

beforeAll(async () => {
  kc = await startFakeKeycloak({
    users,
    clients: [
      { clientId: 'postern', secret: 'postern-secret' },
      { clientId: 'login-only', secret: 'login-secret', serviceAccountsEnabled: false },
      { clientId: 'off', secret: 'off-secret', enabled: false },
      { clientId: 'query-only', secret: 'q', roles: ['query-users'] },
    ],
  });
});

afterAll(async () => {
  await kc?.close();
});

beforeEach(() => {
  kc.setUsers(users);
  kc.onUsersRequest(undefined);
});

describe('the fake token endpoint', () => {
  it.each([
    ['a wrong secret', 'postern', 'wrong', 401, 'unauthorized_client', 'Invalid client or Invalid client credentials'],
    ['an unknown client', 'nobody', 'x', 401, 'invalid_client', 'Invalid client or Invalid client credentials'],
    ['a disabled client', 'off', 'off-secret', 401, 'invalid_client', 'Invalid client or Invalid client credentials'],
    [
      'a client without service account',
      'login-only',
      'login-secret',
      401,
      'unauthorized_client',
      'Client not enabled to retrieve service account',
    ],
    ['no client id', '', '', 400, 'invalid_client', 'Missing client_id parameter'],
  ])('answers %s as Keycloak does', async (_name, clientId, secret, status, error, description) => {
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (clientId) form.set('client_id', clientId);
    if (secret) form.set('client_secret', secret);
    const response = await fetch(`${kc.url}/realms/mail/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form,
    });
    expect(response.status).toBe(status);
    expect(await response.json()).toEqual({ error, error_description: description });
  });

  it.each([
    ['a grant Keycloak does not know', 'urn:example:unknown', 'unsupported_grant_type', 'Unsupported grant_type'],
    ['no grant', undefined, 'invalid_request', 'Missing form parameter: grant_type'],
  ])(
    'checks the grant type before the client: %s with a wrong secret is a 400',
    async (_name, grant, error, description) => {
      const form = new URLSearchParams({ client_id: 'postern', client_secret: 'wrong' });
      if (grant) form.set('grant_type', grant);
      const response = await fetch(`${kc.url}/realms/mail/protocol/openid-connect/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form,
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error, error_description: description });
    },
  );

  it('authenticates the client first for a grant Keycloak knows (authorization_code)', async () => {
    const post = (form: Record<string, string>) =>
      fetch(`${kc.url}/realms/mail/protocol/openid-connect/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: 'made-up', ...form }),
      });
    const wrong = await post({ client_id: 'postern', client_secret: 'wrong' });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: 'unauthorized_client' });
    const right = await post({ client_id: 'postern', client_secret: 'postern-secret' });
    expect(right.status).toBe(400);
    expect(await right.json()).toEqual({ error: 'invalid_grant', error_description: 'Code not valid' });
  });

  it('answers routing failures with the default message of the JAX-RS exception, as KeycloakErrorHandler does', async () => {
    const tokenUrl = `${kc.url}/realms/mail/protocol/openid-connect/token`;
    const get = await fetch(tokenUrl);
    expect([get.status, await get.json()]).toEqual([405, { error: 'HTTP 405 Method Not Allowed' }]);
    const json = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials' }),
    });
    expect([json.status, await json.json()]).toEqual([415, { error: 'HTTP 415 Unsupported Media Type' }]);
    const nowhere = await fetch(`${kc.url}/realms/mail/nothing-here`);
    expect([nowhere.status, await nowhere.json()]).toEqual([404, { error: 'HTTP 404 Not Found' }]);
    expect(await admin('/nothing-here')).toEqual({ status: 404, body: { error: 'HTTP 404 Not Found' } });
  });

  it('accepts HTTP Basic with a form-encoded secret', async () => {
    const basic = Buffer.from(`postern:${encodeURIComponent('postern-secret')}`).toString('base64');
    const response = await fetch(`${kc.url}/realms/mail/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` },
      body: 'grant_type=client_credentials',
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ token_type: 'Bearer', refresh_expires_in: 0 });
  });

  it('serves the realm discovery document', async () => {
    const response = await fetch(`${kc.url}/realms/mail/.well-known/openid-configuration`);
    expect(await response.json()).toMatchObject({
      issuer: `${kc.url}/realms/mail`,
      token_endpoint: `${kc.url}/realms/mail/protocol/openid-connect/token`,
      token_endpoint_auth_methods_supported: expect.arrayContaining(['client_secret_basic', 'client_secret_post']),
    });
  });
});

describe('the fake users resource', () => {
  it('stores local usernames and emails in lower case with random UUIDs; federated users keep their case, have StorageId ids and come last in the provider order', async () => {
    const { body } = await admin('/users');
    const listed = body as { id: string; username: string; email?: string }[];
    expect(listed.map((user) => [user.username, user.email])).toEqual([
      ['alice', 'alice@example.org'],
      ['bob', 'bob@example.org'],
      ['carol', 'carol@example.org'],
      // The provider's order (Zed before Yann), not sorted by username.
      ['Zed', 'Zed@Example.org'],
      ['Yann', 'Yann@Example.org'],
    ]);
    for (const user of listed.slice(0, 3)) expect(user.id).toMatch(UUID);
    const component = listed[3]?.id.split(':')[1] ?? '';
    expect(component).toMatch(UUID);
    expect(listed.slice(3).map((user) => user.id)).toEqual([`f:${component}:Zed`, `f:${component}:Yann`]);
    const other = await startFakeKeycloak({ users });
    try {
      const response = await fetch(`${other.url}/admin/realms/mail/users`, {
        headers: {
          authorization: `Bearer ${await token('postern', 'postern-secret', other)}`,
        },
      });
      const ids = ((await response.json()) as { id: string }[]).map((user) => user.id);
      expect(ids).not.toEqual(listed.map((user) => user.id));
    } finally {
      await other.close();
    }
  });

  it('hides attributes the user profile does not declare (Keycloak 24+) and omits attributes in brief form', async () => {
    const full = (await admin('/users?username=alice&exact=true')).body as { attributes?: unknown }[];
    expect(full[0]?.attributes).toEqual({ mailcow_template: ['premium'] });
    const brief = (await admin('/users?username=alice&exact=true&briefRepresentation=true')).body as object[];
    expect(brief[0]).not.toHaveProperty('attributes');
    const open = await startFakeKeycloak({ users, userProfile: { unmanagedAttributePolicy: 'ENABLED' } });
    try {
      const response = await fetch(`${open.url}/admin/realms/mail/users?username=alice&exact=true`, {
        headers: { authorization: `Bearer ${await token('postern', 'postern-secret', open)}` },
      });
      expect(((await response.json()) as { attributes?: unknown }[])[0]?.attributes).toEqual({
        mailcow_template: ['premium'],
        nickname: ['al'],
      });
    } finally {
      await open.close();
    }
  });

  it('has no snapshot: a user deleted between two page requests shifts the next one out of the second page', async () => {
    kc.onUsersRequest((request) => {
      if (request.kind === 'list' && request.query.get('first') === '2') kc.deleteUser('alice');
    });
    const page1 = await usernames('?first=0&max=2');
    const page2 = await usernames('?first=2&max=2');
    expect(page1).toEqual(['alice', 'bob']);
    // carol moved to position 1, so neither page returned her.
    expect(page2).toEqual(['Zed', 'Yann']);
  });

  it('leaves the service-account user out of the listing and count but finds it by a field search and by id', async () => {
    const account = kc.serviceAccountUser('postern');
    expect(account?.username).toBe('service-account-postern');
    expect(await usernames('')).not.toContain('service-account-postern');
    expect((await admin('/users/count')).body).toBe(5);
    expect(await usernames('?username=service-account-postern')).toEqual(['service-account-postern']);
    expect(await usernames('?search=service')).toEqual([]);
    expect((await admin(`/users/${account?.id}`)).body).toMatchObject({ username: 'service-account-postern' });
  });

  it('reads max=-1 as no limit and answers 404 to a first that is not a number', async () => {
    expect(await usernames('?max=-1')).toHaveLength(5);
    expect(await usernames('?first=3&max=-1')).toEqual(['Zed', 'Yann']);
    expect(await admin('/users?first=abc')).toEqual({ status: 404, body: { error: 'HTTP 404 Not Found' } });
  });

  it('searches by prefix, wildcard and exact value, by field substring, and by attribute with q', async () => {
    expect(await usernames('?search=ca')).toEqual(['carol']);
    expect(await usernames('?search=*example*')).toEqual(['alice', 'bob', 'carol', 'Zed', 'Yann']);
    expect(await usernames('?search=%22carol%40example.org%22')).toEqual(['carol']);
    expect(await usernames('?email=EXAMPLE')).toEqual(['alice', 'bob', 'carol', 'Zed', 'Yann']);
    expect(await usernames('?email=bob%40example.org&exact=true')).toEqual(['bob']);
    expect(await usernames('?q=department:sales')).toEqual(['carol']);
    expect(await usernames('?enabled=false')).toEqual(['bob']);
    expect((await admin('/users/count?search=ca')).body).toBe(1);
  });

  it('answers /users/{id} with the user or 404 User not found', async () => {
    const carol = kc.findUser('carol');
    expect((await admin(`/users/${carol?.id}`)).body).toMatchObject({ username: 'carol', firstName: 'Carol' });
    expect(await admin('/users/00000000-0000-4000-a000-000000000000')).toEqual({
      status: 404,
      body: { error: 'User not found' },
    });
  });

  it('checks the token before the realm, and lists nothing for query-users alone', async () => {
    const none = await fetch(`${kc.url}/admin/realms/nope/users`);
    expect(none.status).toBe(401);
    const withToken = await fetch(`${kc.url}/admin/realms/nope/users`, {
      headers: { authorization: `Bearer ${await token()}` },
    });
    expect([withToken.status, await withToken.json()]).toEqual([404, { error: 'Realm not found.' }]);
    expect((await admin('/users', await token('query-only', 'q'))).body).toEqual([]);
  });
});
