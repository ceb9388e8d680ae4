// No password, API key or app password reaches a log line or an audit row, with postern logging
// at debug level (everything it would ever log) through admin sign-in (wrong and right password),
// API key creation, use and revocation, and passdb logins with right and wrong
// passwords and an app password. The log lines are captured from postern's own logger.
// Every test postern's log and audit rows are scanned the same way when it is destroyed
// (test/support/secret-scan.ts); the tests at the end show that scan finds what it must.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from './support/env.js';
import { scanRunDir } from './support/secret-global.js';
import { registeredSecrets, registerSecret } from './support/secret-registry.js';
import { SecretLeakError } from './support/secret-scan.js';
import { seedAdminAccount, seedAppPassword, seedDomain, seedMailbox } from './support/seed.js';

const ORIGIN = 'https://admin.example.org';
const ADMIN_PASSWORD = 'log-test admin passphrase 7301';
const WRONG_ADMIN_PASSWORD = 'log-test wrong passphrase 7302';
const MAILBOX_PASSWORD = 'log-test mailbox secret 7303';
const WRONG_MAILBOX_PASSWORD = 'log-test wrong mailbox 7304';
const APP_PASSWORD = 'log-test-app-password-7305';
const API_KEY = 'log-test-bootstrap-api-key-0123456789abcdef';
const secrets = [ADMIN_PASSWORD, WRONG_ADMIN_PASSWORD, MAILBOX_PASSWORD, WRONG_MAILBOX_PASSWORD, APP_PASSWORD, API_KEY];
const lines: string[] = [];
let postern: TestPostern;

const capture = new Writable({
  write(chunk, _encoding, done) {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    done();
  },
});

beforeAll(async () => {
  postern = await startTestPostern(
    'log_secrets',
    {
      POSTERN_API_KEY: API_KEY,
      POSTERN_LOG_LEVEL: 'debug',
      POSTERN_BCRYPT_COST: '4',
      POSTERN_TRUSTED_PROXIES: '127.0.0.1/32',
      POSTERN_PUBLIC_URL: ORIGIN,
    },
    {},
    capture,
  );
  const { db, hashPool } = postern.deps;
  await seedDomain(db, 'example.org');
  await seedMailbox(db, {
    username: 'alice@example.org',
    passwordHash: await hashPool.hash(MAILBOX_PASSWORD, 'BLF-CRYPT'),
  });
  await seedAppPassword(db, {
    mailbox: 'alice@example.org',
    passwordHash: await hashPool.hash(APP_PASSWORD, 'BLF-CRYPT'),
    protocols: ['imap_access'],
  });
  await seedAdminAccount(postern, { username: 'root', password: ADMIN_PASSWORD, superadmin: true });
});

afterAll(async () => {
  await postern?.destroy();
});

