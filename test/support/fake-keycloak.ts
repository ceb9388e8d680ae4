// A node:http fake of the Keycloak endpoints postern calls: realm discovery, the token endpoint
// (client_credentials) and the Admin REST users resource (listing, search, count, by id). No
// real Keycloak runs here (test-idps.md §2), so each behaviour below follows Keycloak's own code
// (github.com/keycloak/keycloak, main as of 2026; paths relative to the repository), and the
// fake's own tests (fake-keycloak.test.ts) pin them down.
//
// Token endpoint `POST /realms/{realm}/protocol/openid-connect/token`:
// - Unknown realm: 404 {"error":"Realm does not exist"} (services/.../resources/RealmsResource.java,
//   resolveRealm); the realm is needed to find the client, so this comes first here.
// - Client authentication (services/.../authentication/authenticators/client/
//   ClientIdAndSecretAuthenticator.java): HTTP Basic (form-decoded, BasicAuthHelper.RFC6749) or
//   client_id/client_secret in the body; no client_id → 400 invalid_client "Missing client_id
//   parameter"; missing or wrong secret → 401 unauthorized_client "Invalid client or Invalid client
//   credentials" (reportFailedAuth). Unknown or disabled client → 401 invalid_client "Invalid client
//   or Invalid client credentials" (services/.../authentication/AuthenticationProcessor.java,
//   handleClientAuthException for CLIENT_NOT_FOUND / CLIENT_DISABLED).
// - client_credentials grant (services/.../protocol/oidc/grants/ClientCredentialsGrantType.java):
//   service accounts off → 401 unauthorized_client "Client not enabled to retrieve service account";
//   public client → 401 unauthorized_client "Public client not allowed to retrieve service account".
//   Success: {access_token, expires_in, refresh_expires_in: 0, token_type: "Bearer",
//   "not-before-policy", scope}; no refresh token (useRefreshTokenForClientCredentialsGrant off).
// - Missing grant_type: 400 invalid_request "Missing form parameter: grant_type"; another grant:
//   400 unsupported_grant_type "Unsupported grant_type"; both before the client is authenticated
//   (services/.../protocol/oidc/endpoints/TokenEndpoint.java processGrantRequest: checkGrantType()
//   comes before checkClient()).
// - Routing failures come from RESTEasy Reactive (quarkusio/quarkus independent-projects/
//   resteasy-reactive/server/runtime/.../handlers/ClassRoutingHandler.java): another method
//   throws NotAllowedException, a path no resource method matches NotFoundException, a content
//   type the method does not @Consume NotSupportedException, all without a message of their own,
//   so KeycloakErrorHandler answers {"error":"HTTP 405 Method Not Allowed"}, {"error":"HTTP 404
//   Not Found"} and {"error":"HTTP 415 Unsupported Media Type"}.
// Discovery `GET /realms/{realm}/.well-known/openid-configuration`: the fields of
// services/.../protocol/oidc/OIDCWellKnownProvider.java that postern and openid-client read.
// Admin REST `/admin/realms/{realm}/users` (services/.../resources/admin/UsersResource.java):
// - The bearer token is checked before the realm is looked up (services/.../resources/admin/
//   AdminRoot.java authenticates, then RealmsAdminResource.getRealmAdmin answers 404 {"error":
//   "Realm not found."}); no or a bad token: 401 {"error":"HTTP 401 Unauthorized"}.
// - requireQuery(): query-users, view-users or manage-users, else 403 {"error":"unknown_error"}
//   (Keycloak ≥ 21, test-idps.md §2); a user is listed only if canView(user) (view-users or
//   manage-users), so query-users alone lists nothing (toRepresentation's canView filter).
// - `first` absent = -1, `max` absent = 100 (Constants.DEFAULT_MAX_RESULTS); a negative value means
//   no offset / no limit (model/jpa/.../PaginationUtils.java paginateQuery). A value that is not an
//   integer (first=abc) fails the conversion of the `Integer` query parameter: RESTEasy Reactive
//   throws `new NotFoundException(cause)` for a query parameter (quarkusio/quarkus
//   independent-projects/resteasy-reactive/server/runtime/.../handlers/ParameterHandler.java
//   handleResult), whose message is the default "HTTP 404 Not Found" (jakartaee/rest
//   WebApplicationException.java computeExceptionMessage), which KeycloakErrorHandler.java
//   (services/.../error/, getErrorCode) puts in `error`: 404 {"error":"HTTP 404 Not Found"}.
// - No snapshot between requests: every page is a fresh query (`ORDER BY username` with
//   OFFSET/LIMIT in model/jpa/.../JpaUserProvider.java searchForUserStream), so a user deleted
//   or added between two page requests shifts the users after it. `onUsersRequest` lets a test
//   change the directory between pages.
// - Without filters the service-account users are left out; with field filters (email, username,
//   firstName, lastName, exact, enabled, emailVerified, q) they are included; `search` leaves them
//   out (searchForUser's includeServiceAccounts flag). `search`: prefix match by default, `*` a
//   wildcard, "x" exact, over username, email, first and last name, case-insensitive
//   (JpaUserProvider.getSearchOptionPredicateArray). Field filters: substring, or equality with
//   exact=true, case-insensitive. `q=key:value key2:value2`: attribute equality
//   (server-spi-private/.../utils/SearchQueryUtils.java).
// - `/users/count` takes the same filters and answers a bare integer (getUsersCount);
//   `/users/{id}`: the full representation, or 404 {"error":"User not found"} (UsersResource.user).
// Users (model/jpa/.../JpaUserProvider.java addUser, UserAdapter.setEmail): local users get a
// random UUID id (KeycloakModelUtils.generateId) and their username and email are stored
// lower-cased. `federated: true` is a user of a custom user storage provider without import: its
// adapter (server-spi/.../storage/adapter/AbstractUserAdapter.java subclasses) answers
// getUsername/getEmail itself, so the case is the provider's; its id is
// "f:<component id>:<external id>" (server-spi/.../storage/StorageId.java), not a UUID. (LDAP
// without import is different: server-spi-private/.../storage/adapter/InMemoryUserAdapter.java
// lower-cases username and email like the local store.) Such users come after all local users,
// in the provider's own order, not sorted by username (model/storage-private/.../storage/
// UserStorageManager.java query(): the local store first, then each enabled provider).
// UserRepresentation (core/.../representations/idm/UserRepresentation.java) is serialised with
// NON_NULL; briefRepresentation=true omits attributes and the access/credential fields
// (ModelToRepresentation.toBriefRepresentation). Keycloak ≥ 24 returns only the attributes
// declared in the realm's user profile unless the unmanaged attribute policy is ENABLED,
// ADMIN_VIEW or ADMIN_EDIT (services/.../userprofile/DeclarativeUserProfileProvider.java,
// UPConfig.UnmanagedAttributePolicy); the fake declares mailcow_template and mailcow_password
// by default, as postern's README tells operators to.
// JWKS `GET /realms/{realm}/protocol/openid-connect/certs` (services/.../protocol/oidc/
// OIDCLoginProtocolService.java certs()): every enabled key of the realm as a JWK; a new realm
// has the generated RS256 signing key (use "sig") and, since Keycloak 12, an RSA-OAEP encryption
// key (use "enc"), each with kid, kty, alg, use, n and e.
// Differences from real Keycloak: tokens are opaque random strings, not JWTs (postern treats
// them as opaque); one realm; no writes through the Admin API; of the grants Keycloak knows only
// client_credentials is served (authorization_code answers as for an unknown code, the others
// 400 unsupported_grant_type after the client is authenticated).
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Config } from '../../src/config/schema.js';
import { createDeps, type Deps } from '../../src/deps.js';
import { createInternalApp } from '../../src/http/internal-app.js';
import { type KeycloakSettings, keycloakSettingsSchema, saveIdpSettings } from '../../src/sources/idp-settings.js';
import type { SyncReport } from '../../src/sync/apply-sync.js';
import { runSync } from '../../src/sync/run-sync.js';
import { scanThenDrop, testConfig, uniqueName } from './env.js';
import { watchHashPool } from './secret-hooks.js';
import { createTestLog } from './secret-log.js';

