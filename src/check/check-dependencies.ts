// `postern check`: asks every dependency postern needs whether it will work, one line each, and
// says for each problem what is wrong and how to fix it. Never throws for a dependency's fault
// (that is the report's content) and never prints a password, token or client secret.
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import { type IdpSettings, loadIdpSettings } from '../sources/idp-settings.js';
import { createSecretBox } from '../sources/secret-box.js';
import { type ConnectionStep, testIdpConnection } from '../sources/test-connection.js';
import { COUNTED_TABLES, isChangeTrackingInstalled } from '../storage/change-counter.js';
import type { Db } from '../storage/db.js';
import { migrations } from '../storage/migrations/index.js';

export type CheckStatus = 'ok' | 'fail' | 'skip';

export interface CheckLine {
  name: string;
  status: CheckStatus;
  /** What was found; for a failure, the problem and its fix. */
  detail: string;
}

export interface CheckDeps {
  config: Config;
  /** Opens the pool (without creating the database); its faults are reported, not thrown. */
  openDb(): Promise<Db>;
  /** A client that fails fast; closed by the check. */
  openRedis(): Redis;
  /** How long to wait for Redis to become ready. */
  redisTimeoutMs?: number;
}

const TRIGGER_MIGRATIONS = [3, 5];

export async function checkDependencies(deps: CheckDeps): Promise<CheckLine[]> {
  const { config } = deps;
  const lines: CheckLine[] = [{ name: 'configuration', status: 'ok', detail: 'every POSTERN_* variable is valid' }];
  const dbTarget = describeDbUrl(config.dbUrl);

  let db: Db | undefined;
  try {
    db = await deps.openDb();
    const server = await db.one<{ version: string; user: string }>(
      'SELECT VERSION() AS version, CURRENT_USER() AS user',
    );
    lines.push({
      name: 'mysql',
      status: 'ok',
      detail: `database \`${db.databaseName}\` at ${dbTarget.address} as ${server?.user} (${server?.version})`,
    });
  } catch (error) {
    lines.push({ name: 'mysql', status: 'fail', detail: describeMysqlFault(error, dbTarget) });
    await db?.close().catch(() => undefined);
    db = undefined;
  }

  const skipped = 'not checked: MySQL is not reachable';
  let idpLines: CheckLine[] = [{ name: 'idp', status: 'skip', detail: `${skipped} (the settings live there)` }];
  if (db) {
    try {
      const open = db;
      lines.push(await attempt('mysql schema', dbTarget, () => checkSchema(open, config)));
      lines.push(await attempt('mysql trigger privilege', dbTarget, () => checkTriggerPrivilege(open, config)));
      idpLines = await checkIdp(db, config).catch((error: unknown) => [
        { name: 'idp', status: 'fail' as const, detail: describeMysqlFault(error, dbTarget) },
      ]);
    } finally {
      await db.close().catch(() => undefined);
    }
  } else {
    for (const name of ['mysql schema', 'mysql trigger privilege'])
      lines.push({ name, status: 'skip', detail: skipped });
  }
  lines.push(await checkRedis(deps));
  lines.push(...idpLines);
  return lines;
}

/** A check that threw (a MySQL fault mid-way) becomes its failure line. */
async function attempt(name: string, target: DbTarget, check: () => Promise<CheckLine>): Promise<CheckLine> {
  try {
    return await check();
  } catch (error) {
    return { name, status: 'fail', detail: describeMysqlFault(error, target) };
  }
}

// ---------------------------------------------------------------------------------------------
// MySQL

interface DbTarget {
  address: string;
  user: string;
}

function describeDbUrl(dbUrl: string): DbTarget {
  const url = new URL(dbUrl);
  return { address: `${url.hostname}:${url.port || 3306}`, user: decodeURIComponent(url.username || 'root') };
}

function innermost(error: unknown): { code?: string; message?: string; sqlMessage?: string } {
  let current = error as { cause?: unknown };
  while (current && typeof current === 'object' && 'cause' in current && current.cause) {
    current = current.cause as { cause?: unknown };
  }
  return current as { code?: string; message?: string };
}

