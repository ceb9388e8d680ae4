// The shipped Dockerfile, built and run for real with podman: the very same file, only its
// NODE_IMAGE argument pointing at a local Debian trixie base with the LTS Node.js (no public
// image registry is reachable here; scripts/container-base.sh). The container runs against this
// machine's MariaDB and Redis (host network), becomes healthy through its own HEALTHCHECK, logs a
// user in over the passdb endpoint, runs unprivileged under tini, `postern check` works inside
// it, and SIGTERM (podman stop) ends it with exit code 0.
// Then the containers of compose.yaml that can run here (postern and Dovecot from
// deploy/dovecot/Dockerfile, on the host network against the machine's MariaDB and Redis), wired
// as compose wires them (secrets as files, the Lua's URL and token, the SQL userdb): an IMAP
// login through both.
// scripts/test.sh runs this file once, in its machine-Node pass; the build's layers are cached
// by podman, the base under .cache/.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../src/storage/db.js';
import { buildImage, containerBase, podman, waitFor } from './support/containers.js';
import { dropDatabase, MYSQL_ROOT_URL, uniqueName } from './support/env.js';
import { imapLogin, imapSelectInbox } from './support/mail-clients.js';
import { freePort } from './support/processes.js';
import { seedDomain, seedMailbox } from './support/seed.js';
import { selfSignedCertificate } from './support/tls.js';

const IMAGE = 'localhost/postern:suite';
const TOKEN = `token-${randomBytes(12).toString('hex')}`;

function ssha512(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha512').update(password).update(salt).digest();
  return `{SSHA512}${Buffer.concat([digest, salt]).toString('base64')}`;
}

const database = uniqueName('container');
const container = `postern-suite-${randomBytes(4).toString('hex')}`;
const secrets = mkdtempSync(join(tmpdir(), 'postern-container-'));
let internalPort = 0;

beforeAll(async () => {
  await buildImage({ dockerfile: 'Dockerfile', context: '.', tag: IMAGE, baseImage: await containerBase() });

  internalPort = await freePort();
  writeFileSync(join(secrets, 'internal_token'), TOKEN);
  // The files are the operator's (root's); the container's unprivileged user only reads them.
  chmodSync(secrets, 0o755);
  chmodSync(join(secrets, 'internal_token'), 0o644);
  const started = await podman([
    'run',
    '--detach',
    '--name',
    container,
    '--network=host',
    '--volume',
    `${secrets}:/run/secrets:ro`,
    '--env',
    `POSTERN_DB_URL=mysql://root@127.0.0.1:3306/${database}`,
    '--env',
    'POSTERN_REDIS_URL=redis://127.0.0.1:6379',
    '--env',
    `POSTERN_REDIS_PREFIX=${database}:`,
    '--env',
    `POSTERN_INTERNAL_LISTEN=127.0.0.1:${internalPort}`,
    '--env',
    `POSTERN_WEB_LISTEN=127.0.0.1:${await freePort()}`,
    '--env',
    'POSTERN_INTERNAL_TOKEN_FILE=/run/secrets/internal_token',
    IMAGE,
  ]);
  if (started.code !== 0) throw new Error(`podman run failed: ${started.stderr}`);
}, 40 * 60_000);

afterAll(async () => {
  const logs = await podman(['logs', container]);
  if (logs.code === 0 && process.env.TEST_CONTAINER_LOGS) process.stdout.write(logs.stdout + logs.stderr);
  await podman(['rm', '--force', '--time', '0', container]);
  rmSync(secrets, { recursive: true, force: true });
  await dropDatabase(database);
});

async function healthStatus(): Promise<string> {
  // No systemd timers here: run the image's own HEALTHCHECK command the way podman's timer would.
  await podman(['healthcheck', 'run', container]);
  const inspected = await podman(['inspect', '--format', '{{.State.Health.Status}}', container]);
  return inspected.stdout.trim();
}