export interface FakeKeycloakUser {
  /** Omitted: a random UUID, as Keycloak assigns. */
  id?: string;
  username: string;
  email?: string;
  emailVerified?: boolean;
  enabled?: boolean;
  firstName?: string;
  lastName?: string;
  attributes?: Record<string, string[]>;
  createdTimestamp?: number;
  /** A user of a custom storage provider without import: keeps its case, id f:<component>:<username>, listed after local users in the order given. */
  federated?: boolean;
}

/** Users in Keycloak's listing order. Indexable, so 50,000 users cost nothing until asked for. */
export interface FakeDirectory {
  readonly size: number;
  at(index: number): FakeKeycloakUser;
}

/** Keycloak's local store lower-cases username and email; federated users keep theirs. */
function stored(user: FakeKeycloakUser): FakeKeycloakUser {
  if (user.federated) return user;
  return {
    ...user,
    username: user.username.toLowerCase(),
    ...(user.email !== undefined ? { email: user.email.toLowerCase() } : {}),
  };
}

/**
 * Local users by username, then federated ones in the provider's order (UserStorageManager: local
 * store first, then each provider). Array sort is stable, so federated users keep the given order.
 */
function listingOrder(a: FakeKeycloakUser, b: FakeKeycloakUser): number {
  if (Boolean(a.federated) !== Boolean(b.federated)) return a.federated ? 1 : -1;
  if (a.federated) return 0;
  return a.username < b.username ? -1 : a.username > b.username ? 1 : 0;
}

