// A node:http fake of exactly the Keycloak endpoints postern calls: the token endpoint
// (client_credentials) and the Admin REST users listing/search. No real Keycloak runs here
// (test-idps.md §2); this fake follows Keycloak's documented shapes so the client is tested
// against the protocol, not against itself.
//
// Provenance of each shape:
// - Token endpoint `POST /realms/{realm}/protocol/openid-connect/token`, form-encoded, client
//   authentication by HTTP Basic or client_id/client_secret in the body (Keycloak's default
//   "Client Id and Secret" authenticator; RFC 6749 §2.3.1). Success body
//   {access_token, expires_in, refresh_expires_in: 0, token_type: "Bearer", "not-before-policy",
//   scope}: Keycloak server admin guide, service accounts / client credentials grant (no refresh
//   token for client_credentials by default). Wrong secret: 401
//   {"error":"invalid_client","error_description":"Invalid client or Invalid client credentials"}
//   (Keycloak ≥ 21 wording, as given in the lead's brief). Missing grant_type: 400
//   {"error":"invalid_request","error_description":"Missing form parameter: grant_type"}.
//   Unknown realm: 404 {"error":"Realm does not exist"}.
// - Admin REST `GET /admin/realms/{realm}/users` (Keycloak Admin REST API docs, UsersResource
//   getUsers): query `first` (offset, default 0), `max` (default 100 = Constants.DEFAULT_MAX_RESULTS),
//   `briefRepresentation` (default false; true omits `attributes`), `email`/`username` substring
//   match, exact match with `exact=true`, `enabled`. Results sorted by username (test-idps.md §2).
//   UserRepresentation fields as documented (id, username, firstName, lastName, email,
//   emailVerified, enabled, createdTimestamp, attributes: map of string arrays, totp,
//   disableableCredentialTypes, requiredActions, notBefore, access); Keycloak serialises with
//   NON_NULL, so absent names/attributes are omitted rather than null.
// - Bearer check: 401 {"error":"HTTP 401 Unauthorized"} (test-idps.md §2). No realm-management
//   role: 403 {"error":"unknown_error"} (Keycloak ≥ 21, test-idps.md §2). Roles: view-users or
//   manage-users list everything; query-users alone passes the check but Keycloak filters each
//   user through canView, so the listing is an empty array (Keycloak UsersResource: requireQuery
//   then a per-user canView filter) — the empty-listing trap the sync's safety check covers.
// Differences from real Keycloak: tokens are opaque random strings, not JWTs (postern treats
// them as opaque); one realm; no `search`/`q`/count endpoints (postern does not call them).
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Config } from '../../src/config/schema.js';
import { createDeps, type Deps } from '../../src/deps.js';
import { createInternalApp } from '../../src/http/internal-app.js';
import { createLogger } from '../../src/log.js';
import { type KeycloakSettings, keycloakSettingsSchema, saveIdpSettings } from '../../src/sources/idp-settings.js';
import type { SyncReport } from '../../src/sync/apply-sync.js';
import { runSync } from '../../src/sync/run-sync.js';
import { dropDatabase, testConfig, uniqueName } from './env.js';

export interface FakeKeycloakUser {
  id?: string;
  username: string;
  email?: string;
  emailVerified?: boolean;
  enabled?: boolean;
  firstName?: string;
  lastName?: string;
  attributes?: Record<string, string[]>;
  createdTimestamp?: number;
}

/** Users in Keycloak's listing order (by username). Indexable, so 50,000 users cost nothing until asked for. */
export interface FakeDirectory {
  readonly size: number;
  at(index: number): FakeKeycloakUser;
}

/** A directory from a list (sorted by username here, as Keycloak lists). */
export function listDirectory(users: readonly FakeKeycloakUser[]): FakeDirectory {
  const sorted = [...users].sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0));
  return { size: sorted.length, at: (index) => sorted[index] as FakeKeycloakUser };
}

/**
 * A generated directory: `make(i)` builds user i on demand. `make` must yield usernames in
 * ascending order of i (e.g. zero-padded numbers), which keeps Keycloak's order without sorting.
 */
export function generatedDirectory(count: number, make: (index: number) => FakeKeycloakUser): FakeDirectory {
  return { size: count, at: make };
}