function describeMysqlFault(error: unknown, target: DbTarget): string {
  const inner = innermost(error);
  const code = inner.code ?? '';
  const said = inner.sqlMessage ?? inner.message ?? String(error);
  switch (code) {
    case 'ECONNREFUSED':
      return `nothing listens at ${target.address} (ECONNREFUSED): start MySQL/MariaDB, or correct host and port in POSTERN_DB_URL`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the host of ${target.address} does not resolve (${code}): correct the host in POSTERN_DB_URL`;
    case 'ETIMEDOUT':
    case 'ECONNRESET':
      return `no MySQL answer from ${target.address} (${code}): check that the server runs and that a firewall lets postern through`;
    case 'ER_ACCESS_DENIED_ERROR':
      return `access denied for user "${target.user}" (${said}): correct user and password in POSTERN_DB_URL (or POSTERN_DB_URL_FILE), or GRANT the user access from this host`;
    case 'ER_DBACCESS_DENIED_ERROR':
      return `user "${target.user}" may not use this database (${said}): GRANT it ALL on the database (e.g. GRANT ALL ON \`db\`.* TO user)`;
    case 'ER_BAD_DB_ERROR':
      return `${said}: start postern once (it creates the database) or CREATE DATABASE it, or correct the name in POSTERN_DB_URL`;
    default:
      return `${code ? `${code}: ` : ''}${said} (at ${target.address})`;
  }
}

async function checkSchema(db: Db, config: Config): Promise<CheckLine> {
  const latest = Math.max(...migrations.map((migration) => migration.id));
  const ledger = await db.one<{ n: number }>(
    "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'postern_migrations'",
  );
  const fix =
    config.migrate === 'on'
      ? 'start postern (POSTERN_MIGRATE=on applies them at start-up)'
      : 'POSTERN_MIGRATE is off: start postern once with POSTERN_MIGRATE=on, or have whoever manages the schema apply them';
  if (Number(ledger?.n) === 0) {
    return {
      name: 'mysql schema',
      status: 'fail',
      detail: `no postern schema yet (no postern_migrations table); this postern needs version ${latest}: ${fix}`,
    };
  }
  const applied = new Set(
    (await db.many<{ id: number }>('SELECT id FROM postern_migrations')).map((row) => Number(row.id)),
  );
  const version = applied.size === 0 ? 0 : Math.max(...applied);
  if (version > latest) {
    return {
      name: 'mysql schema',
      status: 'fail',
      detail: `schema version ${version} is newer than this postern knows (${latest}): a newer postern migrated this database; run that version (or newer) of postern`,
    };
  }
  const pending = migrations.filter((migration) => !applied.has(migration.id));
  if (pending.length > 0) {
    return {
      name: 'mysql schema',
      status: 'fail',
      detail: `schema version ${version}, pending migrations ${pending.map((m) => `${m.id} (${m.name})`).join(', ')}: ${fix}`,
    };
  }
  return { name: 'mysql schema', status: 'ok', detail: `version ${version}, up to date` };
}

/**
 * The change counter (storage/change-counter.ts) is kept by triggers that migrations 3 and 5
 * create; creating a trigger needs the TRIGGER privilege on the table. Without the triggers every
 * login queries MySQL (correct, slower). information_schema shows a user its own grants.
 */
async function checkTriggerPrivilege(db: Db, config: Config): Promise<CheckLine> {
  const name = 'mysql trigger privilege';
  const installed = await isChangeTrackingInstalled(db);
  if (config.loginCacheEntries === 0) {
    return { name, status: 'ok', detail: 'not needed: POSTERN_LOGIN_CACHE_ENTRIES=0 queries MySQL on every login' };
  }
  const user = await db.one<{ user: string }>('SELECT CURRENT_USER() AS user');
  const grantee = toGrantee(String(user?.user ?? ''));
  const held = await db.one<{ n: number }>(
    `SELECT
       (SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES
         WHERE GRANTEE = ? AND PRIVILEGE_TYPE = 'TRIGGER')
     + (SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES
         WHERE GRANTEE = ? AND PRIVILEGE_TYPE = 'TRIGGER' AND DATABASE() LIKE TABLE_SCHEMA)
     + (SELECT IF(COUNT(DISTINCT TABLE_NAME) = ?, 1, 0) FROM information_schema.TABLE_PRIVILEGES
         WHERE GRANTEE = ? AND PRIVILEGE_TYPE = 'TRIGGER' AND TABLE_SCHEMA = DATABASE()
           AND TABLE_NAME IN (${COUNTED_TABLES.map(() => '?').join(', ')})) AS n`,
    [grantee, grantee, COUNTED_TABLES.length, grantee, ...COUNTED_TABLES],
  );
  const hasPrivilege = Number(held?.n) > 0;
  const grant = `GRANT TRIGGER ON \`${db.databaseName}\`.* TO ${grantee}`;
  if (hasPrivilege) {
    return {
      name,
      status: 'ok',
      detail: installed
        ? `${grantee} holds TRIGGER; the change-counter triggers are installed`
        : `${grantee} holds TRIGGER; the change-counter triggers come with the pending migrations`,
    };
  }
  if (config.migrate === 'off' && installed) {
    return {
      name,
      status: 'ok',
      detail: `the change-counter triggers are installed (${grantee} lacks TRIGGER, not needed with POSTERN_MIGRATE=off)`,
    };
  }
  const consequence = installed
    ? `the triggers are installed, but a migration that adds one (as ${TRIGGER_MIGRATIONS.join(' and ')} did) will fail`
    : `the change-counter triggers are missing, so every login queries MySQL, and migrations ${TRIGGER_MIGRATIONS.join(' and ')} cannot create them`;
  return {
    name,
    status: 'fail',
    detail: `${grantee} lacks the TRIGGER privilege on \`${db.databaseName}\`: ${consequence}; as a MySQL admin run: ${grant}${installed ? '' : ', then start postern (POSTERN_MIGRATE=on)'}`,
  };
}

/** CURRENT_USER() says `user@host`; information_schema's GRANTEE is `'user'@'host'`. */
function toGrantee(currentUser: string): string {
  const at = currentUser.lastIndexOf('@');
  const user = at < 0 ? currentUser : currentUser.slice(0, at);
  const host = at < 0 ? '%' : currentUser.slice(at + 1);
  return `'${user.replace(/'/g, "''")}'@'${host.replace(/'/g, "''")}'`;
}

// ---------------------------------------------------------------------------------------------
// Identity provider: the settings in mailcow's identity_provider table, tested as the admin UI's
// "test connection" does (sources/test-connection.ts), step by step.

const STEP_LINES: Record<ConnectionStep['step'], string> = {
  discovery: 'idp discovery',
  endpoints: 'idp discovery',
  client_credentials: 'idp client credentials',
  client_authentication: 'idp client credentials',
  jwks: 'idp jwks',
  admin_api: 'keycloak admin api',
  sample_user: 'idp sample user',
  attribute_mapping: 'idp sample user',
};

async function checkIdp(db: Db, config: Config): Promise<CheckLine[]> {
  let loaded: Awaited<ReturnType<typeof loadIdpSettings>>;
  try {
    loaded = await loadIdpSettings(db, createSecretBox(config.secretKey));
  } catch (error) {
    if (innermost(error).code === 'ER_NO_SUCH_TABLE') {
      return [
        { name: 'idp', status: 'skip', detail: 'not checked: no identity_provider table yet (see mysql schema)' },
      ];
    }
    const message = error instanceof Error ? error.message : String(error);
    return [{ name: 'idp', status: 'fail', detail: `cannot read the identity provider's settings: ${message}` }];
  }
  if (loaded.state === 'none') {
    return [
      { name: 'idp', status: 'skip', detail: 'no identity provider configured (mail logins use local passwords only)' },
    ];
  }
  if (loaded.state === 'invalid') {
    return [
      {
        name: 'idp',
        status: 'fail',
        detail: `the ${loaded.authsource || 'identity provider'} settings are incomplete (${loaded.problems.join('; ')}): complete them in the admin UI or with PUT /api/v1/idp`,
      },
    ];
  }
  const settings = loaded.settings;
  const report = await testIdpConnection(settings, { timeoutMs: config.idpTimeoutMs });
  const lines: CheckLine[] = report.steps.map((step) => ({
    name: STEP_LINES[step.step],
    status: step.ok ? 'ok' : 'fail',
    detail: step.detail,
  }));
  const wanted = [
    'idp discovery',
    'idp client credentials',
    ...(needsAdminApi(settings) ? ['keycloak admin api'] : []),
  ];
  const failedAt = lines.find((line) => line.status === 'fail')?.name;
  for (const name of wanted) {
    if (lines.some((line) => line.name === name)) continue;
    lines.push({ name, status: 'skip', detail: `not checked: ${failedAt ?? 'an earlier step'} failed` });
  }
  if (!needsAdminApi(settings)) {
    lines.push({
      name: 'keycloak admin api',
      status: 'skip',
      detail:
        settings.authsource === 'keycloak'
          ? 'periodic sync, user import and the mailpassword flow are off'
          : 'not a Keycloak provider',
    });
  }
  return lines;
}

function needsAdminApi(settings: IdpSettings): boolean {
  return (
    settings.authsource === 'keycloak' &&
    (settings.periodic_sync || settings.import_users || settings.mailpassword_flow)
  );
}

// ---------------------------------------------------------------------------------------------
// Redis

async function checkRedis(deps: CheckDeps): Promise<CheckLine> {
  const { redisSentinels, redisSentinelName } = deps.config;
  const viaSentinels = redisSentinels && redisSentinels.length > 0;
  // With Sentinels the URL's host is not used: name the group and the Sentinels instead.
  const target = viaSentinels
    ? `the master of "${redisSentinelName}" (Sentinels ${redisSentinels.map(({ host, port }) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)).join(',')})`
    : describeRedisUrl(deps.config.redisUrl);
  const timeoutMs = deps.redisTimeoutMs ?? 3000;
  const redis = deps.openRedis();
  let lastError: Error | undefined;
  let failConnect: ((error: Error) => void) | undefined;
  redis.on('error', (error: Error) => {
    lastError = error;
    // The first failed connection attempt is the answer; ioredis would retry for ever.
    failConnect?.(error);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      if (redis.status === 'ready') return resolve();
      failConnect = reject;
      redis.once('ready', resolve);
      setTimeout(() => reject(lastError ?? new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref();
    });
    failConnect = undefined;
    await redis.ping();
    const info = await redis.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1];
    const master = viaSentinels ? ` at ${redis.stream?.remoteAddress}:${redis.stream?.remotePort}` : '';
    return {
      name: 'redis',
      status: 'ok',
      detail: `${target}${master} answers${version ? ` (Redis ${version})` : ''}`,
    };
  } catch (error) {
    return { name: 'redis', status: 'fail', detail: describeRedisFault(lastError ?? error, target) };
  } finally {
    redis.disconnect();
  }
}

function describeRedisUrl(redisUrl: string): string {
  const url = new URL(redisUrl);
  return `${url.hostname}:${url.port || 6379}`;
}

function describeRedisFault(error: unknown, target: string): string {
  const code = (error as { code?: string }).code ?? '';
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'ECONNREFUSED') {
    return `nothing listens at ${target} (ECONNREFUSED): start Redis, or correct host and port in POSTERN_REDIS_URL`;
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return `the host of ${target} does not resolve (${code}): correct the host in POSTERN_REDIS_URL`;
  }
  if (/NOAUTH|WRONGPASS|invalid password|invalid username-password/i.test(message)) {
    return `Redis at ${target} refused the credentials (${message.split('\n')[0]}): set the password in POSTERN_REDIS_URL (redis://:password@host:port or redis://user:password@host:port)`;
  }
  if (/ETIMEDOUT|no answer within/i.test(`${code} ${message}`)) {
    return `no Redis answer from ${target} (${message}): check that Redis runs there and that a firewall lets postern through`;
  }
  return `${message} (at ${target})`;
}