/** The fake's one user federation component (a random id, as Keycloak gives components). */
const FEDERATION_COMPONENT_ID = randomUUID();

/** Keycloak's id for a new user: a random UUID locally, StorageId's f:<component>:<external id> for a federated one. */
function newUserId(user: FakeKeycloakUser): string {
  return user.federated ? `f:${FEDERATION_COMPONENT_ID}:${user.username}` : randomUUID();
}

/** A directory from a list: stored as Keycloak stores it (ids, lower case), in listing order. */
export function listDirectory(users: readonly FakeKeycloakUser[]): FakeDirectory & { users: FakeKeycloakUser[] } {
  const sorted = users.map((user) => ({ id: newUserId(user), ...stored(user) })).sort(listingOrder);
  return {
    users: sorted,
    get size() {
      return sorted.length;
    },
    at: (index) => sorted[index] as FakeKeycloakUser,
  };
}

/**
 * A generated directory: `make(i)` builds user i on demand. `make` must yield lower-case usernames
 * in ascending order of i (e.g. zero-padded numbers), which keeps Keycloak's order without sorting.
 * Ids are random per directory but stable per user.
 */
export function generatedDirectory(count: number, make: (index: number) => FakeKeycloakUser): FakeDirectory {
  const salt = randomBytes(8).toString('hex');
  return {
    size: count,
    at: (index) => {
      const user = stored(make(index));
      return user.id ? user : { ...user, id: uuidFrom(`${salt}:${index}`) };
    },
  };
}

