// lua/dovecot/passdb.lua inside a real Dovecot 2.3, against a programmable stub of postern's
// passdb endpoint: what Dovecot sends, and how each answer becomes an IMAP/submission reply.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type RunningDovecot, startDovecot } from '../support/dovecot.js';
import { imapLogin, imapSelectInbox, submissionAuthPlain } from '../support/mail-clients.js';
import { type StubPassdbServer, startStubPassdbServer } from '../support/stub-passdb-server.js';

const TOKEN = `test-internal-token-${randomBytes(6).toString('hex')}`;
const TIMEOUT_MS = 1000;
const AUTH_FAILED = /^a1 NO \[AUTHENTICATIONFAILED\]/;
const UNAVAILABLE = /^a1 NO \[UNAVAILABLE\] Temporary authentication failure\./;

// Every password sent in this file, so the last test can prove none reached a log.
const usedPasswords = new Set<string>();
function password(label: string): string {
  const value = `pw-${label}-${randomBytes(6).toString('hex')}`;
  usedPasswords.add(value);
  return value;
}

/** A port with nothing listening on it (bound by the OS, then released). */
async function closedPort(): Promise<number> {
  const stub = await startStubPassdbServer();
  const { port } = stub;
  await stub.close();
  return port;
}

async function waitForLog(dovecot: RunningDovecot, pattern: RegExp, timeoutMs = 3000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const logs = dovecot.logs();
    if (pattern.test(logs) || Date.now() > deadline) return logs;
    await new Promise((r) => setTimeout(r, 50));
  }
}

let stub: StubPassdbServer;
let withToken: RunningDovecot; // token configured, 1 s timeout
let withoutToken: RunningDovecot; // no token configured
let refused: RunningDovecot; // POSTERN_AUTH_URL points at a closed port
let knownUsersOnly: RunningDovecot; // userdb knows only known@example.org
let cached: RunningDovecot; // Dovecot auth cache on, 1 s TTL

beforeAll(async () => {
  stub = await startStubPassdbServer();
  const deadPort = await closedPort();
  [withToken, withoutToken, refused, knownUsersOnly, cached] = await Promise.all([
    startDovecot({ authUrl: stub.url, internalToken: TOKEN, timeoutMs: TIMEOUT_MS }),
    startDovecot({ authUrl: stub.url }),
    startDovecot({ authUrl: `http://127.0.0.1:${deadPort}/`, timeoutMs: TIMEOUT_MS }),
    startDovecot({ authUrl: stub.url, users: ['known@example.org'], submission: false }),
    startDovecot({ authUrl: stub.url, authCache: { size: '1M', ttl: '1s' } }),
  ]);
});

afterAll(async () => {
  await Promise.all([withToken, withoutToken, refused, knownUsersOnly, cached].map((d) => d?.stop()));
  await stub?.close();
});

beforeEach(() => {
  stub.reset();
});

