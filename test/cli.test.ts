// The process itself: `postern check` validates and pings, bad configuration stops start-up with
// every problem listed, and SIGTERM shuts down cleanly.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { verifyPasswordHash } from '../src/passwords/verify-password-hash.js';
import { createDb, type Db } from '../src/storage/db.js';
import { applyMigrations } from '../src/storage/migrate.js';
import { dropDatabase, MYSQL_ROOT_URL, uniqueName } from './support/env.js';

const SERVE_DATABASE = uniqueName('cli');
const ADMIN_DATABASE = uniqueName('cli_admin');
afterAll(async () => {
  await dropDatabase(SERVE_DATABASE);
  await dropDatabase(ADMIN_DATABASE);
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runPostern(args: string[], env: Record<string, string>, untilOutput?: RegExp, stdin?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    });
    if (stdin !== undefined) child.stdin.end(stdin);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (untilOutput?.test(stdout)) child.kill('SIGTERM');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the postern command', () => {
  it('check validates the configuration and reaches MySQL and Redis', async () => {
    const run = await runPostern(['check'], { POSTERN_DB_URL: 'mysql://root@127.0.0.1:3306/mysql' });
    // The full matrix of good and broken set-ups: check-command.test.ts.
    expect(run.stdout).toMatch(/^OK {3}configuration: /m);
    expect(run.stdout).toMatch(/^OK {3}mysql: database `mysql` at 127\.0\.0\.1:3306 /m);
    expect(run.stdout).toMatch(/^OK {3}redis: /m);
    // The `mysql` database carries no postern schema: that is a problem, and said so.
    expect(run.stdout).toMatch(/^FAIL mysql schema: no postern schema yet/m);
    expect(run.code).toBe(1);
  });

  it('check exits 1 and names the backend that does not answer', async () => {
    const run = await runPostern(['check'], {
      POSTERN_DB_URL: 'mysql://root@127.0.0.1:1/mysql',
      POSTERN_REDIS_URL: 'redis://127.0.0.1:1',
    });
    expect(run.stdout).toMatch(/^FAIL mysql: nothing listens at 127\.0\.0\.1:1 /m);
    expect(run.stdout).toMatch(/^FAIL redis: nothing listens at 127\.0\.0\.1:1 /m);
    expect(run.code).toBe(1);
  });

  it('refuses to start with a bad configuration, listing every problem, without echoing secrets', async () => {
    const run = await runPostern([], {
      POSTERN_BCRYPT_COST: '99',
      POSTERN_INTERNAL_LISTEN: 'nowhere',
      POSTERN_INTERNAL_TOKEN: 'too-short',
      POSTERN_DB_ULR: 'typo',
    });
    expect(run.code).toBe(2);
    for (const name of ['POSTERN_BCRYPT_COST', 'POSTERN_INTERNAL_LISTEN', 'POSTERN_INTERNAL_TOKEN', 'POSTERN_DB_ULR']) {
      expect(run.stderr).toContain(name);
    }
    expect(run.stderr).not.toContain('too-short');
  });

  it('serves, then stops cleanly on SIGTERM', async () => {
    const run = await runPostern(
      [],
      {
        POSTERN_DB_URL: `mysql://root@127.0.0.1:3306/${SERVE_DATABASE}`,
        POSTERN_REDIS_PREFIX: `${SERVE_DATABASE}:`,
        POSTERN_INTERNAL_LISTEN: '127.0.0.1:0',
        POSTERN_WEB_LISTEN: '127.0.0.1:0',
      },
      // Start-up is complete once the first-admin hint is out (it comes after the listeners).
      /no admin account exists yet/,
    );
    expect(run.stdout).toMatch(/"msg":"shutting down"/);
    expect(run.stdout).toMatch(/"msg":"stopped"/);
    expect(run.code).toBe(0);
    // A fresh install: no admin yet, so start-up says (once) how to create the first one.
    expect(run.stdout).toMatch(/"msg":"listening".*"listener":"web"|"listener":"web".*"msg":"listening"/);
    expect(run.stdout.match(/no admin account exists yet/g)).toHaveLength(1);
    expect(run.stdout).toContain('postern admin create <username> --superadmin');
  });
});

