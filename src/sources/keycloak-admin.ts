// Keycloak Admin REST client for the service account (client_credentials, role view-users):
// list realm users page by page and find one by email. Owns token caching, timeouts and
// bounded retries; never logs or echoes the client secret or tokens.
// API: https://www.keycloak.org/docs-api/latest/rest-api/index.html (Users, UserRepresentation).
//
// Why one file of ~370 lines: one client whose calls share its token cache and its retry and
// backoff policy; paging, lookups by email and the parsing of UserRepresentation are each small
// and only this client's. The error type callers match on (KeycloakAdminError) sits with them.
import { AppError } from '../errors.js';

/** Keycloak's UserRepresentation, the fields postern reads (the rest is dropped on parse). */
export interface KeycloakUser {
  id: string;
  username: string;
  email?: string;
  emailVerified?: boolean;
  enabled: boolean;
  firstName?: string;
  lastName?: string;
  /** Absent with briefRepresentation=true, and for users without attributes. */
  attributes?: Record<string, string[]>;
  createdTimestamp?: number;
}

export type KeycloakAdminFailure =
  /** The token endpoint refused the client (wrong id/secret, service accounts disabled). */
  | 'invalid_client'
  /** The Admin API rejected a freshly issued token (401 twice). */
  | 'token_rejected'
  /** 403: the service account lacks the realm-management role view-users. */
  | 'forbidden'
  /** Any other non-2xx answer after retries (5xx, 429, 404 realm not found...). */
  | 'http_error'
  /** No answer: connection refused, DNS, timeout. */
  | 'unreachable'
  /** 2xx with a body that is not what Keycloak documents. */
  | 'malformed';

/**
 * Every Keycloak fault is a temporary backend fault for callers (passdb: 5xx, never a denial);
 * `failure` tells the sync log and tests which one it was.
 */
export class KeycloakAdminError extends AppError {
  constructor(
    readonly failure: KeycloakAdminFailure,
    message: string,
    readonly httpStatus?: number,
    options?: { cause?: unknown },
  ) {
    super('backend_unavailable', message, options);
    this.name = 'KeycloakAdminError';
  }
}

