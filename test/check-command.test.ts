// `postern check` run as the real CLI process against good and broken set-ups:
// one line per dependency (configuration, MySQL, its schema version, the TRIGGER privilege the
// change counter needs, Redis, IdP discovery, IdP client credentials, the Keycloak admin API when
// sync is on), OK or the problem with its fix, and a non-zero exit on any problem.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import {
  genericOidcSettingsSchema,
  type IdpSettings,
  keycloakSettingsSchema,
  saveIdpSettings,
} from '../src/sources/idp-settings.js';
import { createSecretBox } from '../src/sources/secret-box.js';
import { createDb, type Db } from '../src/storage/db.js';
import { applyMigrations } from '../src/storage/migrate.js';
import { migrations } from '../src/storage/migrations/index.js';
import { dropDatabase, uniqueName } from './support/env.js';
import { type FakeKeycloak, startFakeKeycloak } from './support/fake-keycloak.js';
import { startOidcProvider, type TestOidcProvider } from './support/oidc-provider.js';
import { freePort } from './support/processes.js';

const SECRET_KEY = 'check-command-secret-key-0123456789abcdef';
const REDIRECT = 'http://127.0.0.1:8080/login/sso/callback';
const LATEST = Math.max(...migrations.map((m) => m.id));
const silent = createLogger('silent');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The line of a check, e.g. line('redis') → "OK   redis: ..." */
  line(name: string): string;
}

function runCheck(env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'check'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', POSTERN_SECRET_KEY: SECRET_KEY, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const lines = stdout.split('\n');
      resolve({
        code,
        stdout,
        stderr,
        line: (name) => lines.find((l) => l.slice(5).startsWith(`${name}: `)) ?? `(no line "${name}" in:\n${stdout})`,
      });
    });
  });
}

const databases: string[] = [];
const openDbs: Db[] = [];

/** A database of this test's own, migrated (up to `upTo`) as postern's start-up would. */
async function migratedDatabase(label: string, upTo = LATEST): Promise<{ name: string; db: Db }> {
  const name = uniqueName(`check_${label}`);
  databases.push(name);
  const db = await createDb({ url: `mysql://root@127.0.0.1:3306/${name}`, poolSize: 2, createDatabase: true });
  openDbs.push(db);
  await applyMigrations(
    db,
    silent,
    migrations.filter((m) => m.id <= upTo),
  );
  return { name, db };
}

function envFor(database: string, extra: Record<string, string> = {}): Record<string, string> {
  return { POSTERN_DB_URL: `mysql://root@127.0.0.1:3306/${database}`, POSTERN_IDP_TIMEOUT_MS: '3000', ...extra };
}

async function saveSettings(db: Db, settings: IdpSettings) {
  await saveIdpSettings(db, settings, createSecretBox(SECRET_KEY));
}

afterAll(async () => {
  for (const db of openDbs) await db.close();
  for (const name of databases) await dropDatabase(name);
});

