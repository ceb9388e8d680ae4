// Where the registry learns the secrets of a test run without the tests naming them: every
// password a test postern hashes or checks, every TOTP code generated in the test process, the
// credentials of every HTTP request made with fetch (the tests' and postern's own calls to an
// IdP), and the secrets in their answers (session cookies, API keys, tokens, client secrets).
import { HOTP } from 'otpauth';
import type { HashPool } from '../../src/passwords/hash-pool.js';
import { registerSecret } from './secret-registry.js';

const watchedPools = new WeakSet<HashPool>();

/** Registers what goes into the pool (passwords, candidates) and what comes out (hashes). */
export function watchHashPool(pool: HashPool): void {
  if (watchedPools.has(pool)) return;
  watchedPools.add(pool);
  const { hash, verify } = pool;
  pool.hash = async (password, scheme) => {
    registerSecret('password hashed by postern', password);
    const hashed = await hash.call(pool, password, scheme);
    registerSecret('password hash', hashed);
    return hashed;
  };
  pool.verify = (stored, candidate) => {
    registerSecret('password checked by postern', candidate);
    registerSecret('password hash', stored);
    return verify.call(pool, stored, candidate);
  };
}

/** Fields of a JSON answer or a form that hold a secret. */
const SECRET_FIELDS = new Set([
  'key',
  'password',
  'new_password',
  'secret',
  'client_secret',
  'access_token',
  'refresh_token',
  'id_token',
  'token',
  'code_verifier',
  'recovery_codes',
  'totp_secret',
  'api_key',
  'csrf_token',
  'csrfToken',
]);

function registerFields(value: unknown, depth = 0): void {
  if (depth > 6 || value === null || typeof value !== 'object') return;
  for (const [field, inner] of Object.entries(value)) {
    if (SECRET_FIELDS.has(field)) {
      if (typeof inner === 'string') registerSecret(`${field} sent or received over HTTP`, inner);
      else if (Array.isArray(inner)) for (const item of inner) registerSecret(`${field} over HTTP`, item);
    } else registerFields(inner, depth + 1);
  }
}

function registerHeaders(headers: Headers, kind: string): void {
  const authorization = headers.get('authorization');
  if (authorization) {
    const [scheme, credentials = ''] = authorization.split(' ', 2);
    registerSecret(`${kind} authorization header`, credentials);
    if (scheme?.toLowerCase() === 'basic') {
      const decoded = Buffer.from(credentials, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon >= 0) registerSecret(`${kind} Basic password`, decoded.slice(colon + 1));
    }
  }
  registerSecret(`${kind} x-api-key header`, headers.get('x-api-key') ?? undefined);
  for (const cookie of (headers.get('cookie') ?? '').split(';')) {
    registerSecret(`${kind} cookie`, cookie.slice(cookie.indexOf('=') + 1).trim());
  }
}

function registerBody(body: unknown): void {
  if (typeof body === 'string') {
    try {
      registerFields(JSON.parse(body));
    } catch {
      registerFields(Object.fromEntries(new URLSearchParams(body)));
    }
  } else if (body instanceof URLSearchParams) registerFields(Object.fromEntries(body));
}

let fetchWatched = false;

/** Wraps the global fetch of this test file's process: every request and answer is looked at. */
export function watchFetch(): void {
  if (fetchWatched) return;
  fetchWatched = true;
  const original = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    try {
      const request = input instanceof Request ? input : undefined;
      registerHeaders(new Headers(init?.headers ?? request?.headers), 'request');
      registerBody(init?.body);
    } catch {
      // an unusual request is the test's business; registration never breaks it
    }
    const response = await original(input, init);
    try {
      for (const cookie of response.headers.getSetCookie()) {
        const pair = cookie.split(';', 1)[0] ?? '';
        registerSecret('cookie set by a response', decodeURIComponent(pair.slice(pair.indexOf('=') + 1)));
      }
      const type = response.headers.get('content-type') ?? '';
      const size = Number(response.headers.get('content-length') ?? 0);
      if (type.includes('json') && size < 1 << 20) registerFields(await response.clone().json());
    } catch {
      // an answer that is not JSON after all: nothing to register
    }
    return response;
  };
}

let otpWatched = false;

/** Every TOTP/HOTP code generated in this process (tests' and postern's) is a secret. */
export function watchOtp(): void {
  if (otpWatched) return;
  otpWatched = true;
  const generate = HOTP.generate.bind(HOTP);
  HOTP.generate = (options) => {
    const code = generate(options);
    registerSecret('TOTP code', code, { bounded: true });
    registerSecret('TOTP secret', options.secret.base32);
    return code;
  };
}
