// deploy/sogo/entrypoint.sh, the compose stack's SOGo set-up, run as the container runs it (with
// SOGO_SETUP_ONLY=1, so sogod is not started) against the real MariaDB: the shipped keys of
// deploy/sogo/sogo.conf.snippet get the stack's database and IMAP addresses and nothing else
// changes, the user source's view is made over postern's mailbox table (and an existing one,
// mailcow's, is left alone), and bad input changes nothing.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createLogger } from '../src/log.js';
import { createDb, type Db } from '../src/storage/db.js';
import { applyMigrations } from '../src/storage/migrate.js';
import { dropDatabase, MYSQL_ROOT_URL, uniqueName } from './support/env.js';
import { seedDomain, seedMailbox } from './support/seed.js';

const SNIPPET = 'deploy/sogo/sogo.conf.snippet';
const name = uniqueName('sogo_entry');
let db: Db;
let dir: string;

beforeAll(async () => {
  db = await createDb({ url: `${MYSQL_ROOT_URL}/${name}`, poolSize: 2, createDatabase: true });
  await applyMigrations(db, createLogger('silent'));
  await seedDomain(db, 'example.org');
  await seedMailbox(db, { username: 'alice@example.org', passwordHash: '{PLAIN}unused' });
  dir = mkdtempSync(join(tmpdir(), 'postern-sogo-entry-'));
  // The machine's MariaDB: root without a password.
  writeFileSync(join(dir, 'password'), '');
});

afterAll(async () => {
  await db?.close();
  await dropDatabase(name);
  rmSync(dir, { recursive: true, force: true });
});

function runEntrypoint(env: Record<string, string>) {
  const root = new URL(MYSQL_ROOT_URL);
  return spawnSync('sh', ['deploy/sogo/entrypoint.sh', 'false'], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH ?? '',
      SOGO_SETUP_ONLY: '1',
      SOGO_CONF_SNIPPET: SNIPPET,
      SOGO_CONF: join(dir, 'sogo.conf'),
      SOGO_DB_HOST: `${root.hostname}:${root.port || 3306}`,
      SOGO_DB_NAME: name,
      SOGO_DB_USER: decodeURIComponent(root.username) || 'root',
      SOGO_DB_PASSWORD_FILE: join(dir, 'password'),
      SOGO_IMAP_HOST: 'dovecot',
      ...env,
    },
  });
}

describe('deploy/sogo/entrypoint.sh', () => {
  it('writes the shipped keys with the stack addresses, and makes the view SOGo reads users from', async () => {
    const run = runEntrypoint({});
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const root = new URL(MYSQL_ROOT_URL);
    const base = `mysql://${decodeURIComponent(root.username) || 'root'}:@${root.hostname}:${root.port || 3306}/${name}/`;
    const expected = readFileSync(SNIPPET, 'utf8')
      .replaceAll('mysql://sogo:CHANGE-ME@127.0.0.1:3306/mailcow/', base)
      .replace('imap://127.0.0.1:143', 'imap://dovecot:143')
      .replace('sieve://127.0.0.1:4190', 'sieve://dovecot:4190');
    const written = readFileSync(join(dir, 'sogo.conf'), 'utf8');
    expect(written).toBe(expected);
    // Every database URL of the snippet was rewritten (eight: the user source and SOGo's tables).
    expect(written.split(base).length - 1).toBe(8);
    expect(written).not.toContain('CHANGE-ME');
    const users = await db.many('SELECT c_uid, c_name, c_password, mail FROM _sogo_static_view');
    expect(users).toEqual([
      { c_uid: 'alice@example.org', c_name: 'alice@example.org', c_password: '', mail: 'alice@example.org' },
    ]);
  });

  it('asks for STARTTLS with SOGO_IMAP_TLS=YES, as compose sets it (its Dovecot has ssl = required)', () => {
    expect(runEntrypoint({ SOGO_IMAP_TLS: 'YES' }).status).toBe(0);
    const written = readFileSync(join(dir, 'sogo.conf'), 'utf8');
    expect(written).toContain('SOGoIMAPServer = "imap://dovecot:143/?tls=YES";');
    expect(written).toContain('SOGoSieveServer = "sieve://dovecot:4190/?tls=YES";');
  });

  it("leaves an existing view alone (mailcow's init_db keeps its own)", async () => {
    await db.execute('CREATE OR REPLACE VIEW _sogo_static_view AS SELECT 1 AS c_uid');
    try {
      expect(runEntrypoint({}).status).toBe(0);
      expect(await db.many('SELECT * FROM _sogo_static_view')).toEqual([{ c_uid: 1 }]);
    } finally {
      await db.execute('DROP VIEW _sogo_static_view');
    }
  });

  it.each([
    ['a password with a character the URLs cannot hold', { password: 'p@ss/word' }, 'may hold only letters'],
    ['an IMAP host with a space', { SOGO_IMAP_HOST: 'dove cot' }, 'may hold only letters'],
    ['SOGO_IMAP_TLS neither YES nor NO', { SOGO_IMAP_TLS: 'yes please' }, 'must be YES or NO'],
    [
      'a snippet with an address it does not know',
      { snippet: 'SOGoIMAPServer = "imap://127.0.0.1:1143";' },
      'does not know',
    ],
  ])('refuses %s and writes nothing', (_name, input, message) => {
    const conf = join(dir, 'refused.conf');
    writeFileSync(conf, 'before');
    const env: Record<string, string> = { SOGO_CONF: conf };
    if ('password' in input) {
      writeFileSync(join(dir, 'bad-password'), input.password);
      env.SOGO_DB_PASSWORD_FILE = join(dir, 'bad-password');
    }
    if ('SOGO_IMAP_HOST' in input) env.SOGO_IMAP_HOST = input.SOGO_IMAP_HOST;
    if ('SOGO_IMAP_TLS' in input) env.SOGO_IMAP_TLS = input.SOGO_IMAP_TLS;
    if ('snippet' in input) {
      writeFileSync(join(dir, 'odd.snippet'), input.snippet);
      env.SOGO_CONF_SNIPPET = join(dir, 'odd.snippet');
    }
    const run = runEntrypoint(env);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(message);
    expect(readFileSync(conf, 'utf8')).toBe('before');
  });

  it('is what compose runs: the snippet mounted where the script reads it, the password a secret of the service', () => {
    const compose = parse(readFileSync('compose.yaml', 'utf8')) as {
      services: Record<string, { volumes?: string[]; secrets?: string[]; environment?: Record<string, string> }>;
    };
    const sogo = compose.services.sogo;
    expect(sogo?.volumes).toContain(`./${SNIPPET}:/etc/sogo/sogo.conf.snippet:ro`);
    expect(sogo?.environment?.SOGO_DB_PASSWORD_FILE).toBe('/run/secrets/mariadb_postern_password');
    expect(sogo?.secrets).toContain('mariadb_postern_password');
    expect(sogo?.environment?.SOGO_IMAP_TLS).toBe('YES');
    expect(readFileSync('deploy/sogo/Dockerfile', 'utf8')).toMatch(
      /^COPY deploy\/sogo\/entrypoint\.sh \/usr\/local\/bin\/sogo-entrypoint$/m,
    );
  });
});