describe('postern check on a good set-up', () => {
  it('prints OK for configuration, MySQL, schema, TRIGGER privilege and Redis, skips an unconfigured IdP, exits 0', async () => {
    const { name } = await migratedDatabase('good');
    const run = await runCheck(envFor(name));
    expect(run.line('configuration')).toMatch(/^OK {3}configuration: /);
    expect(run.line('mysql')).toMatch(
      new RegExp(`^OK {3}mysql: database \`${name}\` at 127\\.0\\.0\\.1:3306 as root@`),
    );
    expect(run.line('mysql schema')).toBe(`OK   mysql schema: version ${LATEST}, up to date`);
    expect(run.line('mysql trigger privilege')).toMatch(
      /^OK {3}mysql trigger privilege: .*holds TRIGGER; the change-counter triggers are installed$/,
    );
    expect(run.line('redis')).toMatch(/^OK {3}redis: 127\.0\.0\.1:6379 answers \(Redis \d/);
    expect(run.line('idp')).toMatch(/^SKIP idp: no identity provider configured/);
    expect(run.code).toBe(0);
  });
});

describe('postern check with MySQL or Redis broken', () => {
  it('names MySQL on a wrong port with the fix, skips what lives in MySQL, and exits 1', async () => {
    const port = await freePort();
    const run = await runCheck({ POSTERN_DB_URL: `mysql://root@127.0.0.1:${port}/postern` });
    expect(run.line('mysql')).toBe(
      `FAIL mysql: nothing listens at 127.0.0.1:${port} (ECONNREFUSED): start MySQL/MariaDB, or correct host and port in POSTERN_DB_URL`,
    );
    expect(run.line('mysql schema')).toMatch(/^SKIP mysql schema: not checked: MySQL is not reachable/);
    expect(run.line('redis')).toMatch(/^OK {3}redis: /);
    expect(run.code).toBe(1);
  });

  it('names Redis on an unused port with the fix and exits 1', async () => {
    const { name } = await migratedDatabase('redis_down');
    const port = await freePort();
    const run = await runCheck(envFor(name, { POSTERN_REDIS_URL: `redis://127.0.0.1:${port}` }));
    expect(run.line('mysql')).toMatch(/^OK {3}mysql: /);
    expect(run.line('redis')).toBe(
      `FAIL redis: nothing listens at 127.0.0.1:${port} (ECONNREFUSED): start Redis, or correct host and port in POSTERN_REDIS_URL`,
    );
    expect(run.code).toBe(1);
  });

  it('tells a wrong MySQL password apart from a server that is down, without echoing the password', async () => {
    const run = await runCheck({ POSTERN_DB_URL: 'mysql://root:not-the-password-4711@127.0.0.1:3306/mysql' });
    // root here authenticates by unix_socket/no password; a password over TCP is refused.
    expect(run.line('mysql')).toMatch(
      /^FAIL mysql: access denied for user "root" .*correct user and password in POSTERN_DB_URL/,
    );
    expect(run.stdout + run.stderr).not.toContain('not-the-password-4711');
    expect(run.code).toBe(1);
  });
});

describe('postern check with a MySQL user that lacks the TRIGGER privilege', () => {
  const user = `pc_${randomBytes(4).toString('hex')}`;
  const password = `pw-${randomBytes(8).toString('hex')}`;
  let root: mysql.Connection;
  let database: string;

  beforeAll(async () => {
    root = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root' });
    // A database whose schema stopped before the change counter (as a start-up as this user
    // would leave it: migration 3's CREATE TRIGGER is refused).
    ({ name: database } = await migratedDatabase('no_trigger', 2));
    await root.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`);
    await root.query(
      `GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, REFERENCES, CREATE TEMPORARY TABLES,
             LOCK TABLES, CREATE VIEW, SHOW VIEW, EXECUTE ON \`${database}\`.* TO '${user}'@'%'`,
    );
  });

  afterAll(async () => {
    await root?.query(`DROP USER IF EXISTS '${user}'@'%'`);
    await root?.end();
  });

  it('says the privilege is missing, what it costs and the exact GRANT; the GRANT it prints fixes it', async () => {
    const env = { POSTERN_DB_URL: `mysql://${user}:${password}@127.0.0.1:3306/${database}` };
    const run = await runCheck(env);
    expect(run.line('mysql')).toMatch(new RegExp(`^OK {3}mysql: database \`${database}\` .* as ${user}@`));
    expect(run.line('mysql schema')).toBe(
      `FAIL mysql schema: schema version 2, pending migrations ${pendingAfter(2)}: start postern (POSTERN_MIGRATE=on applies them at start-up)`,
    );
    const trigger = run.line('mysql trigger privilege');
    expect(trigger).toMatch(
      new RegExp(
        `^FAIL mysql trigger privilege: '${user}'@'%' lacks the TRIGGER privilege on \`${database}\`: the change-counter triggers are missing, so every login queries MySQL`,
      ),
    );
    expect(run.stdout).not.toContain(password);
    expect(run.code).toBe(1);

    const grant = /as a MySQL admin run: (GRANT TRIGGER ON \S+ TO \S+?)(,|$)/.exec(trigger)?.[1];
    expect(grant).toBe(`GRANT TRIGGER ON \`${database}\`.* TO '${user}'@'%'`);
    await root.query(grant as string);
    const after = await runCheck(env);
    expect(after.line('mysql trigger privilege')).toBe(
      `OK   mysql trigger privilege: '${user}'@'%' holds TRIGGER; the change-counter triggers come with the pending migrations`,
    );
  });
});