function passdb(password: string, token = TOKEN) {
  return fetch(`http://127.0.0.1:${internalPort}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ username: 'dora@example.org', password, real_rip: '192.0.2.80', service: 'imap' }),
  });
}

describe('the container image', () => {
  it('is built from the Dockerfile with its HEALTHCHECK, an unprivileged user, tini and no secret in its environment', async () => {
    const inspected = await podman(['image', 'inspect', IMAGE]);
    expect(inspected.code).toBe(0);
    const [image] = JSON.parse(inspected.stdout) as {
      Config: { User: string; Entrypoint: string[]; Env: string[] };
      Healthcheck?: { Test: string[] };
    }[];
    const config = image?.Config ?? { User: '', Entrypoint: [], Env: [] };
    // Exec form: no shell in between, the command is the array itself.
    expect(image?.Healthcheck?.Test).toEqual(['CMD', 'node', '/app/dist/main.js', 'health']);
    expect(config.User).toBe('postern:postern');
    expect(config.Entrypoint.slice(0, 2)).toEqual(['/usr/bin/tini', '--']);
    const names = config.Env.map((entry) => entry.split('=')[0] ?? '');
    expect(names.filter((name) => /TOKEN|SECRET|PASSWORD|KEY/i.test(name) && name !== 'NODE_EXTRA_CA_CERTS')).toEqual(
      [],
    );
  });

  it('becomes healthy through its HEALTHCHECK', async () => {
    await expect.poll(healthStatus, { timeout: 60_000, interval: 1000 }).toBe('healthy');
  }, 90_000);

  it('logs a user in through the passdb endpoint, with the token read from its secret file', async () => {
    await expect.poll(healthStatus, { timeout: 60_000, interval: 1000 }).toBe('healthy');
    const db = await createDb({ url: `mysql://root@127.0.0.1:3306/${database}`, poolSize: 1, createDatabase: false });
    try {
      await seedDomain(db, 'example.org');
      await seedMailbox(db, { username: 'dora@example.org', passwordHash: ssha512('dora pw') });
    } finally {
      await db.close();
    }
    const good = await passdb('dora pw');
    expect(good.status).toBe(200);
    expect(await good.json()).toMatchObject({ success: true });
    expect((await passdb('not dora pw')).status).toBe(401);
    // Not the token from the secret file: refused before any password is looked at.
    expect((await passdb('dora pw', 'a-token-that-is-not-the-one')).status).toBe(403);
  }, 90_000);

  it('runs as the unprivileged user, tini as PID 1 and node as its child', async () => {
    const top = await podman(['top', container, 'user', 'pid', 'comm']);
    expect(top.code).toBe(0);
    const rows = top.stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/));
    expect(rows).toContainEqual(['postern', '1', 'tini']);
    // node names its main thread: comm is `node-MainThread`.
    expect(rows.some(([user, pid, comm]) => user === 'postern' && pid !== '1' && comm?.startsWith('node'))).toBe(true);
    expect(rows.every(([user]) => user === 'postern')).toBe(true);
    const uid = await podman([
      'exec',
      container,
      'node',
      '-e',
      'process.stdout.write(process.getuid() + ":" + process.getgid())',
    ]);
    expect(uid.stdout).toBe('10001:10001');
  });

  it('runs `postern check` inside the container', async () => {
    const check = await podman(['exec', container, 'node', '/app/dist/main.js', 'check']);
    expect(check.stdout).toMatch(/^OK {3}configuration: /m);
    expect(check.stdout).toContain(`OK   mysql: database \`${database}\` at 127.0.0.1:3306`);
    expect(check.stdout).toMatch(/^OK {3}mysql schema: /m);
    expect(check.stdout).toMatch(/^OK {3}redis: /m);
    expect(check.stdout).not.toMatch(/^FAIL/m);
    expect(check.code).toBe(0);
  });

  it('stops cleanly on SIGTERM (podman stop) with exit code 0', async () => {
    const started = Date.now();
    const stopped = await podman(['stop', '--time', '10', container], 30_000);
    expect(stopped.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(9000);
    const state = await podman(['inspect', '--format', '{{.State.ExitCode}}', container]);
    expect(state.stdout.trim()).toBe('0');
    const logs = await podman(['logs', container]);
    expect(logs.stdout).toMatch(/"signal":"SIGTERM"[^\n]*"msg":"shutting down"/);
    expect(logs.stdout).toMatch(/"msg":"stopped"/);
  }, 40_000);
});