describe('passdb.lua: the request Dovecot sends', () => {
  it('posts username, password, real_rip, service and resolve_alias_domains as JSON, byte for byte', async () => {
    // Quotes, backslashes, UTF-8 (2-, 3- and 4-byte), a slash and control characters that
    // Dovecot lets through (it refuses only \x01, tab, CR and LF itself).
    const odd = `${password('odd')}"\\/ äß€😀 \x02\x1b\x7f'`;
    usedPasswords.add(odd);

    const login = await imapLogin(withToken.imapPort, 'user@example.org', odd, { mechanism: 'LOGIN' });
    const plain = await imapLogin(withToken.imapPort, 'user@example.org', odd, { mechanism: 'PLAIN' });

    expect(login.ok).toBe(true);
    expect(plain.ok).toBe(true);
    expect(stub.requests).toHaveLength(2);
    for (const request of stub.requests) {
      expect(request.method).toBe('POST');
      expect(request.url).toBe('/');
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.json).toEqual({
        username: 'user@example.org',
        password: odd,
        real_rip: '127.0.0.1',
        service: 'imap',
        // The script hands the answer's canonical username to Dovecot (see the alias test below).
        resolve_alias_domains: true,
      });
    }
  });

  it('sends the bearer token when POSTERN_INTERNAL_TOKEN is set', async () => {
    await imapLogin(withToken.imapPort, 'user@example.org', password('token'));

    expect(stub.requests[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('sends no Authorization header when no token is configured', async () => {
    const result = await imapLogin(withoutToken.imapPort, 'user@example.org', password('no-token'));

    expect(result.ok).toBe(true);
    expect(stub.requests).toHaveLength(1);
    expect(stub.requests[0]?.headers.authorization).toBeUndefined();
  });

  it('identifies itself with its own User-Agent', async () => {
    await imapLogin(withToken.imapPort, 'user@example.org', password('agent'));

    expect(stub.requests[0]?.headers['user-agent']).toBe('postern-dovecot-passdb');
  });

  it('asks postern about usernames without a domain instead of refusing them itself', async () => {
    const result = await imapLogin(withToken.imapPort, 'nodomain', password('nodomain'));

    expect(result.ok).toBe(true);
    expect(stub.requests.map((r) => r.json)).toEqual([expect.objectContaining({ username: 'nodomain' })]);
  });

  it('receives usernames lowercased by Dovecot (auth_username_format %Lu)', async () => {
    await imapLogin(withToken.imapPort, 'Mixed.Case@Example.ORG', password('case'));

    expect(stub.requests[0]?.json).toEqual(expect.objectContaining({ username: 'mixed.case@example.org' }));
  });

  it('never reaches postern with a password containing a tab: Dovecot refuses it first', async () => {
    const result = await imapLogin(withToken.imapPort, 'user@example.org', `${password('tab')}\tx`, {
      mechanism: 'PLAIN',
    });

    expect(result.line).toMatch(AUTH_FAILED);
    expect(stub.requests).toHaveLength(0);
  });

  it('reuses one keep-alive HTTP connection for consecutive logins', async () => {
    for (let i = 0; i < 3; i++) await imapLogin(withToken.imapPort, 'user@example.org', password(`keepalive${i}`));

    expect(stub.requests).toHaveLength(3);
    expect(new Set(stub.requests.map((r) => r.remotePort)).size).toBeLessThan(3);
  });
});

describe('passdb.lua: keep-alive against a server that closes idle connections', () => {
  it('opens a fresh connection when postern has closed the idle one', async () => {
    // Node closes an idle keep-alive socket about 1 s after keepAliveTimeout (measured).
    const quickStub = await startStubPassdbServer(undefined, { keepAliveTimeoutMs: 100 });
    const dovecot = await startDovecot({ authUrl: quickStub.url, submission: false });
    try {
      const first = await imapLogin(dovecot.imapPort, 'user@example.org', password('idle1'));
      await new Promise((r) => setTimeout(r, 1500));
      const second = await imapLogin(dovecot.imapPort, 'user@example.org', password('idle2'));

      expect([first.ok, second.ok]).toEqual([true, true]);
      expect(quickStub.requests).toHaveLength(2);
      expect(quickStub.requests[0]?.remotePort).not.toBe(quickStub.requests[1]?.remotePort);
    } finally {
      await dovecot.stop();
      await quickStub.close();
    }
  });
});

describe('passdb.lua: how answers become IMAP replies', () => {
  it.each(['LOGIN', 'PLAIN'] as const)('logs in with %s when postern answers 200 success', async (mechanism) => {
    const result = await imapLogin(withToken.imapPort, 'user@example.org', password(`ok-${mechanism}`), {
      mechanism,
    });

    expect(result.ok).toBe(true);
    expect(result.line).toMatch(/^a1 OK .*Logged in/);
  });

  it('completes the login through userdb and mail storage: SELECT INBOX works', async () => {
    const result = await imapSelectInbox(withToken.imapPort, 'user@example.org', password('select'));

    expect(result.login.ok).toBe(true);
    expect(result.select?.line).toMatch(/^a2 OK \[READ-WRITE\]/);
  });

  it('continues as the canonical user when postern answers with a different username', async () => {
    stub.respondWith({ status: 200, body: { success: true, username: 'canonical@example.org' } });

    const result = await imapSelectInbox(withToken.imapPort, 'alias@example.org', password('canonical'));

    expect(result.select?.ok).toBe(true);
    const logs = await waitForLog(withToken, /imap\(canonical@example\.org\)/);
    expect(logs).toMatch(/imap\(canonical@example\.org\)/);
    expect(logs).not.toMatch(/imap\(alias@example\.org\)/);
  });

  it.each([
    ['401 password_mismatch', { status: 401, body: { success: false, result: 'password_mismatch' } }],
    ['401 with the compatibility body only', { status: 401, body: { success: false } }],
    ['401 user_unknown', { status: 401, body: { success: false, result: 'user_unknown' } }],
    ['401 user_disabled', { status: 401, body: { success: false, result: 'user_disabled' } }],
    ['401 with a non-JSON body', { status: 401, body: 'denied' }],
  ])('refuses with AUTHENTICATIONFAILED on %s', async (_label, answer) => {
    stub.respondWith(answer);

    const result = await imapLogin(withToken.imapPort, 'user@example.org', password('denied'));

    expect(result.ok).toBe(false);
    expect(result.line).toMatch(AUTH_FAILED);
    expect(stub.requests).toHaveLength(1);
  });

  it.each([
    ['500', { status: 500, body: { success: false, result: 'internal_failure' } }],
    ['503 with a non-JSON body', { status: 503, body: 'maintenance' }],
    ['400', { status: 400, body: { success: false } }],
    ['200 with a non-JSON body', { status: 200, body: 'OK' }],
    ['200 without success', { status: 200, body: { result: 'ok' } }],
    ['200 with success false', { status: 200, body: { success: false } }],
    ['200 with success "true" as a string', { status: 200, body: { success: 'true' } }],
  ])('answers UNAVAILABLE (temporary failure) on %s', async (_label, answer) => {
    stub.respondWith(answer);

    const result = await imapLogin(withToken.imapPort, 'user@example.org', password('fault'));

    expect(result.line).toMatch(UNAVAILABLE);
  });

  it('answers UNAVAILABLE when postern is slower than POSTERN_AUTH_TIMEOUT_MS, without waiting for it', async () => {
    stub.respondWith({ status: 200, body: { success: true }, delayMs: 4000 });

    const started = Date.now();
    const result = await imapLogin(withToken.imapPort, 'user@example.org', password('slow'));
    const elapsedMs = Date.now() - started;

    expect(result.line).toMatch(UNAVAILABLE);
    // 1 s request budget (request_absolute_timeout_msecs) + at most 0.5 s of failure batching.
    expect(elapsedMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(elapsedMs).toBeLessThan(TIMEOUT_MS + 1200);
    expect(stub.requests).toHaveLength(1);
  });

  it('answers UNAVAILABLE when postern refuses connections', async () => {
    const result = await imapLogin(refused.imapPort, 'user@example.org', password('refused'));

    expect(result.line).toMatch(UNAVAILABLE);
  });

  it('retries once, then answers UNAVAILABLE, when postern drops the connection', async () => {
    stub.respondWith({ drop: true });

    const result = await imapLogin(withToken.imapPort, 'user@example.org', password('drop'));

    expect(result.line).toMatch(UNAVAILABLE);
    expect(stub.requests).toHaveLength(2);
  });

  it('does not follow redirects (the password would go elsewhere)', async () => {
    stub.respondWith({ status: 307, body: '', headers: { location: `${stub.url}elsewhere` } });

    const result = await imapLogin(withToken.imapPort, 'user@example.org', password('redirect'));

    expect(result.line).toMatch(UNAVAILABLE);
    expect(stub.requests.map((r) => r.url)).toEqual(['/']);
  });

  it('fails the login (internal error or dropped connection) when postern accepts a user the userdb does not know', async () => {
    const known = await imapSelectInbox(knownUsersOnly.imapPort, 'known@example.org', password('known'));
    // Measured on 2.3.19 ("user not found from userdb" in the log): the client usually sees the
    // connection close without any reply (28 of 30 tries), else NO [UNAVAILABLE] Internal error.
    const unknown = await imapLogin(knownUsersOnly.imapPort, 'stranger@example.org', password('stranger')).catch(
      (error: Error) => ({ ok: false, line: error.message }),
    );

    expect(known.select?.ok).toBe(true);
    expect(unknown.ok).toBe(false);
    expect(unknown.line).toMatch(/^a1 NO \[UNAVAILABLE\] Internal error occurred|^IMAP: connection closed/);
    expect(stub.requests).toHaveLength(2);
    const logs = await waitForLog(knownUsersOnly, /user not found from userdb/);
    expect(logs).toMatch(/stranger@example\.org.*user not found from userdb/);
  });
});

describe('passdb.lua: submission', () => {
  it('has a submission listener (dovecot-submissiond installed)', () => {
    expect(withToken.submissionPort).toBeTypeOf('number');
  });

  it.each([
    ['200 success', 235, { status: 200, body: { success: true } }],
    ['401', 535, { status: 401, body: { success: false } }],
    ['500', 454, { status: 500, body: { success: false } }],
  ] as const)('answers AUTH PLAIN on %s with %i', async (_label, code, answer) => {
    stub.respondWith(answer);

    const result = await submissionAuthPlain(withToken.submissionPort ?? 0, 'user@example.org', password('smtp'));

    expect(result.code).toBe(code);
    expect(stub.requests[0]?.json).toEqual(expect.objectContaining({ service: 'submission' }));
  });

  it('answers 454 when postern is unreachable', async () => {
    const result = await submissionAuthPlain(refused.submissionPort ?? 0, 'user@example.org', password('smtp-down'));

    expect(result.code).toBe(454);
  });
});

describe('passdb.lua with Dovecot auth cache (cache_key=%s:%u:%w)', () => {
  it('serves a repeated login from the cache, asks again for another password or service, and falls back to the expired entry while postern fails', async () => {
    const good = password('cache-good');

    expect((await imapLogin(cached.imapPort, 'cache@example.org', good)).ok).toBe(true);
    expect((await imapLogin(cached.imapPort, 'cache@example.org', good)).ok).toBe(true);
    expect(stub.requests).toHaveLength(1);

    // The service is part of the key: postern decides per service (imap_access, smtp_access …).
    expect((await submissionAuthPlain(cached.submissionPort ?? 0, 'cache@example.org', good)).code).toBe(235);
    expect(stub.requests).toHaveLength(2);

    stub.respondWith({ status: 401, body: { success: false } });
    const other = await imapLogin(cached.imapPort, 'cache@example.org', password('cache-other'));
    expect(other.line).toMatch(AUTH_FAILED);
    expect(stub.requests).toHaveLength(3);

    // After the TTL (whole seconds: a 1 s entry expires 1-2 s after its creation), postern is
    // asked again; its fault is not final: Dovecot serves the expired entry.
    await new Promise((r) => setTimeout(r, 2100));
    stub.respondWith({ status: 500, body: { success: false } });
    const duringOutage = await imapLogin(cached.imapPort, 'cache@example.org', good);
    expect(duringOutage.ok).toBe(true);
    expect(stub.requests).toHaveLength(4);
  });
});

describe('passdb.lua: secrets in logs', () => {
  it('never writes a password or the token to the Dovecot log, even with auth_debug on', () => {
    const instances = [withToken, withoutToken, refused, knownUsersOnly, cached];
    expect(usedPasswords.size).toBeGreaterThan(20);
    for (const instance of instances) {
      const logs = instance.logs();
      expect(logs).toContain('postern passdb');
      for (const secret of [...usedPasswords, TOKEN]) {
        expect(logs.includes(secret), `secret found in the log of ${instance.baseDir}`).toBe(false);
      }
      // The request body never reaches a log line either.
      expect(logs).not.toMatch(/"password"/);
    }
  });
});