function uuidFrom(seed: string): string {
  const hex = createHash('sha1').update(seed).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function isUserList(users: FakeDirectory | readonly FakeKeycloakUser[]): users is readonly FakeKeycloakUser[] {
  return Array.isArray(users);
}

export interface FakeClient {
  clientId: string;
  secret: string;
  /** realm-management client roles of the service account; default ['view-users']. */
  roles?: string[];
  /** "Service accounts roles" on the client; default true. */
  serviceAccountsEnabled?: boolean;
  /** Default true. */
  enabled?: boolean;
  /** A public client (no secret); default false. */
  publicClient?: boolean;
}

export type FakeEndpoint = 'token' | 'users';
export type FakeFault =
  | { endpoint: FakeEndpoint; status: number; retryAfterSeconds?: number; body?: unknown }
  /** Destroy the socket without an answer (a network error for the client). */
  | { endpoint: FakeEndpoint; reset: true }
  /** Answer after `delayMs` (to trip client timeouts). */
  | { endpoint: FakeEndpoint; delayMs: number };

export interface UsersRequest {
  /** 'list' = GET /users, 'count' = /users/count, 'get' = /users/{id}. */
  kind: 'list' | 'count' | 'get';
  query: URLSearchParams;
  /** How many users requests (of any kind) came before this one. */
  index: number;
}

export interface FakeKeycloakOptions {
  realm?: string;
  clients?: FakeClient[];
  users?: FakeDirectory | readonly FakeKeycloakUser[];
  tokenLifetimeSeconds?: number;
  /** Serve https with this key and certificate (a lab Keycloak with a self-signed one). */
  tls?: { key: string; cert: string };
  /** The realm's user profile: declared attributes (default mailcow_template, mailcow_password) and the unmanaged attribute policy (default: none, i.e. hidden). */
  userProfile?: { attributes?: string[]; unmanagedAttributePolicy?: 'ENABLED' | 'ADMIN_VIEW' | 'ADMIN_EDIT' };
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
}

export interface FakeKeycloak {
  /** Server URL as configured in postern (`server_url`), e.g. http://127.0.0.1:PORT */
  url: string;
  realm: string;
  setUsers(users: FakeDirectory | readonly FakeKeycloakUser[]): void;
  /** Add a user now (list directories only); returns its id. */
  addUser(user: FakeKeycloakUser): string;
  /** Delete the user with this username (lower-cased unless federated); false when there is none. */
  deleteUser(username: string): boolean;
  /** The stored user (id, lower-cased names) with this username. */
  findUser(username: string): FakeKeycloakUser | undefined;
  /** Called before each users request is answered: change the directory between pages here. */
  onUsersRequest(hook: ((request: UsersRequest) => void) | undefined): void;
  /** The service-account user of a client (Keycloak creates `service-account-<clientId>`). */
  serviceAccountUser(clientId: string): FakeKeycloakUser | undefined;
  /** Queue faults; each is served once, in order, by the matching endpoint. */
  injectFaults(...faults: FakeFault[]): void;
  /** Invalidate every issued token (as a key rotation or session logout would). */
  revokeTokens(): void;
  readonly requests: RecordedRequest[];
  /** How each token request authenticated the client: 'basic', 'post' or 'none'. */
  readonly tokenClientAuth: ('basic' | 'post' | 'none')[];
  /** token: token requests; users: GET /users (any filter); count: /users/count; byId: /users/{id}. */
  readonly counts: { token: number; users: number; count: number; byId: number };
  close(): Promise<void>;
}

const UNAUTHORIZED = { error: 'HTTP 401 Unauthorized' };
const FORBIDDEN = { error: 'unknown_error' };
const BAD_CLIENT = 'Invalid client or Invalid client credentials';
const DEFAULT_MAX_RESULTS = 100;
/** The grant types TokenEndpoint.checkGrantType accepts (OAuth2Constants). */
const KNOWN_GRANTS = new Set([
  'authorization_code',
  'refresh_token',
  'password',
  'client_credentials',
  'urn:ietf:params:oauth:grant-type:token-exchange',
  'urn:ietf:params:oauth:grant-type:uma-ticket',
  'urn:ietf:params:oauth:grant-type:device_code',
  'urn:openid:params:grant-type:ciba',
]);
const REQUEST_LOG_LIMIT = 20_000;
const DECLARED_ATTRIBUTES = ['mailcow_template', 'mailcow_password'];
/** Query parameters that make getUsers a field search, which includes service accounts. */
const FIELD_FILTERS = [
  'lastName',
  'firstName',
  'email',
  'username',
  'emailVerified',
  'idpAlias',
  'idpUserId',
  'enabled',
  'exact',
  'q',
];

export async function startFakeKeycloak(options: FakeKeycloakOptions = {}): Promise<FakeKeycloak> {
  const realm = options.realm ?? 'mail';
  const clients = new Map(
    (options.clients ?? [{ clientId: 'postern', secret: 'postern-secret' }]).map((c) => [c.clientId, c]),
  );
  const serviceAccounts = new Map<string, FakeKeycloakUser>();
  for (const c of clients.values()) {
    if (c.serviceAccountsEnabled === false || c.publicClient) continue;
    // services/.../managers/ClientManager.java enableServiceAccount: username service-account-<clientId>.
    serviceAccounts.set(c.clientId, {
      id: randomUUID(),
      username: `service-account-${c.clientId.toLowerCase()}`,
      emailVerified: false,
      enabled: true,
      createdTimestamp: Date.now(),
    });
  }
  const tokenLifetimeSeconds = options.tokenLifetimeSeconds ?? 300;
  const declared = new Set(options.userProfile?.attributes ?? DECLARED_ATTRIBUTES);
  const showsUnmanaged = options.userProfile?.unmanagedAttributePolicy !== undefined;
  const toDirectory = (users: FakeDirectory | readonly FakeKeycloakUser[] | undefined) =>
    users === undefined ? listDirectory([]) : isUserList(users) ? listDirectory(users) : users;
  let directory: FakeDirectory & { users?: FakeKeycloakUser[] } = toDirectory(options.users);
  let usersHook: ((request: UsersRequest) => void) | undefined;
  let usersRequests = 0;
  const tokens = new Map<string, { roles: string[]; expiresAt: number }>();
  const faults: FakeFault[] = [];
  const requests: RecordedRequest[] = [];
  const counts = { token: 0, users: 0, count: 0, byId: 0 };
  const tokenClientAuth: ('basic' | 'post' | 'none')[] = [];

  const realmPath = `/realms/${realm}`;
  // The realm's keys in Keycloak's shape. The moduli are random bytes, not RSA keys: tokens here
  // are opaque and nothing verifies a signature, and generating real keys costs seconds under load.
  const jwks = (['sig', 'enc'] as const).map((use) => ({
    kid: randomBytes(16).toString('base64url'),
    kty: 'RSA',
    alg: use === 'sig' ? 'RS256' : 'RSA-OAEP',
    use,
    n: Buffer.concat([Buffer.from([0xc1]), randomBytes(255)]).toString('base64url'),
    e: 'AQAB',
  }));
  const tokenPath = `${realmPath}/protocol/openid-connect/token`;
  const usersPath = `/admin/realms/${realm}/users`;
  let url = '';

  const mutableUsers = () => {
    if (!directory.users) throw new Error('this fake directory is generated; use a list to change it');
    return directory.users;
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  };

  /** Serve a queued fault for this endpoint; true when the request was consumed. */
  const serveFault = async (endpoint: FakeEndpoint, req: IncomingMessage, res: ServerResponse) => {
    const index = faults.findIndex((fault) => fault.endpoint === endpoint);
    if (index < 0) return false;
    const [fault] = faults.splice(index, 1) as [FakeFault];
    if ('reset' in fault) {
      req.socket.destroy();
      return true;
    }
    if ('delayMs' in fault) {
      await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
      return false;
    }
    const headers: Record<string, string> =
      fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {};
    send(res, fault.status, fault.body ?? { error: `HTTP ${fault.status}` }, headers);
    return true;
  };

  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  const discovery = () => {
    const issuer = `${url}${realmPath}`;
    const oidc = `${issuer}/protocol/openid-connect`;
    return {
      issuer,
      authorization_endpoint: `${oidc}/auth`,
      token_endpoint: `${oidc}/token`,
      introspection_endpoint: `${oidc}/token/introspect`,
      userinfo_endpoint: `${oidc}/userinfo`,
      end_session_endpoint: `${oidc}/logout`,
      jwks_uri: `${oidc}/certs`,
      grant_types_supported: ['authorization_code', 'implicit', 'refresh_token', 'password', 'client_credentials'],
      response_types_supported: [
        'code',
        'none',
        'id_token',
        'token',
        'id_token token',
        'code id_token',
        'code token',
        'code id_token token',
      ],
      subject_types_supported: ['public', 'pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      scopes_supported: ['openid', 'profile', 'email', 'roles', 'web-origins', 'offline_access'],
      token_endpoint_auth_methods_supported: [
        'private_key_jwt',
        'client_secret_basic',
        'client_secret_post',
        'tls_client_auth',
        'client_secret_jwt',
      ],
      code_challenge_methods_supported: ['plain', 'S256'],
      authorization_response_iss_parameter_supported: true,
    };
  };

  const issueToken = async (req: IncomingMessage, res: ServerResponse) => {
    counts.token++;
    if (req.method !== 'POST') return send(res, 405, { error: 'HTTP 405 Method Not Allowed' });
    const contentType = req.headers['content-type'];
    const body = await readBody(req);
    // @Consumes(APPLICATION_FORM_URLENCODED): another content type is refused while routing.
    if (contentType !== undefined && !contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      return send(res, 415, { error: 'HTTP 415 Unsupported Media Type' });
    }
    const form = new URLSearchParams(contentType === undefined ? '' : body);
    if (await serveFault('token', req, res)) return;
    const grantType = form.get('grant_type');
    if (!grantType)
      return send(res, 400, { error: 'invalid_request', error_description: 'Missing form parameter: grant_type' });
    // TokenEndpoint.processGrantRequest runs checkGrantType() before checkClient(): a grant type
    // Keycloak does not know is refused whoever asks.
    if (!KNOWN_GRANTS.has(grantType)) {
      return send(res, 400, { error: 'unsupported_grant_type', error_description: 'Unsupported grant_type' });
    }
    let clientId: string | undefined;
    let secret: string | undefined;
    const authorization = req.headers.authorization ?? '';
    if (authorization.startsWith('Basic ')) {
      const decoded = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
      const cut = decoded.indexOf(':');
      // BasicAuthHelper.RFC6749.parseHeader: both parts are form-decoded (RFC 6749 §2.3.1).
      const decode = (value: string) => decodeURIComponent(value.replace(/\+/g, ' '));
      if (cut >= 0) {
        clientId = decode(decoded.slice(0, cut));
        secret = decode(decoded.slice(cut + 1));
      }
    }
    tokenClientAuth.push(form.has('client_secret') ? 'post' : authorization.startsWith('Basic ') ? 'basic' : 'none');
    // Form parameters win over the header (ClientIdAndSecretAuthenticator).
    clientId = form.get('client_id') ?? clientId;
    secret = form.get('client_secret') ?? secret;
    if (!clientId) return send(res, 400, { error: 'invalid_client', error_description: 'Missing client_id parameter' });
    const client = clients.get(clientId);
    if (!client || client.enabled === false) {
      return send(res, 401, { error: 'invalid_client', error_description: BAD_CLIENT });
    }
    if (!client.publicClient && (secret === undefined || client.secret !== secret)) {
      return send(res, 401, { error: 'unauthorized_client', error_description: BAD_CLIENT });
    }
    if (grantType === 'authorization_code') {
      // codeToToken: no code is 400 invalid_request; the fake issues no codes, so any is invalid.
      return form.get('code')
        ? send(res, 400, { error: 'invalid_grant', error_description: 'Code not valid' })
        : send(res, 400, { error: 'invalid_request', error_description: 'Missing parameter: code' });
    }
    if (grantType !== 'client_credentials') {
      // A grant Keycloak knows that the fake does not implement (see "Differences" above).
      return send(res, 400, { error: 'unsupported_grant_type', error_description: 'Unsupported grant_type' });
    }
    if (client.publicClient) {
      return send(res, 401, {
        error: 'unauthorized_client',
        error_description: 'Public client not allowed to retrieve service account',
      });
    }
    if (client.serviceAccountsEnabled === false) {
      return send(res, 401, {
        error: 'unauthorized_client',
        error_description: 'Client not enabled to retrieve service account',
      });
    }
    const accessToken = randomBytes(24).toString('base64url');
    tokens.set(accessToken, {
      roles: client.roles ?? ['view-users'],
      expiresAt: Date.now() + tokenLifetimeSeconds * 1000,
    });
    send(res, 200, {
      access_token: accessToken,
      expires_in: tokenLifetimeSeconds,
      refresh_expires_in: 0,
      token_type: 'Bearer',
      'not-before-policy': 0,
      scope: 'profile email',
    });
  };

  const representation = (user: FakeKeycloakUser, brief: boolean) => {
    const rep: Record<string, unknown> = {
      id: user.id,
      username: user.username,
      ...(user.firstName !== undefined ? { firstName: user.firstName } : {}),
      ...(user.lastName !== undefined ? { lastName: user.lastName } : {}),
      ...(user.email !== undefined ? { email: user.email } : {}),
      emailVerified: user.emailVerified ?? false,
      createdTimestamp: user.createdTimestamp ?? 1_700_000_000_000,
      enabled: user.enabled ?? true,
    };
    if (user.username.startsWith('service-account-') && [...serviceAccounts.values()].includes(user)) {
      rep.serviceAccountClientId = user.id;
    }
    if (brief) return rep;
    const visible = Object.entries(user.attributes ?? {}).filter(([key]) => showsUnmanaged || declared.has(key));
    if (visible.length > 0) rep.attributes = Object.fromEntries(visible);
    rep.totp = false;
    rep.disableableCredentialTypes = [];
    rep.requiredActions = [];
    rep.notBefore = 0;
    rep.access = { manageGroupMembership: true, view: true, mapRoles: true, impersonate: false, manage: true };
    return rep;
  };

  /** JAX-RS Integer conversion: absent → fallback, not an integer → undefined (the caller answers 404). */
  const integerParam = (query: URLSearchParams, name: string, fallback: number): number | undefined => {
    const value = query.get(name);
    if (value === null) return fallback;
    return /^[+-]?\d+$/.test(value.trim()) ? Number.parseInt(value, 10) : undefined;
  };

  const booleanParam = (query: URLSearchParams, name: string): boolean | undefined => {
    const value = query.get(name);
    return value === null ? undefined : value.toLowerCase() === 'true';
  };

  /** The users the query selects, in listing order, service accounts included or not as Keycloak does. */
  function* selected(query: URLSearchParams): Generator<FakeKeycloakUser> {
    const search = query.get('search');
    const isFieldSearch = search === null && FIELD_FILTERS.some((name) => query.has(name));
    const enabled = booleanParam(query, 'enabled');
    const emailVerified = booleanParam(query, 'emailVerified');
    const exact = booleanParam(query, 'exact') === true;
    const fields = (['email', 'username', 'firstName', 'lastName'] as const)
      .map((field) => [field, query.get(field)?.toLowerCase()] as const)
      .filter((entry): entry is readonly [(typeof entry)[0], string] => entry[1] !== undefined);
    // SearchQueryUtils.getFields: `key:value` pairs separated by spaces.
    const attributes = (query.get('q') ?? '')
      .split(/\s+/)
      .filter((pair) => pair.includes(':'))
      .map((pair) => [pair.slice(0, pair.indexOf(':')), pair.slice(pair.indexOf(':') + 1).toLowerCase()] as const);
    const searchMatch = (() => {
      if (search === null) return () => true;
      const value = search.trim().toLowerCase();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
        const wanted = value.slice(1, -1);
        return (text: string) => text === wanted;
      }
      const escaped = value.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
      const pattern = new RegExp(`^${escaped}${escaped.endsWith('.*') ? '' : '.*'}$`, 's');
      return (text: string) => pattern.test(text);
    })();
    const matches = (user: FakeKeycloakUser) => {
      if (enabled !== undefined && (user.enabled ?? true) !== enabled) return false;
      if (emailVerified !== undefined && (user.emailVerified ?? false) !== emailVerified) return false;
      for (const [field, wanted] of fields) {
        const actual = String(user[field] ?? '').toLowerCase();
        if (exact ? actual !== wanted : !actual.includes(wanted)) return false;
      }
      for (const [key, wanted] of attributes) {
        if (!(user.attributes?.[key] ?? []).some((value) => value.toLowerCase() === wanted)) return false;
      }
      if (search !== null) {
        const texts = [user.username, user.email, user.firstName, user.lastName].map((text) =>
          (text ?? '').toLowerCase(),
        );
        if (!texts.some(searchMatch)) return false;
      }
      return true;
    };
    const plain = search === null && !isFieldSearch;
    const all = function* () {
      for (let i = 0; i < directory.size; i++) yield directory.at(i);
      if (isFieldSearch) yield* serviceAccounts.values();
    };
    for (const user of all()) if (plain || matches(user)) yield user;
  }

  const usersRequest = async (req: IncomingMessage, res: ServerResponse, rest: string, query: URLSearchParams) => {
    const kind = rest === '' ? 'list' : rest === '/count' ? 'count' : 'get';
    if (kind === 'list') counts.users++;
    else if (kind === 'count') counts.count++;
    else counts.byId++;
    if (req.method !== 'GET') return send(res, 405, { error: 'HTTP 405 Method Not Allowed' });
    const authorization = req.headers.authorization ?? '';
    const grant = authorization.startsWith('Bearer ') ? tokens.get(authorization.slice(7)) : undefined;
    if (!grant || grant.expiresAt <= Date.now()) return send(res, 401, UNAUTHORIZED);
    const canView = grant.roles.includes('view-users') || grant.roles.includes('manage-users');
    const canQuery = canView || grant.roles.includes('query-users');
    if (await serveFault('users', req, res)) return;
    usersHook?.({ kind, query, index: usersRequests++ });

    if (kind === 'get') {
      const id = decodeURIComponent(rest.slice(1));
      let user: FakeKeycloakUser | undefined;
      for (let i = 0; i < directory.size && !user; i++) if (directory.at(i).id === id) user = directory.at(i);
      user ??= [...serviceAccounts.values()].find((candidate) => candidate.id === id);
      if (!user) return canQuery ? send(res, 404, { error: 'User not found' }) : send(res, 403, FORBIDDEN);
      if (!canView) return send(res, 403, FORBIDDEN);
      return send(res, 200, representation(user, false));
    }
    if (!canQuery) return send(res, 403, FORBIDDEN);
    if (kind === 'count') {
      let total = 0;
      if (canView) for (const _ of selected(query)) total++;
      return send(res, 200, total);
    }
    const first = integerParam(query, 'first', -1);
    const max = integerParam(query, 'max', DEFAULT_MAX_RESULTS);
    if (first === undefined || max === undefined) {
      return send(res, 404, { error: 'HTTP 404 Not Found' });
    }
    if (!canView) return send(res, 200, []);
    const brief = booleanParam(query, 'briefRepresentation') === true;
    const page: Record<string, unknown>[] = [];
    let skipped = 0;
    const offset = Math.max(0, first);
    if (!query.has('search') && !FIELD_FILTERS.some((name) => query.has(name))) {
      // Unfiltered: index straight into the directory (a 50,000-user realm stays cheap).
      const end = max < 0 ? directory.size : Math.min(directory.size, offset + max);
      for (let i = offset; i < end; i++) page.push(representation(directory.at(i), brief));
      return send(res, 200, page);
    }
    for (const user of selected(query)) {
      if (max >= 0 && page.length >= max) break;
      if (skipped++ < offset) continue;
      page.push(representation(user, brief));
    }
    send(res, 200, page);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const requestUrl = new URL(req.url ?? '/', 'http://fake');
    const path = requestUrl.pathname;
    if (requests.length < REQUEST_LOG_LIMIT) {
      requests.push({ method: req.method ?? '', path, query: Object.fromEntries(requestUrl.searchParams) });
    }
    const handle = async () => {
      if (path === tokenPath) return issueToken(req, res);
      if (path === `${realmPath}/.well-known/openid-configuration`) return send(res, 200, discovery());
      if (path === `${realmPath}/protocol/openid-connect/certs`) return send(res, 200, { keys: jwks });
      if (path === usersPath || path.startsWith(`${usersPath}/`)) {
        return usersRequest(req, res, path.slice(usersPath.length), requestUrl.searchParams);
      }
      if (path.startsWith('/admin/realms/')) {
        // AdminRoot authenticates the token before the realm is looked up.
        const authorization = req.headers.authorization ?? '';
        const grant = authorization.startsWith('Bearer ') ? tokens.get(authorization.slice(7)) : undefined;
        if (!grant || grant.expiresAt <= Date.now()) return send(res, 401, UNAUTHORIZED);
        if (!path.startsWith(`/admin/realms/${realm}/`) && path !== `/admin/realms/${realm}`) {
          return send(res, 404, { error: 'Realm not found.' });
        }
      }
      if (path.startsWith('/realms/') && !path.startsWith(`${realmPath}/`)) {
        return send(res, 404, { error: 'Realm does not exist' });
      }
      send(res, 404, { error: 'HTTP 404 Not Found' });
    };
    handle().catch(() => {
      if (!res.headersSent) send(res, 500, { error: 'unknown_error' });
    });
  };
  const server = options.tls ? createTlsServer(options.tls, onRequest) : createServer(onRequest);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  const findIndex = (username: string) => {
    const users = mutableUsers();
    return users.findIndex(
      (user) => user.username === username || (!user.federated && user.username === username.toLowerCase()),
    );
  };

  return {
    url,
    realm,
    setUsers(users) {
      directory = toDirectory(users);
    },
    addUser(user) {
      const users = mutableUsers();
      const added = { id: newUserId(user), ...stored(user) };
      users.push(added);
      users.sort(listingOrder);
      return added.id;
    },
    deleteUser(username) {
      const index = findIndex(username);
      if (index < 0) return false;
      mutableUsers().splice(index, 1);
      return true;
    },
    findUser(username) {
      const index = findIndex(username);
      return index < 0 ? undefined : mutableUsers()[index];
    },
    onUsersRequest(hook) {
      usersHook = hook;
    },
    serviceAccountUser: (clientId) => serviceAccounts.get(clientId),
    injectFaults(...added) {
      faults.push(...added);
    },
    revokeTokens() {
      tokens.clear();
    },
    requests,
    tokenClientAuth,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// A postern environment wired to a fake Keycloak for the sync suites: real MariaDB (a database
// of its own) and Redis (a prefix of its own), deps built by the real composition root but no
// listeners and no scheduler (suites drive runs and ticks themselves), IdP settings pointing
// at the fake. CRON_LOG goes to a private list unless a suite asks for mailcow's key.

export const TEST_SECRET_KEY = 'sync-suite-secret-key-0123456789abcdef';

export interface InternalServer {
  url: string;
  /** POST a passdb request, as Dovecot's Lua does; returns status and the JSON body. */
  passdb(body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

export interface SyncTestEnv {
  name: string;
  config: Config;
  deps: Deps;
  kc: FakeKeycloak;
  /** A private CRON_LOG list for this environment. */
  cronLogKey: string;
  /** Save the Keycloak settings (defaults: import + periodic sync on, deprovisioning off). */
  saveSettings(overrides?: Partial<KeycloakSettings>): Promise<void>;
  /** One sync run now, as the admin API would (no interval check), into the private CRON_LOG. */
  sync(options?: { dryRun?: boolean }): Promise<SyncReport>;
  /** Serve the internal app (Dovecot passdb) over these deps, optionally with other sources. */
  serveInternal(sources?: Deps['sources']): Promise<InternalServer>;
  /** Another set of deps on the same database and Redis prefix (a second replica). */
  replica(): Promise<Deps>;
  destroy(): Promise<void>;
}

export async function startSyncEnv(
  label: string,
  options: { overrides?: Record<string, string>; kc?: FakeKeycloakOptions } = {},
): Promise<SyncTestEnv> {
  const name = uniqueName(label);
  const config = testConfig(name, {
    POSTERN_SECRET_KEY: TEST_SECRET_KEY,
    POSTERN_BCRYPT_COST: '5',
    ...options.overrides,
  });
  const testLog = createTestLog(name, config.logLevel);
  const { log } = testLog;
  const deps = await createDeps(config, log);
  watchHashPool(deps.hashPool);
  const kc = await startFakeKeycloak(options.kc);
  const cronLogKey = `${name}:CRON_LOG`;
  const extra: Deps[] = [];
  const servers: { close(): Promise<void> }[] = [];
  return {
    name,
    config,
    deps,
    kc,
    cronLogKey,
    async saveSettings(overrides = {}) {
      const settings = keycloakSettingsSchema.parse({
        authsource: 'keycloak',
        server_url: kc.url,
        realm: kc.realm,
        version: '26.0.0',
        client_id: 'postern',
        client_secret: 'postern-secret',
        redirect_url: 'http://127.0.0.1:8080/login/sso/callback',
        periodic_sync: true,
        import_users: true,
        ...overrides,
      });
      await saveIdpSettings(deps.db, settings, deps.secretBox);
    },
    async sync(opts = {}) {
      const result = await runSync(deps, { triggeredBy: 'test', dryRun: opts.dryRun ?? false, cronLogKey });
      if (result.state !== 'ran') throw new Error(`sync did not run: ${JSON.stringify(result)}`);
      return result.report;
    },
    async serveInternal(sources) {
      const app = createInternalApp(sources ? { ...deps, sources } : deps);
      const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
      await new Promise<void>((resolve) => server.once('listening', () => resolve()));
      const { port } = server.address() as AddressInfo;
      const url = `http://127.0.0.1:${port}`;
      const handle: InternalServer = {
        url,
        async passdb(body) {
          const response = await fetch(`${url}/`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body),
          });
          return { status: response.status, body: (await response.json()) as Record<string, unknown> };
        },
        close: () =>
          new Promise<void>((resolve) => {
            if ('closeAllConnections' in server) server.closeAllConnections();
            server.close(() => resolve());
          }),
      };
      servers.push(handle);
      return handle;
    },
    async replica() {
      const other = await createDeps(config, log);
      watchHashPool(other.hashPool);
      extra.push(other);
      return other;
    },
    async destroy() {
      await Promise.all(servers.map((server) => server.close()));
      await kc.close();
      const prefixed = await deps.redis.keys(`${name}:*`).catch(() => [] as string[]);
      if (prefixed.length > 0) await deps.redis.del(...prefixed).catch(() => undefined);
      for (const other of extra) await other.close();
      await deps.close();
      testLog.close();
      await scanThenDrop(name, testLog.path);
    },
  };
}