describe('postern check with an identity provider', () => {
  let op: TestOidcProvider;
  let kc: FakeKeycloak;

  beforeAll(async () => {
    op = await startOidcProvider({ redirectUris: [REDIRECT] });
    kc = await startFakeKeycloak({
      clients: [
        { clientId: 'postern', secret: 'postern-secret' },
        { clientId: 'no-view', secret: 'no-view-secret', roles: [] },
      ],
    });
  });

  afterAll(async () => {
    await op?.close();
    await kc?.close();
  });

  const oidcSettings = (overrides: Record<string, unknown> = {}) =>
    genericOidcSettingsSchema.parse({
      authsource: 'generic-oidc',
      postern_issuer_url: op.issuer,
      client_id: op.clientId,
      client_secret: op.clientSecret,
      redirect_url: REDIRECT,
      ...overrides,
    });

  const keycloakSettings = (overrides: Record<string, unknown> = {}) =>
    keycloakSettingsSchema.parse({
      authsource: 'keycloak',
      server_url: kc.url,
      realm: kc.realm,
      version: '26.0.0',
      client_id: 'postern',
      client_secret: 'postern-secret',
      redirect_url: REDIRECT,
      periodic_sync: true,
      ...overrides,
    });

  it('passes discovery and client credentials of a generic OIDC provider (oidc-provider) and exits 0', async () => {
    const { name, db } = await migratedDatabase('oidc_good');
    await saveSettings(db, oidcSettings());
    const run = await runCheck(envFor(name));
    expect(run.line('idp discovery')).toBe(
      `OK   idp discovery: issuer ${op.issuer} answered at ${op.issuer}/.well-known/openid-configuration and matches the configured URL`,
    );
    expect(run.line('idp client credentials')).toMatch(
      /^OK {3}idp client credentials: client "postern" authenticated with client_secret_post at /,
    );
    expect(run.line('keycloak admin api')).toBe('SKIP keycloak admin api: not a Keycloak provider');
    expect(run.code).toBe(0);
  });

  it('says a wrong client secret is wrong, without printing it, and exits 1', async () => {
    const { name, db } = await migratedDatabase('oidc_secret');
    await saveSettings(db, oidcSettings({ client_secret: 'wrong-secret-value-9876' }));
    const run = await runCheck(envFor(name));
    expect(run.line('idp discovery')).toMatch(/^OK {3}idp discovery: /);
    expect(run.line('idp client credentials')).toMatch(
      /^FAIL idp client credentials: client credentials rejected with client_secret_post at .*invalid_client.*: check client id and secret/,
    );
    expect(run.stdout).not.toContain('wrong-secret-value-9876');
    expect(run.code).toBe(1);
  });

  it('names an unreachable discovery URL, skips the steps after it, and exits 1', async () => {
    const { name, db } = await migratedDatabase('oidc_down');
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}/realms/mail`;
    await saveSettings(db, oidcSettings({ postern_issuer_url: issuer }));
    const run = await runCheck(envFor(name));
    expect(run.line('idp discovery')).toBe(
      `FAIL idp discovery: cannot reach ${issuer}/.well-known/openid-configuration (ECONNREFUSED)`,
    );
    expect(run.line('idp client credentials')).toBe('SKIP idp client credentials: not checked: idp discovery failed');
    expect(run.code).toBe(1);
  });

  it('checks the Keycloak admin API when sync is on: OK with view-users', async () => {
    const { name, db } = await migratedDatabase('kc_good');
    await saveSettings(db, keycloakSettings());
    const run = await runCheck(envFor(name));
    expect(run.line('idp discovery')).toMatch(/^OK {3}idp discovery: issuer .*\/realms\/mail answered/);
    expect(run.line('idp client credentials')).toMatch(
      /^OK {3}idp client credentials: client "postern" got a service-account token/,
    );
    expect(run.line('keycloak admin api')).toMatch(/^OK {3}keycloak admin api: the service account may list users/);
    expect(run.code).toBe(0);
  });

  it('says which role the service account lacks when sync is on, and exits 1', async () => {
    const { name, db } = await migratedDatabase('kc_noview');
    await saveSettings(db, keycloakSettings({ client_id: 'no-view', client_secret: 'no-view-secret' }));
    const run = await runCheck(envFor(name));
    expect(run.line('keycloak admin api')).toMatch(
      /^FAIL keycloak admin api: service account lacks view-users: give the service account of client "no-view" the realm-management role view-users \(HTTP 403/,
    );
    expect(run.code).toBe(1);
  });

  it('skips the admin API when sync, import and the mailpassword flow are off', async () => {
    const { name, db } = await migratedDatabase('kc_nosync');
    await saveSettings(
      db,
      keycloakSettings({ client_id: 'no-view', client_secret: 'no-view-secret', periodic_sync: false }),
    );
    const run = await runCheck(envFor(name));
    expect(run.line('keycloak admin api')).toBe(
      'SKIP keycloak admin api: periodic sync, user import and the mailpassword flow are off',
    );
    expect(run.code).toBe(0);
  });
});

/** How `postern check` names the migrations above a schema version: "3 (change-counter), 4 (admins), …". */
function pendingAfter(version: number): string {
  return migrations
    .filter((m) => m.id > version)
    .map((m) => `${m.id} (${m.name})`)
    .join(', ');
}
