// No password, API key or app password reaches a log line or an audit row, with postern logging
// at debug level (everything it would ever log) through admin sign-in (wrong and right password),
// API key creation, use and revocation, and passdb logins with right and wrong
// passwords and an app password. The log lines are captured from postern's own logger.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from './support/env.js';
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
});
