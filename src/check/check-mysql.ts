// `postern check`'s MySQL lines: the schema version against this build's migrations, and the
// TRIGGER privilege the change counter needs; plus the one sentence for each MySQL fault.
import type { Config } from '../config/schema.js';
import { COUNTED_TABLES, isChangeTrackingInstalled } from '../storage/change-counter.js';
import type { Db } from '../storage/db.js';
import { migrations } from '../storage/migrations/index.js';
import { holdsTriggerPrivilege, readAppliedMigrationIds, readServerIdentity } from '../storage/schema-checks.js';
import type { CheckLine } from './check-line.js';

const TRIGGER_MIGRATIONS = [3, 5];

/** A check that threw (a MySQL fault mid-way) becomes its failure line. */
export async function attempt(name: string, target: DbTarget, check: () => Promise<CheckLine>): Promise<CheckLine> {
  try {
    return await check();
  } catch (error) {
    return { name, status: 'fail', detail: describeMysqlFault(error, target) };
  }
}

export interface DbTarget {
  address: string;
  user: string;
}

export function describeDbUrl(dbUrl: string): DbTarget {
  const url = new URL(dbUrl);
  return { address: `${url.hostname}:${url.port || 3306}`, user: decodeURIComponent(url.username || 'root') };
}

export function innermost(error: unknown): { code?: string; message?: string; sqlMessage?: string } {
  let current = error as { cause?: unknown };
  while (current && typeof current === 'object' && 'cause' in current && current.cause) {
    current = current.cause as { cause?: unknown };
  }
  return current as { code?: string; message?: string };
}

export function describeMysqlFault(error: unknown, target: DbTarget): string {
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

export async function checkSchema(db: Db, config: Config): Promise<CheckLine> {
  const latest = Math.max(...migrations.map((migration) => migration.id));
  const applied = await readAppliedMigrationIds(db);
  const fix =
    config.migrate === 'on'
      ? 'start postern (POSTERN_MIGRATE=on applies them at start-up)'
      : 'POSTERN_MIGRATE is off: start postern once with POSTERN_MIGRATE=on, or have whoever manages the schema apply them';
  if (!applied) {
    return {
      name: 'mysql schema',
      status: 'fail',
      detail: `no postern schema yet (no postern_migrations table); this postern needs version ${latest}: ${fix}`,
    };
  }
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
export async function checkTriggerPrivilege(db: Db, config: Config): Promise<CheckLine> {
  const name = 'mysql trigger privilege';
  const installed = await isChangeTrackingInstalled(db);
  if (config.loginCacheEntries === 0) {
    return { name, status: 'ok', detail: 'not needed: POSTERN_LOGIN_CACHE_ENTRIES=0 queries MySQL on every login' };
  }
  const user = await readServerIdentity(db);
  const grantee = toGrantee(String(user?.user ?? ''));
  const hasPrivilege = await holdsTriggerPrivilege(db, grantee, COUNTED_TABLES);
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