export interface RetryPolicy {
  /** Total attempts per request, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface KeycloakAdminOptions {
  /** Base URL without trailing slash, e.g. https://sso.example.org (Keycloak ≥ 17 has no /auth). */
  serverUrl: string;
  realm: string;
  clientId: string;
  clientSecret: string;
  /** How the secret is sent (postern_token_auth_method, as sign-in and the test connection); default client_secret_basic. */
  clientAuthMethod?: 'client_secret_post' | 'client_secret_basic';
  /** Per HTTP request (config.idpTimeoutMs). */
  timeoutMs: number;
  retry?: Partial<RetryPolicy>;
  /** Users per page; Keycloak's own default is 100. */
  pageSize?: number;
  fetch?: typeof fetch;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface KeycloakAdminClient {
  /** Pages of users (sorted by username, as Keycloak lists them) until a short page. */
  listUserPages(options?: { briefRepresentation?: boolean; signal?: AbortSignal }): AsyncGenerator<KeycloakUser[]>;
  /** The same listing, one user at a time; at most one page is held. */
  listUsers(options?: { briefRepresentation?: boolean; signal?: AbortSignal }): AsyncGenerator<KeycloakUser>;
  /** `?email=&exact=true`; undefined when no user has that email. */
  findUserByEmail(email: string, options?: { signal?: AbortSignal }): Promise<KeycloakUser | undefined>;
  /** Every user whose email is exactly this one (a realm may allow duplicate emails), in listing order. */
  findUsersByEmail(
    email: string,
    options?: { briefRepresentation?: boolean; signal?: AbortSignal },
  ): Promise<KeycloakUser[]>;
  /** Forget the cached token (e.g. after the settings changed). */
  resetToken(): void;
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 250, maxDelayMs: 5_000 };
/** Renew this long before Keycloak says the token expires (clock skew, request time). */
const TOKEN_EARLY_RENEW_MS = 30_000;

interface CachedToken {
  value: string;
  renewAt: number;
}

export function createKeycloakAdminClient(options: KeycloakAdminOptions): KeycloakAdminClient {
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const retry = { ...DEFAULT_RETRY, ...options.retry };
  const pageSize = options.pageSize ?? 100;
  const base = options.serverUrl.replace(/\/+$/, '');
  const realm = encodeURIComponent(options.realm);
  const tokenUrl = `${base}/realms/${realm}/protocol/openid-connect/token`;
  const usersUrl = `${base}/admin/realms/${realm}/users`;

  let token: CachedToken | undefined;
  let tokenInFlight: Promise<string> | undefined;

  /** One request with timeout and retries on 5xx/429/network errors; other statuses return. */
  async function send(
    url: string,
    init: RequestInit,
    signal: AbortSignal | undefined,
    what: string,
  ): Promise<Response> {
    let lastProblem = '';
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw abortError(signal);
      const timeout = AbortSignal.timeout(options.timeoutMs);
      let response: Response | undefined;
      let cause: unknown;
      try {
        response = await doFetch(url, { ...init, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
      } catch (error) {
        if (signal?.aborted) throw abortError(signal);
        cause = error;
        lastProblem = timeout.aborted ? `timed out after ${options.timeoutMs} ms` : describeNetworkError(error);
      }
      if (response && response.status !== 429 && response.status < 500) return response;
      if (response) {
        lastProblem = `Received HTTP ${response.status}`;
        await response.body?.cancel().catch(() => undefined);
      }
      if (attempt >= retry.attempts) {
        if (response) throw new KeycloakAdminError('http_error', `Keycloak ${what}: ${lastProblem}`, response.status);
        throw new KeycloakAdminError('unreachable', `Keycloak ${what}: ${lastProblem}`, undefined, { cause });
      }
      await sleep(backoffMs(attempt, retry, response?.headers.get('retry-after')));
    }
  }

  async function fetchToken(signal?: AbortSignal): Promise<string> {
    // client_secret_basic (RFC 6749 §2.3.1: form-encode id and secret before base64) or
    // client_secret_post; Keycloak's "Client Id and Secret" authenticator accepts both.
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    };
    if (options.clientAuthMethod === 'client_secret_post') {
      form.set('client_id', options.clientId);
      form.set('client_secret', options.clientSecret);
    } else {
      const basic = Buffer.from(`${formEncode(options.clientId)}:${formEncode(options.clientSecret)}`).toString(
        'base64',
      );
      headers.authorization = `Basic ${basic}`;
    }
    const startedAt = now();
    const response = await send(tokenUrl, { method: 'POST', headers, body: form.toString() }, signal, 'token request');
    const body = await readJson(response, 'token request');
    if (!response.ok) {
      const error = stringField(body, 'error') ?? `HTTP ${response.status}`;
      const description = stringField(body, 'error_description');
      if (response.status === 400 || response.status === 401) {
        throw new KeycloakAdminError(
          'invalid_client',
          `Keycloak refused the service-account token (${error}${description ? `: ${description}` : ''}); check client_id, client_secret and that the client has service accounts enabled`,
          response.status,
        );
      }
      throw new KeycloakAdminError(
        'http_error',
        `Keycloak token request: Received HTTP ${response.status} (${error})`,
        response.status,
      );
    }
    const accessToken = stringField(body, 'access_token');
    if (!accessToken) throw new KeycloakAdminError('malformed', 'Keycloak token response has no access_token');
    const expiresInSeconds = Number((body as Record<string, unknown>).expires_in ?? 60);
    const lifetimeMs = Number.isFinite(expiresInSeconds) && expiresInSeconds > 0 ? expiresInSeconds * 1000 : 60_000;
    // Short-lived tokens (tests, strict realms): renew at half-life instead of 30 s early.
    token = { value: accessToken, renewAt: startedAt + lifetimeMs - Math.min(TOKEN_EARLY_RENEW_MS, lifetimeMs / 2) };
    return accessToken;
  }

  function getToken(signal?: AbortSignal): Promise<string> {
    if (token && now() < token.renewAt) return Promise.resolve(token.value);
    // Concurrent callers share one token request.
    tokenInFlight ??= fetchToken(signal).finally(() => {
      tokenInFlight = undefined;
    });
    return tokenInFlight;
  }

  /** GET an Admin API URL as JSON; a rejected token is replaced once, then it is an error. */
  async function adminGet(url: string, signal: AbortSignal | undefined, what: string): Promise<unknown> {
    for (let tokenAttempt = 1; ; tokenAttempt++) {
      const accessToken = await getToken(signal);
      const response = await send(
        url,
        { method: 'GET', headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' } },
        signal,
        what,
      );
      if (response.status === 401) {
        await response.body?.cancel().catch(() => undefined);
        if (token?.value === accessToken) token = undefined;
        if (tokenAttempt < 2) continue;
        throw new KeycloakAdminError(
          'token_rejected',
          `Keycloak ${what}: the Admin API rejected a fresh service-account token (HTTP 401)`,
          401,
        );
      }
      if (response.status === 403) {
        await response.body?.cancel().catch(() => undefined);
        throw new KeycloakAdminError(
          'forbidden',
          `Keycloak ${what}: HTTP 403, the service account lacks view-users (assign realm-management → view-users to the client's service account)`,
          403,
        );
      }
      const body = await readJson(response, what);
      if (!response.ok) {
        throw new KeycloakAdminError(
          'http_error',
          `Keycloak ${what}: Received HTTP ${response.status}`,
          response.status,
        );
      }
      return body;
    }
  }

  async function* listUserPages(opts: { briefRepresentation?: boolean; signal?: AbortSignal } = {}) {
    for (let first = 0; ; first += pageSize) {
      const query = new URLSearchParams({
        first: String(first),
        max: String(pageSize),
        briefRepresentation: String(opts.briefRepresentation ?? false),
      });
      const body = await adminGet(`${usersUrl}?${query}`, opts.signal, 'users listing');
      const page = parseUsers(body);
      if (page.length > 0) yield page;
      // A short page is the last one; saves the empty request mailcow makes.
      if (page.length < pageSize) return;
    }
  }

  async function findUsersByEmail(
    email: string,
    opts: { briefRepresentation?: boolean; signal?: AbortSignal } = {},
  ): Promise<KeycloakUser[]> {
    // `exact=true` compares the whole email, ignoring case (UsersResource.getUsers → JpaUserProvider).
    const query = new URLSearchParams({
      email,
      exact: 'true',
      briefRepresentation: String(opts.briefRepresentation ?? false),
      max: '10',
    });
    const users = parseUsers(await adminGet(`${usersUrl}?${query}`, opts.signal, 'user lookup'));
    const wanted = email.toLowerCase();
    return users.filter((user) => user.email?.toLowerCase() === wanted);
  }

  return {
    listUserPages,
    async *listUsers(opts = {}) {
      for await (const page of listUserPages(opts)) yield* page;
    },
    async findUserByEmail(email, opts = {}) {
      return (await findUsersByEmail(email, { ...opts, briefRepresentation: false }))[0];
    },
    findUsersByEmail,
    resetToken() {
      token = undefined;
    },
  };
}

/** Exponential backoff with full jitter; Retry-After (seconds) wins when it is longer, capped. */
export function backoffMs(attempt: number, policy: RetryPolicy, retryAfter?: string | null): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const jittered = ceiling / 2 + Math.random() * (ceiling / 2);
  const hinted = retryAfter && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : 0;
  return Math.min(policy.maxDelayMs, Math.max(jittered, hinted));
}

function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, '+');
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted');
}