describe('the compose containers: postern and Dovecot', () => {
  const stackDatabase = uniqueName('stack');
  const dbUser = `pst_${randomBytes(4).toString('hex')}`;
  const dbPassword = randomBytes(18).toString('hex');
  const posternName = `postern-stack-${randomBytes(4).toString('hex')}`;
  const dovecotName = `dovecot-stack-${randomBytes(4).toString('hex')}`;
  const stackSecrets = mkdtempSync(join(tmpdir(), 'postern-stack-'));
  const DOVECOT_IMAGE = 'localhost/postern-dovecot:suite';
  let stackPort = 0;

  const secretFile = (name: string, value: string) => {
    writeFileSync(join(stackSecrets, name), value);
    chmodSync(join(stackSecrets, name), 0o644);
    return `${join(stackSecrets, name)}:/run/secrets/${name}:ro`;
  };
  const root = async (sql: string) => {
    const db = await createDb({ url: `${MYSQL_ROOT_URL}/mysql`, poolSize: 1, createDatabase: false });
    try {
      await db.execute(sql);
    } finally {
      await db.close();
    }
  };

  beforeAll(async () => {
    await buildImage({
      dockerfile: 'deploy/dovecot/Dockerfile',
      context: '.',
      tag: DOVECOT_IMAGE,
      baseImage: await containerBase('debian', 'bookworm'),
    });

    chmodSync(stackSecrets, 0o755);
    // compose's secrets: postern_db_url, postern_internal_token, mariadb_postern_password, TLS.
    await root(`CREATE DATABASE \`${stackDatabase}\``);
    await root(`CREATE USER '${dbUser}'@'127.0.0.1' IDENTIFIED BY '${dbPassword}'`);
    await root(`GRANT ALL ON \`${stackDatabase}\`.* TO '${dbUser}'@'127.0.0.1'`);
    const { cert, key } = selfSignedCertificate();
    const mounts = [
      secretFile('postern_db_url', `mysql://${dbUser}:${dbPassword}@127.0.0.1:3306/${stackDatabase}`),
      secretFile('postern_internal_token', TOKEN),
      secretFile('mariadb_postern_password', dbPassword),
      secretFile('dovecot_tls_cert', cert),
      secretFile('dovecot_tls_key', key),
    ];
    stackPort = await freePort();
    const postern = await podman([
      'run',
      '--detach',
      '--name',
      posternName,
      '--network=host',
      ...mounts.flatMap((mount) => ['--volume', mount]),
      '--env',
      'POSTERN_DB_URL_FILE=/run/secrets/postern_db_url',
      '--env',
      'POSTERN_REDIS_URL=redis://127.0.0.1:6379',
      '--env',
      `POSTERN_REDIS_PREFIX=${stackDatabase}:`,
      '--env',
      'POSTERN_INTERNAL_TOKEN_FILE=/run/secrets/postern_internal_token',
      '--env',
      `POSTERN_INTERNAL_LISTEN=127.0.0.1:${stackPort}`,
      '--env',
      `POSTERN_WEB_LISTEN=127.0.0.1:${await freePort()}`,
      IMAGE,
    ]);
    if (postern.code !== 0) throw new Error(`podman run postern failed: ${postern.stderr}`);
    await waitFor('postern healthy', async () => {
      await podman(['healthcheck', 'run', posternName]);
      return (
        (await podman(['inspect', '--format', '{{.State.Health.Status}}', posternName])).stdout.trim() === 'healthy'
      );
    });

    const dovecot = await podman([
      'run',
      '--detach',
      '--name',
      dovecotName,
      '--network=host',
      ...mounts.flatMap((mount) => ['--volume', mount]),
      '--env',
      `POSTERN_AUTH_URL=http://127.0.0.1:${stackPort}/`,
      '--env',
      'POSTERN_INTERNAL_TOKEN_FILE=/run/secrets/postern_internal_token',
      '--env',
      'DOVECOT_DB_HOST=127.0.0.1',
      '--env',
      `DOVECOT_DB_NAME=${stackDatabase}`,
      '--env',
      `DOVECOT_DB_USER=${dbUser}`,
      '--env',
      'DOVECOT_DB_PASSWORD_FILE=/run/secrets/mariadb_postern_password',
      DOVECOT_IMAGE,
    ]);
    if (dovecot.code !== 0) throw new Error(`podman run dovecot failed: ${dovecot.stderr}`);
    await waitFor('dovecot healthy', async () => (await podman(['healthcheck', 'run', dovecotName])).code === 0);

    const db = await createDb({
      url: `mysql://root@127.0.0.1:3306/${stackDatabase}`,
      poolSize: 1,
      createDatabase: false,
    });
    try {
      await seedDomain(db, 'example.org');
      await seedMailbox(db, { username: 'erin@example.org', passwordHash: ssha512('erin pw') });
    } finally {
      await db.close();
    }
  }, 40 * 60_000);

  afterAll(async () => {
    for (const name of [dovecotName, posternName]) {
      if (process.env.TEST_CONTAINER_LOGS) {
        const logs = await podman(['logs', name]);
        process.stdout.write(`--- ${name}\n${logs.stdout}${logs.stderr}`);
      }
      await podman(['rm', '--force', '--volumes', '--time', '0', name]);
    }
    rmSync(stackSecrets, { recursive: true, force: true });
    await root(`DROP USER IF EXISTS '${dbUser}'@'127.0.0.1'`);
    await dropDatabase(stackDatabase);
  });

  it('logs a user in over IMAP through the Lua passdb and postern, and opens the INBOX', async () => {
    const good = await imapLogin(143, 'erin@example.org', 'erin pw');
    expect(good.line).toMatch(/^a\d+ OK /);
    const wrong = await imapLogin(143, 'erin@example.org', 'not erin pw');
    expect(wrong.line).toMatch(/NO \[AUTHENTICATIONFAILED\]/);
    // The SQL userdb (deploy/dovecot-postern-userdb-sql.conf.ext) found the mailbox and its maildir.
    const selected = await imapSelectInbox(143, 'erin@example.org', 'erin pw');
    expect(selected).toMatchObject({ login: { ok: true }, select: { ok: true } });
  }, 60_000);

  it('while postern is stopped: a cached login still works, any other is a temporary failure', async () => {
    const stopped = await podman(['stop', '--time', '10', posternName], 30_000);
    expect(stopped.code).toBe(0);
    expect((await podman(['inspect', '--format', '{{.State.ExitCode}}', posternName])).stdout.trim()).toBe('0');
    // auth-postern.conf.ext's auth cache: the success cached above serves while postern is away.
    expect((await imapLogin(143, 'erin@example.org', 'erin pw')).line).toMatch(/^a\d+ OK /);
    // A password Dovecot has not cached: neither OK nor a wrong password, a temporary failure.
    const unknown = await imapLogin(143, 'erin@example.org', 'a password never tried');
    expect(unknown.line).toMatch(/NO \[UNAVAILABLE\]/);
  }, 60_000);
});
