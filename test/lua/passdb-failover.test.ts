// lua/dovecot/passdb.lua with a list of postern replicas in POSTERN_AUTH_URL, inside a real
// Dovecot 2.3, against programmable stubs of postern's passdb endpoint: failover on connection
// errors and timeouts only, the per-process back-off of a dead replica, and a temporary failure
// when no replica answers.
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type RunningDovecot, type StartDovecotOptions, startDovecot } from '../support/dovecot.js';
import { imapLogin, submissionAuthPlain } from '../support/mail-clients.js';
import { sleep } from '../support/processes.js';
import { type StubAnswer, type StubPassdbServer, startStubPassdbServer } from '../support/stub-passdb-server.js';

const TIMEOUT_MS = 1000;
const AUTH_FAILED = /^a1 NO \[AUTHENTICATIONFAILED\]/;
const UNAVAILABLE = /^a1 NO \[UNAVAILABLE\] Temporary authentication failure\./;
// One auth worker: the back-off lives in each worker process, so with one the test knows which
// memory every login meets.
const ONE_AUTH_WORKER = 'service auth-worker {\n  process_limit = 1\n}\n';
// A stub that accepts the request and never answers within the test's timeout.
const HANG: StubAnswer = { status: 200, body: { success: true }, delayMs: 30_000 };

const usedPasswords = new Set<string>();
function password(label: string): string {
  const value = `pw-${label}-${randomBytes(6).toString('hex')}`;
  usedPasswords.add(value);
  return value;
}

const stubs: StubPassdbServer[] = [];
const dovecots: RunningDovecot[] = [];
/** The logs of every Dovecot a test stopped, for the last test's check. */
const stoppedLogs: string[] = [];

async function stub(answer?: StubAnswer, port?: number): Promise<StubPassdbServer> {
  const server = await startStubPassdbServer(answer, { port });
  stubs.push(server);
  return server;
}

/** A port with nothing listening on it (bound by the OS, then released). */
async function closedPort(): Promise<number> {
  const server = await startStubPassdbServer();
  const { port } = server;
  await server.close();
  return port;
}

const urlOf = (port: number) => `http://127.0.0.1:${port}/`;

async function dovecot(authUrl: StartDovecotOptions['authUrl'], extra: Partial<StartDovecotOptions> = {}) {
  const running = await startDovecot({
    authUrl,
    timeoutMs: TIMEOUT_MS,
    submission: false,
    extraConfig: ONE_AUTH_WORKER,
    ...extra,
  });
  dovecots.push(running);
  return running;
}

async function timedLogin(port: number, label: string) {
  const started = Date.now();
  const result = await imapLogin(port, 'user@example.org', password(label));
  return { ...result, elapsedMs: Date.now() - started };
}

const failures = (instance: RunningDovecot) => instance.logs().match(/postern passdb: request to \S+ failed/g) ?? [];

// Each test's Dovecot stops after it: twenty masters with their auth and login processes left
// running slowed the next one's start past the test's timeout on CI.
afterEach(async () => {
  const done = dovecots.splice(0);
  // Read before stop(): stopping removes the instance's directory and its log file.
  stoppedLogs.push(...done.map((d) => d.logs()));
  await Promise.all(done.map((d) => d.stop()));
});

afterAll(async () => {
  await Promise.all(stubs.map((s) => s.close()));
});

beforeEach(() => {
  for (const s of stubs) s.reset();
});