function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: string } }).cause;
  return cause?.code ? `connection failed (${cause.code})` : 'connection failed';
}

async function readJson(response: Response, what: string): Promise<unknown> {
  const text = await response.text();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    if (!response.ok) return undefined;
    // mailcow's wording for the same case.
    throw new KeycloakAdminError(
      'malformed',
      `Keycloak ${what}: Received malformed response from keycloak api`,
      response.status,
      {
        cause: error,
      },
    );
  }
}

function stringField(body: unknown, key: string): string | undefined {
  const value = body && typeof body === 'object' ? (body as Record<string, unknown>)[key] : undefined;
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Keycloak's user array → our narrow type; anything else is a malformed answer. */
function parseUsers(body: unknown): KeycloakUser[] {
  if (!Array.isArray(body)) {
    throw new KeycloakAdminError('malformed', 'Keycloak users listing: Received malformed response from keycloak api');
  }
  return body.map((raw: unknown) => {
    if (!raw || typeof raw !== 'object') {
      throw new KeycloakAdminError('malformed', 'Keycloak users listing: an entry is not a UserRepresentation');
    }
    const r = raw as Record<string, unknown>;
    if (typeof r.id !== 'string' || typeof r.username !== 'string') {
      throw new KeycloakAdminError('malformed', 'Keycloak users listing: an entry lacks id or username');
    }
    // Keycloak always sends enabled; if it ever does not, treat the user as disabled (fail closed).
    const user: KeycloakUser = { id: r.id, username: r.username, enabled: r.enabled === true };
    if (typeof r.email === 'string' && r.email !== '') user.email = r.email;
    // Keycloak always sends emailVerified; anything but true counts as unverified (fail closed).
    user.emailVerified = r.emailVerified === true;
    if (typeof r.firstName === 'string') user.firstName = r.firstName;
    if (typeof r.lastName === 'string') user.lastName = r.lastName;
    if (typeof r.createdTimestamp === 'number') user.createdTimestamp = r.createdTimestamp;
    if (r.attributes && typeof r.attributes === 'object' && !Array.isArray(r.attributes)) {
      // Built with Object.fromEntries: an attribute a user named `__proto__` stays an own property
      // instead of replacing the object's prototype, as an assignment would.
      const entries: [string, string[]][] = [];
      for (const [key, value] of Object.entries(r.attributes as Record<string, unknown>)) {
        if (Array.isArray(value)) entries.push([key, value.map(String)]);
        else if (value !== null && value !== undefined) entries.push([key, [String(value)]]);
      }
      user.attributes = Object.fromEntries(entries);
    }
    return user;
  });
}