function uuidFrom(username: string): string {
  const hex = createHash('sha1').update(username).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function isUserList(users: FakeDirectory | readonly FakeKeycloakUser[]): users is readonly FakeKeycloakUser[] {
  return Array.isArray(users);
}

export interface FakeClient {
  clientId: string;
  secret: string;
  /** realm-management client roles of the service account; default ['view-users']. */
  roles?: string[];
}

export type FakeFault =
  | { endpoint: 'token' | 'users'; status: number; retryAfterSeconds?: number; body?: unknown }
  /** Destroy the socket without an answer (a network error for the client). */
  | { endpoint: 'token' | 'users'; reset: true }
  /** Answer after `delayMs` (to trip client timeouts). */
  | { endpoint: 'token' | 'users'; delayMs: number };

export interface FakeKeycloakOptions {
  realm?: string;
  clients?: FakeClient[];
  users?: FakeDirectory | readonly FakeKeycloakUser[];
  tokenLifetimeSeconds?: number;
  /** Serve https with this key and certificate (a lab Keycloak with a self-signed one). */
  tls?: { key: string; cert: string };
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
  /** Queue faults; each is served once, in order, by the matching endpoint. */
  injectFaults(...faults: FakeFault[]): void;
  /** Invalidate every issued token (as a key rotation or session logout would). */
  revokeTokens(): void;
  readonly requests: RecordedRequest[];
  readonly counts: { token: number; users: number };
  close(): Promise<void>;
}

const UNAUTHORIZED = { error: 'HTTP 401 Unauthorized' };
const FORBIDDEN = { error: 'unknown_error' };
const DEFAULT_MAX_RESULTS = 100;
const REQUEST_LOG_LIMIT = 20_000;

export async function startFakeKeycloak(options: FakeKeycloakOptions = {}): Promise<FakeKeycloak> {
  const realm = options.realm ?? 'mail';
  const clients = new Map(
    (options.clients ?? [{ clientId: 'postern', secret: 'postern-secret' }]).map((c) => [c.clientId, c]),
  );
  const tokenLifetimeSeconds = options.tokenLifetimeSeconds ?? 300;
  const toDirectory = (users: FakeDirectory | readonly FakeKeycloakUser[] | undefined): FakeDirectory =>
    users === undefined ? listDirectory([]) : isUserList(users) ? listDirectory(users) : users;
  let directory = toDirectory(options.users);
  const tokens = new Map<string, { roles: string[]; expiresAt: number }>();
  const faults: FakeFault[] = [];
  const requests: RecordedRequest[] = [];
  const counts = { token: 0, users: 0 };

  const tokenPath = `/realms/${realm}/protocol/openid-connect/token`;
  const usersPath = `/admin/realms/${realm}/users`;

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
  const serveFault = async (endpoint: 'token' | 'users', req: IncomingMessage, res: ServerResponse) => {
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

  const issueToken = async (req: IncomingMessage, res: ServerResponse) => {
    counts.token++;
    if (req.method !== 'POST')
      return send(res, 405, {
        error: 'RESTEASY003650: No resource method found for GET, return 405 with Allow header',
      });
    const contentType = req.headers['content-type'] ?? '';
    const form = new URLSearchParams(await readBody(req));
    if (!contentType.startsWith('application/x-www-form-urlencoded')) {
      return send(res, 400, { error: 'invalid_request', error_description: 'Missing form parameter: grant_type' });
    }
    if (await serveFault('token', req, res)) return;
    let clientId = form.get('client_id') ?? undefined;
    let secret = form.get('client_secret') ?? undefined;
    const authorization = req.headers.authorization ?? '';
    if (authorization.startsWith('Basic ')) {
      const decoded = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
      const cut = decoded.indexOf(':');
      // RFC 6749 §2.3.1: both parts are form-encoded before base64.
      const decode = (value: string) => decodeURIComponent(value.replace(/\+/g, ' '));
      clientId = decode(decoded.slice(0, cut));
      secret = decode(decoded.slice(cut + 1));
    }
    const client = clientId ? clients.get(clientId) : undefined;
    if (!client || client.secret !== secret) {
      return send(res, 401, {
        error: 'invalid_client',
        error_description: 'Invalid client or Invalid client credentials',
      });
    }
    const grantType = form.get('grant_type');
    if (!grantType)
      return send(res, 400, { error: 'invalid_request', error_description: 'Missing form parameter: grant_type' });
    if (grantType !== 'client_credentials') {
      return send(res, 400, { error: 'unsupported_grant_type', error_description: 'Unsupported grant_type' });
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
    // Stable UUID-shaped ids derived from the username: nothing to store for 50,000 users.
    const id = user.id ?? uuidFrom(user.username);
    const rep: Record<string, unknown> = {
      id,
      username: user.username,
      ...(user.firstName !== undefined ? { firstName: user.firstName } : {}),
      ...(user.lastName !== undefined ? { lastName: user.lastName } : {}),
      ...(user.email !== undefined ? { email: user.email } : {}),
      emailVerified: user.emailVerified ?? false,
      createdTimestamp: user.createdTimestamp ?? 1_700_000_000_000,
      enabled: user.enabled ?? true,
    };
    if (brief) return rep;
    if (user.attributes && Object.keys(user.attributes).length > 0) rep.attributes = user.attributes;
    rep.totp = false;
    rep.disableableCredentialTypes = [];
    rep.requiredActions = [];
    rep.notBefore = 0;
    rep.access = { manageGroupMembership: true, view: true, mapRoles: true, impersonate: false, manage: true };
    return rep;
  };

  const listUsers = async (req: IncomingMessage, res: ServerResponse, query: URLSearchParams) => {
    counts.users++;
    const authorization = req.headers.authorization ?? '';
    const grant = authorization.startsWith('Bearer ') ? tokens.get(authorization.slice(7)) : undefined;
    if (!grant || grant.expiresAt <= Date.now()) return send(res, 401, UNAUTHORIZED);
    const canView = grant.roles.includes('view-users') || grant.roles.includes('manage-users');
    if (!canView && !grant.roles.includes('query-users')) return send(res, 403, FORBIDDEN);
    if (await serveFault('users', req, res)) return;
    if (!canView) return send(res, 200, []);

    const first = Math.max(0, Number.parseInt(query.get('first') ?? '0', 10) || 0);
    const maxParam = query.get('max');
    const max = maxParam === null ? DEFAULT_MAX_RESULTS : Math.max(0, Number.parseInt(maxParam, 10) || 0);
    const brief = query.get('briefRepresentation') === 'true';
    const exact = query.get('exact') === 'true';
    const filters: [keyof FakeKeycloakUser, string][] = [];
    for (const field of ['email', 'username', 'firstName', 'lastName'] as const) {
      // firstName/lastName filter by name; `first` is the offset (Keycloak's @QueryParam names).
      const value = query.get(field);
      if (value !== null) filters.push([field, value.toLowerCase()]);
    }
    const enabledFilter = query.get('enabled');
    const matches = (user: FakeKeycloakUser) => {
      if (enabledFilter !== null && String(user.enabled ?? true) !== enabledFilter) return false;
      return filters.every(([field, wanted]) => {
        const actual = String(user[field] ?? '').toLowerCase();
        return exact ? actual === wanted : actual.includes(wanted);
      });
    };

    const page: Record<string, unknown>[] = [];
    if (filters.length === 0 && enabledFilter === null) {
      for (let i = first; i < Math.min(directory.size, first + max); i++)
        page.push(representation(directory.at(i), brief));
    } else {
      let skipped = 0;
      for (let i = 0; i < directory.size && page.length < max; i++) {
        const user = directory.at(i);
        if (!matches(user)) continue;
        if (skipped++ < first) continue;
        page.push(representation(user, brief));
      }
    }
    send(res, 200, page);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (requests.length < REQUEST_LOG_LIMIT) {
      requests.push({ method: req.method ?? '', path: url.pathname, query: Object.fromEntries(url.searchParams) });
    }
    const handle = async () => {
      if (url.pathname === tokenPath) return issueToken(req, res);
      if (url.pathname === usersPath && req.method === 'GET') return listUsers(req, res, url.searchParams);
      if (url.pathname.startsWith('/realms/') && !url.pathname.startsWith(`/realms/${realm}/`)) {
        return send(res, 404, { error: 'Realm does not exist' });
      }
      if (url.pathname.startsWith('/admin/realms/') && !url.pathname.startsWith(`/admin/realms/${realm}/`)) {
        return send(res, 404, { error: 'Realm not found.' });
      }
      send(res, 404, { error: 'RESTEASY003210: Could not find resource for full path' });
    };
    handle().catch(() => {
      if (!res.headersSent) send(res, 500, { error: 'unknown_error' });
    });
  };
  const server = options.tls ? createTlsServer(options.tls, onRequest) : createServer(onRequest);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    realm,
    setUsers(users) {
      directory = toDirectory(users);
    },
    injectFaults(...added) {
      faults.push(...added);
    },
    revokeTokens() {
      tokens.clear();
    },
    requests,
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
  const log = createLogger(config.logLevel);
  const deps = await createDeps(config, log);
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
      await dropDatabase(name);
    },
  };
}