describe('passdb.lua failover: a replica that cannot answer', () => {
  it('logs in through the next replica when the first refuses connections, and logs why', async () => {
    const dead = await closedPort();
    const live = await stub();
    const instance = await dovecot([urlOf(dead), live.url]);

    const result = await imapLogin(instance.imapPort, 'user@example.org', password('refused'));

    expect(result.line).toMatch(/^a1 OK .*Logged in/);
    expect(live.requests).toHaveLength(1);
    expect(instance.logs()).toMatch(
      new RegExp(`request to http://127\\.0\\.0\\.1:${dead}/ failed: .*\\(status 9003\\); trying ${live.url}`),
    );
  });

  it('fails over when the first replica does not answer within POSTERN_AUTH_TIMEOUT_MS, after one timeout', async () => {
    const hanging = await stub(HANG);
    const live = await stub();
    const instance = await dovecot([hanging.url, live.url]);

    const result = await timedLogin(instance.imapPort, 'timeout');

    expect(result.line).toMatch(/^a1 OK .*Logged in/);
    expect(hanging.requests).toHaveLength(1);
    expect(live.requests).toHaveLength(1);
    expect(result.elapsedMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(result.elapsedMs).toBeLessThan(TIMEOUT_MS + 1000);
    expect(instance.logs()).toMatch(/\(status 9008\); trying/);
  });

  it('fails over when the first replica drops the connection (after lib-http retried it once)', async () => {
    const dropping = await stub({ drop: true });
    const live = await stub();
    const instance = await dovecot([dropping.url, live.url]);

    const result = await imapLogin(instance.imapPort, 'user@example.org', password('drop'));

    expect(result.line).toMatch(/^a1 OK .*Logged in/);
    expect(dropping.requests).toHaveLength(2);
    expect(live.requests).toHaveLength(1);
    expect(instance.logs()).toMatch(/\(status 9005\); trying/);
  });

  it('asks a replica that timed out last for 2-3 s, so logins skip its timeout, then tries it first again', async () => {
    const hanging = await stub(HANG);
    const live = await stub();
    const instance = await dovecot([hanging.url, live.url]);

    const first = await timedLogin(instance.imapPort, 'backoff-first');
    const markedAt = Date.now();
    expect(first.ok).toBe(true);
    expect(hanging.requests).toHaveLength(1);

    // Within the back-off every login goes straight to the live replica.
    const during: Array<{ ok: boolean; elapsedMs: number }> = [];
    while (Date.now() - markedAt < 1800) during.push(await timedLogin(instance.imapPort, 'backoff-during'));
    expect(during.length).toBeGreaterThan(2);
    for (const login of during) {
      expect(login.ok).toBe(true);
      expect(login.elapsedMs).toBeLessThan(TIMEOUT_MS / 2);
    }
    expect(hanging.requests).toHaveLength(1);
    expect(live.requests).toHaveLength(1 + during.length);

    // After at most 3 s the replica is first in line again (and times out again).
    await sleep(Math.max(0, 3100 - (Date.now() - markedAt)));
    const after = await timedLogin(instance.imapPort, 'backoff-after');
    expect(after.ok).toBe(true);
    expect(hanging.requests).toHaveLength(2);
    expect(after.elapsedMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
  });

  it('still asks a replica in back-off when the others fail, and takes it back once it answers', async () => {
    const firstPort = await closedPort();
    const second = await stub();
    const instance = await dovecot([urlOf(firstPort), second.url]);

    // The first is down: marked dead, the second answers.
    expect((await imapLogin(instance.imapPort, 'user@example.org', password('last-1'))).ok).toBe(true);
    // The first comes back, the second goes down, all within the first's back-off: the second
    // is asked first and refuses, then the first, in back-off, answers.
    const first = await stub(undefined, firstPort);
    await second.close();
    expect((await imapLogin(instance.imapPort, 'user@example.org', password('last-2'))).ok).toBe(true);
    expect(first.requests).toHaveLength(1);
    expect(instance.logs()).toMatch(new RegExp(`request to ${second.url} failed: .*; trying ${first.url}`));

    // The first left its back-off by answering; the second is in back-off now: the next login
    // goes to the first directly, without another failure.
    const failuresBefore = failures(instance).length;
    expect((await imapLogin(instance.imapPort, 'user@example.org', password('last-3'))).ok).toBe(true);
    expect(first.requests).toHaveLength(2);
    expect(failures(instance)).toHaveLength(failuresBefore);
  });
});

describe('passdb.lua failover: never on an answer postern gave', () => {
  it.each([
    ['401 password_mismatch', { status: 401, body: { success: false, result: 'password_mismatch' } }, AUTH_FAILED],
    ['401 user_unknown', { status: 401, body: { success: false, result: 'user_unknown' } }, AUTH_FAILED],
    [
      '401 after 600 ms (slow, but within the timeout)',
      { status: 401, body: { success: false }, delayMs: 600 },
      AUTH_FAILED,
    ],
    ['500', { status: 500, body: { success: false, result: 'internal_failure' } }, UNAVAILABLE],
    ['503 with a non-JSON body', { status: 503, body: 'maintenance' }, UNAVAILABLE],
    ['400', { status: 400, body: { success: false } }, UNAVAILABLE],
    ['200 without success', { status: 200, body: { result: 'ok' } }, UNAVAILABLE],
    ['307 redirect', { status: 307, body: '', headers: { location: 'http://127.0.0.1:9/' } }, UNAVAILABLE],
  ] as const)('takes %s from the first replica as final: the second is never asked', async (_label, answer, line) => {
    const first = await stub(answer);
    const second = await stub();
    // Every answer here must arrive within the timeout, the slow one included: with the 1 s of
    // the other tests, a loaded CI machine (the auth worker's first start counts) once pushed the
    // 600 ms answer past it, and the failover to the second replica was right to log in.
    const instance = await dovecot([first.url, second.url], { timeoutMs: 4 * TIMEOUT_MS });

    const result = await imapLogin(instance.imapPort, 'user@example.org', password('final'));

    expect(result.line).toMatch(line);
    expect(first.requests).toHaveLength(1);
    expect(second.requests).toHaveLength(0);
    expect(failures(instance)).toHaveLength(0);
  });
});

describe('passdb.lua failover: no replica reachable', () => {
  it('answers a temporary failure over IMAP and submission when every replica is down', async () => {
    const instance = await dovecot([urlOf(await closedPort()), urlOf(await closedPort())], { submission: true });

    const imap = await imapLogin(instance.imapPort, 'user@example.org', password('all-dead'));
    const smtp = await submissionAuthPlain(instance.submissionPort ?? 0, 'user@example.org', password('all-dead'));

    expect(imap.line).toMatch(UNAVAILABLE);
    expect(smtp.code).toBe(454);
    expect(instance.logs()).toMatch(/failed: .*; no replica left/);
  });

  it('logs in through a lone postern as soon as it is back after an outage: a single URL is never held back', async () => {
    // Six failed logins mark the one replica dead over and over; being the only one, it is
    // still asked at once (and lib-http's own connect back-off, measured here, delays nothing).
    const port = await closedPort();
    const instance = await dovecot(urlOf(port));
    for (let i = 0; i < 6; i++) {
      expect((await imapLogin(instance.imapPort, 'user@example.org', password(`outage-${i}`))).line).toMatch(
        UNAVAILABLE,
      );
    }
    const back = await stub(undefined, port);
    await sleep(1100);

    const result = await timedLogin(instance.imapPort, 'outage-back');

    expect(result.line).toMatch(/^a1 OK .*Logged in/);
    expect(back.requests).toHaveLength(1);
    expect(result.elapsedMs).toBeLessThan(TIMEOUT_MS / 2);
  });
});

describe('passdb.lua failover: configuration', () => {
  it('keeps a single URL working as before', async () => {
    const live = await stub();
    const instance = await dovecot(live.url);

    expect((await imapLogin(instance.imapPort, 'user@example.org', password('single'))).ok).toBe(true);
    expect(live.requests).toHaveLength(1);
    expect(instance.logs()).toContain(`postern passdb: url=${live.url} timeout_ms=${TIMEOUT_MS}`);
  });

  it('accepts blanks around the commas and logs the list without userinfo', async () => {
    const a = await stub();
    const b = await stub();
    const instance = await dovecot(` http://someone:s3cret-in-url@127.0.0.1:${a.port}/ ,  ${b.url}`);

    expect((await imapLogin(instance.imapPort, 'user@example.org', password('blanks'))).ok).toBe(true);
    expect(a.requests).toHaveLength(1);
    const logs = instance.logs();
    expect(logs).toContain(`postern passdb: url=http://***@127.0.0.1:${a.port}/,${b.url} `);
    expect(logs).not.toContain('s3cret-in-url');
  });

  it.each([
    ['an empty entry', 'http://127.0.0.1:1/,,http://127.0.0.1:2/', /must be an http:\/\/ or https:\/\/ URL/],
    ['a trailing comma', 'http://127.0.0.1:1/,', /must be an http:\/\/ or https:\/\/ URL/],
    [
      'an entry that is no http(s) URL',
      'http://127.0.0.1:1/,ftp://127.0.0.1:2/',
      /must be an http:\/\/ or https:\/\/ URL/,
    ],
    ['a URL listed twice', 'http://127.0.0.1:1/, http://127.0.0.1:1/', /lists http:\/\/127\.0\.0\.1:1\/ twice/],
  ])('refuses to start with %s in the list', async (_label, authUrl, message) => {
    await expect(startDovecot({ authUrl, submission: false, startTimeoutMs: 20_000 })).rejects.toThrow(message);
  });
});

describe('passdb.lua failover: secrets in logs', () => {
  it('never writes a password to the Dovecot log, even with auth_debug on', () => {
    expect(usedPasswords.size).toBeGreaterThan(15);
    expect(stoppedLogs.length).toBeGreaterThan(15);
    for (const logs of stoppedLogs) {
      expect(logs).toMatch(/postern passdb: url=/);
      for (const secret of usedPasswords) expect(logs.includes(secret)).toBe(false);
      expect(logs).not.toMatch(/"password"/);
    }
  });
});