describe('postern admin', () => {
  const env = { POSTERN_DB_URL: `mysql://root@127.0.0.1:3306/${ADMIN_DATABASE}`, POSTERN_BCRYPT_COST: '4' };
  const PASSWORD = 'first admin  passphrase ';
  let db: Db;

  beforeAll(async () => {
    db = await createDb({ url: `${MYSQL_ROOT_URL}/${ADMIN_DATABASE}`, poolSize: 1, createDatabase: true });
    // The tables, so that each test can stand alone (the CLI would create them too).
    await applyMigrations(db, createLogger('silent'));
  });
  afterAll(async () => {
    await db?.close();
  });

  const hashOf = async (username: string) =>
    (await db.one<{ password: string }>('SELECT password FROM admin WHERE username = ?', [username]))?.password ?? '';

  it('creates the first superadmin, the password read from stdin, never echoed', async () => {
    const run = await runPostern(['admin', 'create', 'root', '--superadmin'], env, undefined, `${PASSWORD}\n`);
    expect(run.stdout).toContain('created superadmin root');
    expect(run.code).toBe(0);
    expect(run.stdout + run.stderr).not.toContain(PASSWORD.trim());
    // The line ending is dropped, the password's own spaces are kept.
    expect(await verifyPasswordHash(await hashOf('root'), PASSWORD, { allowPlaintext: false })).toMatchObject({
      ok: true,
    });
    expect(await db.one("SELECT superadmin, active FROM admin WHERE username = 'root'")).toEqual({
      superadmin: 1,
      active: 1,
    });
    // The command line is postern's own tool: actor kind system, no role, no client address.
    expect(
      await db.many(
        "SELECT actor, actor_kind, actor_role, ip, action, target FROM postern_audit WHERE action = 'admin.create'",
      ),
    ).toEqual([
      { actor: 'cli', actor_kind: 'system', actor_role: null, ip: null, action: 'admin.create', target: 'root' },
    ]);
  });

  it('creates a domain admin limited to the listed domains', async () => {
    await db.execute("INSERT INTO domain (domain) VALUES ('example.org'), ('two.example')");
    const run = await runPostern(
      ['admin', 'create', 'helpdesk', '--domain', 'example.org,two.example'],
      env,
      undefined,
      'helpdesk passphrase 1\n',
    );
    expect(run.stdout).toContain('created domain admin of example.org, two.example helpdesk');
    expect(run.code).toBe(0);
    expect(await db.many("SELECT domain FROM domain_admins WHERE username = 'helpdesk' ORDER BY domain")).toEqual([
      { domain: 'example.org' },
      { domain: 'two.example' },
    ]);
  });

  it.each([
    [
      'a password in argv',
      ['admin', 'create', 'eve', '--superadmin', '--password=hunter2hunter2'],
      2,
      /never taken from the command line/,
    ],
    ['both roles at once', ['admin', 'create', 'eve', '--superadmin', '--domain', 'example.org'], 2, /exactly one of/],
    ['no role', ['admin', 'create', 'eve'], 2, /exactly one of/],
    ['an unknown subcommand', ['admin', 'promote', 'eve'], 2, /usage:/],
    [
      'an unknown domain',
      ['admin', 'create', 'eve', '--domain', 'nowhere.example'],
      1,
      /no such domain: nowhere.example/,
    ],
  ])('refuses %s and creates nothing', async (_title, args, code, message) => {
    const run = await runPostern(args, env, undefined, 'a long enough password\n');
    expect(run.stderr).toMatch(message);
    expect(run.code).toBe(code);
    expect(await db.many("SELECT username FROM admin WHERE username = 'eve'")).toEqual([]);
    expect(run.stdout + run.stderr).not.toContain('hunter2hunter2');
  });

  it('prompts on a terminal without echoing, asks twice, and creates the account', async () => {
    // script(1) (util-linux) gives the process a real pseudo-terminal, as `docker compose exec -it` does.
    const command = `env POSTERN_DB_URL=${env.POSTERN_DB_URL} POSTERN_BCRYPT_COST=4 ${process.execPath} --import tsx src/main.ts admin create ttyadmin --superadmin`;
    const output = await new Promise<string>((resolve) => {
      const child = spawn('script', ['-qec', command, '/dev/null'], { env: { PATH: process.env.PATH ?? '' } });
      let text = '';
      let answered = 0;
      child.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const prompts = (text.match(/New password for ttyadmin: |Repeat it: /g) ?? []).length;
        while (answered < prompts) {
          answered += 1;
          child.stdin.write('terminal passphrase 42\r');
        }
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
      child.on('close', () => {
        clearTimeout(timer);
        resolve(text);
      });
    });
    expect(output).toContain('created superadmin ttyadmin');
    expect(output).not.toContain('terminal passphrase 42');
    expect(
      await verifyPasswordHash(await hashOf('ttyadmin'), 'terminal passphrase 42', { allowPlaintext: false }),
    ).toMatchObject({ ok: true });
  });

  it('refuses an empty or short password from stdin', async () => {
    const empty = await runPostern(['admin', 'create', 'eve', '--superadmin'], env, undefined, '');
    expect(empty.stderr).toMatch(/no password given/);
    expect(empty.code).toBe(1);
    const short = await runPostern(['admin', 'create', 'eve', '--superadmin'], env, undefined, 'short\n');
    expect(short.stderr).toMatch(/at least 12 characters/);
    expect(short.code).toBe(1);
  });

  it('passwd sets a new password; the old one stops matching', async () => {
    const run = await runPostern(['admin', 'passwd', 'root'], env, undefined, 'the second passphrase\r\n');
    expect(run.stdout).toContain('password changed for root');
    expect(run.code).toBe(0);
    const hash = await hashOf('root');
    expect(await verifyPasswordHash(hash, 'the second passphrase', { allowPlaintext: false })).toMatchObject({
      ok: true,
    });
    expect(await verifyPasswordHash(hash, PASSWORD, { allowPlaintext: false })).toMatchObject({ ok: false });
    const unknown = await runPostern(['admin', 'passwd', 'ghost'], env, undefined, 'the second passphrase\n');
    expect(unknown.stderr).toMatch(/no admin ghost/);
    expect(unknown.code).toBe(1);
  });

  it("reset-2fa removes the admin's authenticators and recovery codes, flags the account and audits it", async () => {
    await db.execute(
      "INSERT INTO tfa (key_id, username, authmech, secret, active) VALUES ('phone', 'root', 'totp', 'JBSWY3DPEHPK3PXP', 1)",
    );
    await db.execute("INSERT INTO postern_recovery_codes (username, code_hash) VALUES ('root', REPEAT('a', 64))");
    await db.execute(
      "INSERT INTO tfa (key_id, username, authmech, secret, active) VALUES ('other', 'helpdesk', 'totp', 'JBSWY3DPEHPK3PXP', 1)",
    );
    const run = await runPostern(['admin', 'reset-2fa', 'root'], env);
    expect(run.stdout).toContain('two-factor sign-in reset for root (1 authenticator(s) removed)');
    expect(run.code).toBe(0);
    expect(await db.many("SELECT id FROM tfa WHERE username = 'root'")).toEqual([]);
    expect(await db.many("SELECT id FROM postern_recovery_codes WHERE username = 'root'")).toEqual([]);
    expect(await db.many("SELECT key_id FROM tfa WHERE username = 'helpdesk'")).toEqual([{ key_id: 'other' }]);
    const row = await db.one<{ attributes: unknown }>("SELECT attributes FROM admin WHERE username = 'root'");
    const attributes = typeof row?.attributes === 'string' ? JSON.parse(row.attributes) : row?.attributes;
    expect(attributes).toMatchObject({ tfa_reset_notice: 1 });
    expect(await db.many("SELECT actor, target FROM postern_audit WHERE action = 'tfa.reset'")).toEqual([
      { actor: 'cli', target: 'root' },
    ]);
  });

  it('serves without the first-admin hint once an admin exists', async () => {
    // Whatever ran before (or not): an active admin exists.
    await db.execute(
      "INSERT IGNORE INTO admin (username, password, superadmin, active) VALUES ('present', '{BLF-CRYPT}x', 1, 1)",
    );
    const run = await runPostern(
      [],
      {
        ...env,
        POSTERN_REDIS_PREFIX: `${ADMIN_DATABASE}:`,
        POSTERN_INTERNAL_LISTEN: '127.0.0.1:0',
        POSTERN_WEB_LISTEN: '127.0.0.1:0',
        POSTERN_LOG_LEVEL: 'debug',
      },
      /"msg":"admin accounts exist"/,
    );
    expect(run.stdout).toMatch(/"msg":"stopped"/);
    expect(run.stdout).not.toContain('postern admin create');
  });
});