async function web(
  method: string,
  path: string,
  init: { form?: Record<string, string>; json?: unknown; headers?: Record<string, string> } = {},
) {
  const response = await fetch(`${postern.webUrl}${path}`, {
    method,
    redirect: 'manual',
    headers: {
      origin: ORIGIN,
      'x-forwarded-for': '203.0.113.9',
      ...(init.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    ...(init.form ? { body: new URLSearchParams(init.form).toString() } : {}),
    ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
  });
  return { status: response.status, text: await response.text() };
}

it('logs and audits the security events of a busy minute without any secret in them', async () => {
  expect(
    (await web('POST', '/admin/login', { form: { username: 'root', password: WRONG_ADMIN_PASSWORD } })).status,
  ).not.toBe(303);
  expect((await web('POST', '/admin/login', { form: { username: 'root', password: ADMIN_PASSWORD } })).status).toBe(
    303,
  );

  const made = await web('POST', '/api/v1/api-keys', {
    headers: { 'x-api-key': API_KEY },
    json: { name: 'log test', role: 'superadmin', access: 'rw', allow_from: ['0.0.0.0/0'] },
  });
  expect(made.status, made.text).toBe(201);
  const { id, key } = JSON.parse(made.text) as { id: number; key: string };
  secrets.push(key);
  expect((await web('GET', '/api/v1/domains', { headers: { 'x-api-key': key } })).status).toBe(200);
  expect((await web('DELETE', `/api/v1/api-keys/${id}`, { headers: { 'x-api-key': API_KEY } })).status).toBeLessThan(
    300,
  );
  expect((await web('GET', '/api/v1/domains', { headers: { 'x-api-key': key } })).status).toBe(401);

  const login = (password: string, service = 'imap') =>
    postern.passdb({ username: 'alice@example.org', password, real_rip: '198.51.100.7', service });
  expect((await login(MAILBOX_PASSWORD)).status).toBe(200);
  expect((await login(WRONG_MAILBOX_PASSWORD)).status).toBe(401);
  expect((await login(APP_PASSWORD)).status).toBe(200);
  expect((await login(WRONG_MAILBOX_PASSWORD, 'smtp')).status).toBe(401);

  await postern.deps.auditWriter.flush();
  const audit = await postern.deps.db.many<Record<string, unknown>>('SELECT * FROM postern_audit');
  const auditText = JSON.stringify(audit);
  const logText = lines.join('\n');

  // The run did log and audit: the checks below look at real lines and rows.
  expect(lines.length).toBeGreaterThan(5);
  expect(logText).toContain('"result":"password_mismatch"');
  expect(logText).toContain('"via":"app_password"');
  expect(audit.map((row) => row.action)).toEqual(
    expect.arrayContaining(['admin.login', 'api_key.create', 'api_key.revoke']),
  );
  for (const secret of secrets) {
    expect(logText, 'a secret reached a log line').not.toContain(secret);
    expect(auditText, 'a secret reached an audit row').not.toContain(secret);
  }
  // The registry learnt every one of them without this test naming them (the scan at destroy()
  // looks for all of them), and the admin session cookie postern set.
  const registered = new Map(registeredSecrets().map((secret) => [secret.value, secret.kind]));
  for (const secret of secrets) expect(registered.has(secret), `${secret.slice(0, 8)}… registered`).toBe(true);
  expect([...registered.values()]).toContain('cookie set by a response');
  expect(readFileSync(postern.logPath, 'utf8')).toBe(`${lines.join('\n')}\n`);
});

describe('the secret scan of every test postern', () => {
  it('fails destroy() on a secret in a log line or a hash in an audit row, naming kind and place, masking the secret', async () => {
    const leaky = await startTestPostern('log_leak');
    const planted = 'scan-test planted secret 7310';
    registerSecret('planted test secret', planted);
    leaky.deps.log.info({ note: planted }, 'a line a careless change could write');
    leaky.deps.auditWriter.record({
      actor: { kind: 'system', name: 'test' },
      action: 'test.leak',
      detail: { note: '{BLF-CRYPT}$2y$05$abcdefghijklmnopqrstuv' },
    });
    await leaky.deps.auditWriter.flush();
    const failure = await leaky.destroy().then(
      () => undefined,
      (error: unknown) => error,
    );
    // The planted line must not fail the run's final scan as well.
    rmSync(leaky.logPath);
    expect(failure).toBeInstanceOf(SecretLeakError);
    const message = (failure as Error).message;
    expect(message).toMatch(new RegExp(`planted test secret in ${leaky.logPath}:\\d+`));
    expect(message).toMatch(
      /password hash with a \{SCHEME\} prefix in postern_test_log_leak_\w+\.postern_audit id=\d+ column detail/,
    );
    expect(message).toMatch(/bcrypt hash in .*postern_audit/);
    expect(message).not.toContain(planted);
    expect(message).not.toContain('abcdefghijklmnop');
  });

  it('scans every log file of the run directory once more for the secrets of every test file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-scan-test-'));
    try {
      const secret = { kind: 'seeded mailbox password', value: 'run-scan planted secret 7311' };
      writeFileSync(join(dir, 'secrets-1.jsonl'), `${JSON.stringify(secret)}\n`);
      writeFileSync(
        join(dir, 'secrets-2.jsonl'),
        `${JSON.stringify({ kind: 'TOTP code', value: '123456', bounded: true })}\n`,
      );
      writeFileSync(join(dir, 'scans-1.jsonl'), `${JSON.stringify({ name: 'a', lines: 2, rows: 5 })}\n`);
      writeFileSync(join(dir, 'clean.log'), '{"msg":"started","ms":91234567}\n{"msg":"code 1234567"}\n');
      writeFileSync(join(dir, 'leaky.log'), `{"msg":"fine"}\n{"msg":"${secret.value}"}\n{"code":"123456"}\n`);
      const scan = scanRunDir(dir);
      expect({ lines: scan.lines, files: scan.files, rows: scan.rows, instances: scan.instances }).toEqual({
        lines: 5,
        files: 2,
        rows: 5,
        instances: 1,
      });
      expect(scan.hits.map((hit) => `${hit.kind} @ ${hit.where.replace(dir, '')}`).sort()).toEqual([
        'TOTP code @ /leaky.log:3',
        'seeded mailbox password @ /leaky.log:2',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
