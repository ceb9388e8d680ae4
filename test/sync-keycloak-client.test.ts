// The Keycloak Admin REST client against the fake Keycloak: token handling, paging, retries and
// the errors an operator must be able to act on.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createKeycloakAdminClient,
  type KeycloakAdminError,
  type KeycloakAdminOptions,
} from '../src/sources/keycloak-admin.js';
import {
  type FakeKeycloak,
  type FakeKeycloakUser,
  generatedDirectory,
  startFakeKeycloak,
} from './support/fake-keycloak.js';

let kc: FakeKeycloak;
const sleeps: number[] = [];

const users: FakeKeycloakUser[] = [
  {
    username: 'alice',
    email: 'alice@example.org',
    firstName: 'Alice',
    lastName: 'Doe',
    attributes: { mailcow_template: ['premium'], mailcow_password: ['{PLAIN}x'] },
  },
  { username: 'bob', email: 'Bob@Example.org', enabled: false },
  { username: 'carol', email: 'carol@example.org' },
  { username: 'dave', email: 'dave@example.org' },
  { username: 'erin' },
];

function client(overrides: Partial<KeycloakAdminOptions> = {}) {
  return createKeycloakAdminClient({
    serverUrl: kc.url,
    realm: 'mail',
    clientId: 'postern',
    clientSecret: 'postern-secret',
    timeoutMs: 2_000,
    // Record the backoff instead of sleeping through it.
    sleep: async (ms) => void sleeps.push(ms),
    ...overrides,
  });
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

async function failure(promise: Promise<unknown>): Promise<KeycloakAdminError> {
  try {
    await promise;
  } catch (error) {
    return error as KeycloakAdminError;
  }
  throw new Error('expected a failure');
}

beforeAll(async () => {
  kc = await startFakeKeycloak({
    users,
    clients: [
      { clientId: 'postern', secret: 'postern-secret' },
      { clientId: 'no-roles', secret: 's', roles: [] },
      { clientId: 'query-only', secret: 's', roles: ['query-users'] },
      { clientId: 'spaced id', secret: 'p@ss: wörd+' },
    ],
  });
});

afterAll(async () => {
  await kc?.close();
});

beforeEach(() => {
  kc.setUsers(users);
  kc.requests.length = 0;
  kc.counts.token = 0;
  kc.counts.users = 0;
  sleeps.length = 0;
});

describe('Keycloak admin client: listing users', () => {
  it('pages with first/max until a short page, with full representations (attributes)', async () => {
    const pages = await collect(client({ pageSize: 2 }).listUserPages());
    expect(pages.map((page) => page.map((user) => user.username))).toEqual([
      ['alice', 'bob'],
      ['carol', 'dave'],
      ['erin'],
    ]);
    const listing = kc.requests.filter((request) => request.path.endsWith('/users'));
    expect(
      listing.map((request) => [request.query.first, request.query.max, request.query.briefRepresentation]),
    ).toEqual([
      ['0', '2', 'false'],
      ['2', '2', 'false'],
      ['4', '2', 'false'],
    ]);
    expect(pages[0]?.[0]).toEqual({
      id: expect.any(String),
      username: 'alice',
      email: 'alice@example.org',
      emailVerified: false,
      enabled: true,
      firstName: 'Alice',
      lastName: 'Doe',
      createdTimestamp: expect.any(Number),
      attributes: { mailcow_template: ['premium'], mailcow_password: ['{PLAIN}x'] },
    });
    expect(pages[0]?.[1]?.enabled).toBe(false);
  });

  it('asks for one more (empty) page when the last page is exactly full', async () => {
    kc.setUsers(users.slice(0, 4));
    const all = await collect(client({ pageSize: 2 }).listUsers());
    expect(all).toHaveLength(4);
    expect(kc.counts.users).toBe(3);
  });

  it('uses max=100 pages by default and one token for the whole listing', async () => {
    kc.setUsers(
      generatedDirectory(250, (i) => ({ username: `u${String(i).padStart(5, '0')}`, email: `u${i}@example.org` })),
    );
    const pages = await collect(client().listUserPages());
    expect(pages.map((page) => page.length)).toEqual([100, 100, 50]);
    expect(kc.counts.token).toBe(1);
  });

  it('omits attributes with briefRepresentation', async () => {
    const [page] = await collect(client().listUserPages({ briefRepresentation: true }));
    expect(page?.[0]?.attributes).toBeUndefined();
    expect(page?.[0]?.email).toBe('alice@example.org');
  });

  it('sends form-encoded Basic credentials (RFC 6749 §2.3.1), so odd ids and secrets work', async () => {
    kc.tokenClientAuth.length = 0;
    const pages = await collect(client({ clientId: 'spaced id', clientSecret: 'p@ss: wörd+' }).listUserPages());
    expect(pages.flat()).toHaveLength(5);
    expect(kc.tokenClientAuth).toEqual(['basic']);
  });

  it('posts id and secret in the form body with client_secret_post instead of HTTP Basic', async () => {
    kc.tokenClientAuth.length = 0;
    const pages = await collect(
      client({
        clientId: 'spaced id',
        clientSecret: 'p@ss: wörd+',
        clientAuthMethod: 'client_secret_post',
      }).listUserPages(),
    );
    expect(pages.flat()).toHaveLength(5);
    expect(kc.tokenClientAuth).toEqual(['post']);
  });
});

describe('Keycloak admin client: retries', () => {
  it('retries a 500 with backoff and then succeeds', async () => {
    kc.injectFaults({ endpoint: 'users', status: 500 }, { endpoint: 'users', status: 502 });
    const all = await collect(client().listUsers());
    expect(all).toHaveLength(5);
    expect(sleeps).toHaveLength(2);
    expect(sleeps[1]).toBeGreaterThanOrEqual(250);
  });

  it('honours Retry-After on 429', async () => {
    kc.injectFaults({ endpoint: 'users', status: 429, retryAfterSeconds: 2 });
    await collect(client().listUsers());
    expect(sleeps).toEqual([2_000]);
  });

  it('retries a dropped connection', async () => {
    kc.injectFaults({ endpoint: 'users', reset: true });
    expect(await collect(client().listUsers())).toHaveLength(5);
    expect(sleeps).toHaveLength(1);
  });

  it('gives up after the bounded number of attempts with the status in the message', async () => {
    kc.injectFaults(...Array.from({ length: 4 }, () => ({ endpoint: 'users' as const, status: 503 })));
    const error = await failure(collect(client().listUsers()));
    expect(error).toMatchObject({ code: 'backend_unavailable', failure: 'http_error', httpStatus: 503 });
    expect(error.message).toContain('Received HTTP 503');
    expect(sleeps).toHaveLength(3);
  });

  it('reports a timeout as unreachable', async () => {
    kc.injectFaults({ endpoint: 'users', delayMs: 400 }, { endpoint: 'users', delayMs: 400 });
    const error = await failure(collect(client({ timeoutMs: 100, retry: { attempts: 2 } }).listUsers()));
    expect(error).toMatchObject({ failure: 'unreachable' });
    expect(error.message).toContain('timed out after 100 ms');
  });

  it('reports a Keycloak that is not listening as unreachable', async () => {
    const error = await failure(
      client({ serverUrl: 'http://127.0.0.1:9', retry: { attempts: 2 } }).findUserByEmail('a@b.c'),
    );
    expect(error).toMatchObject({ code: 'backend_unavailable', failure: 'unreachable' });
  });
});

describe('Keycloak admin client: authentication and authorisation errors', () => {
  it('says the client credentials are wrong on invalid_client, without echoing the secret', async () => {
    const error = await failure(client({ clientSecret: 'wrong-secret' }).findUserByEmail('alice@example.org'));
    expect(error).toMatchObject({ failure: 'invalid_client', httpStatus: 401 });
    expect(error.message).toContain('Invalid client or Invalid client credentials');
    expect(error.message).not.toContain('wrong-secret');
  });

  it('fetches a new token once when the Admin API rejects the cached one', async () => {
    const kcClient = client();
    await kcClient.findUserByEmail('alice@example.org');
    kc.revokeTokens();
    expect(await kcClient.findUserByEmail('alice@example.org')).toMatchObject({ username: 'alice' });
    expect(kc.counts.token).toBe(2);
  });

  it('fails with token_rejected when even a fresh token is refused', async () => {
    let calls = 0;
    const revokingFetch: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      // Every token is revoked right after it is issued.
      if (String(input).endsWith('/token')) kc.revokeTokens();
      calls++;
      return response;
    };
    const error = await failure(
      createKeycloakAdminClient({ ...optionsOf(), fetch: revokingFetch }).findUserByEmail('x@y.z'),
    );
    expect(error).toMatchObject({ failure: 'token_rejected', httpStatus: 401 });
    expect(calls).toBe(4); // token, users 401, token again, users 401
  });

  it('says the service account lacks view-users on 403', async () => {
    const error = await failure(
      client({ clientId: 'no-roles', clientSecret: 's' }).findUserByEmail('alice@example.org'),
    );
    expect(error).toMatchObject({ code: 'backend_unavailable', failure: 'forbidden', httpStatus: 403 });
    expect(error.message).toContain('lacks view-users');
  });

  it('lists nothing (Keycloak filters every user) for a service account with query-users only', async () => {
    expect(await collect(client({ clientId: 'query-only', clientSecret: 's' }).listUsers())).toEqual([]);
  });

  it('shares one token request between concurrent calls and reuses it until shortly before expiry', async () => {
    let now = 1_000_000;
    const kcClient = client({ now: () => now });
    await Promise.all([kcClient.findUserByEmail('alice@example.org'), kcClient.findUserByEmail('carol@example.org')]);
    expect(kc.counts.token).toBe(1);
    now += 200_000;
    await kcClient.findUserByEmail('alice@example.org');
    expect(kc.counts.token).toBe(1);
    now += 80_000; // 280 s of a 300 s token: within the 30 s renewal margin
    await kcClient.findUserByEmail('alice@example.org');
    expect(kc.counts.token).toBe(2);
  });
});

describe('Keycloak admin client: findUserByEmail', () => {
  it('finds a user by exact email, case-insensitively', async () => {
    expect(await client().findUserByEmail('bob@example.org')).toMatchObject({ username: 'bob', enabled: false });
    const lookup = kc.requests.find((request) => request.query.email);
    expect(lookup?.query).toMatchObject({ email: 'bob@example.org', exact: 'true' });
  });

  it('returns undefined for an unknown email and does not match substrings', async () => {
    expect(await client().findUserByEmail('nobody@example.org')).toBeUndefined();
    expect(await client().findUserByEmail('example.org')).toBeUndefined();
  });

  it('finds a user among 50,000 generated ones', async () => {
    kc.setUsers(
      generatedDirectory(50_000, (i) => ({ username: `u${String(i).padStart(5, '0')}`, email: `u${i}@example.org` })),
    );
    expect(await client().findUserByEmail('u49999@example.org')).toMatchObject({ username: 'u49999' });
  });
});

function optionsOf(): KeycloakAdminOptions {
  return {
    serverUrl: kc.url,
    realm: 'mail',
    clientId: 'postern',
    clientSecret: 'postern-secret',
    timeoutMs: 2_000,
    sleep: async () => undefined,
  };
}
