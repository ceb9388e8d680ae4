// postern's migrations on a database that mailcow's own schema code made
// (test/fixtures/mailcow-schema.sql, from mailcow-dockerized's init_db.inc.php with its
// provenance in its header): no mailcow column, index, default, key, view or row may change.
// Real MariaDB at 127.0.0.1:3306 (root, no password), in a database of this test's own.
import { readFileSync } from 'node:fs';
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { createDb, type Db } from '../src/storage/db.js';
import { applyMigrations } from '../src/storage/migrate.js';
import { migrations } from '../src/storage/migrations/index.js';
import { dropDatabase, MYSQL_ROOT_URL, uniqueName } from './support/env.js';

const FIXTURE = new URL('./fixtures/mailcow-schema.sql', import.meta.url);

/** The fixture's statements: `--` comment lines dropped, split where a line ends with `;`. */
function fixtureStatements(): string[] {
  const text = readFileSync(FIXTURE, 'utf8')
    .split('\n')
    .filter((line) => !line.startsWith('--'))
    .join('\n');
  return text
    .split(/;\s*$/m)
    .map((statement) => statement.trim())
    .filter((statement) => statement.length > 0);
}

// init_db's $tables that the fixture holds, and its $views that read them.
const MAILCOW_TABLES = [
  '_sogo_static_view',
  'admin',
  'alias',
  'alias_domain',
  'api',
  'app_passwd',
  'domain',
  'domain_admins',
  'identity_provider',
  'mailbox',
  'quota2',
  'quota2replica',
  'sasl_log',
  'sender_acl',
  'templates',
  'tfa',
  'user_acl',
  'versions',
];
const MAILCOW_VIEWS = [
  'grouped_domain_alias_address',
  'grouped_mail_aliases',
  'grouped_sender_acl',
  'grouped_sender_acl_external',
];

const rootUrl = new URL(MYSQL_ROOT_URL);
const SERVER = {
  host: rootUrl.hostname,
  port: Number(rootUrl.port || 3306),
  user: decodeURIComponent(rootUrl.username || 'root'),
  password: decodeURIComponent(rootUrl.password),
};

async function select<T = Record<string, unknown>>(db: Connection, sql: string, params: unknown[] = []): Promise<T[]> {
  const [rows] = await db.query<RowDataPacket[]>(sql, params);
  return rows as T[];
}

async function listObjects(db: Connection, schema: string, type: 'BASE TABLE' | 'VIEW'): Promise<string[]> {
  const rows = await select<{ name: string }>(
    db,
    'SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = ? ORDER BY TABLE_NAME',
    [schema, type],
  );
  return rows.map((row) => row.name);
}

/** Everything a migration could change about mailcow's tables and views, shape and contents. */
async function snapshot(db: Connection, schema: string) {
  const inMailcow = [schema, [...MAILCOW_TABLES, ...MAILCOW_VIEWS]];
  const columns = await select(
    db,
    `SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_DEFAULT, IS_NULLABLE, DATA_TYPE, COLUMN_TYPE,
            CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, DATETIME_PRECISION, CHARACTER_SET_NAME,
            COLLATION_NAME, COLUMN_KEY, EXTRA, GENERATION_EXPRESSION
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?)
      ORDER BY TABLE_NAME, ORDINAL_POSITION`,
    inMailcow,
  );
  const indexes = await select(
    db,
    `SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE, COLLATION, SUB_PART, NULLABLE,
            INDEX_TYPE
       FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?)
      ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`,
    inMailcow,
  );
  const foreignKeys = await select(
    db,
    `SELECT r.TABLE_NAME, r.CONSTRAINT_NAME, r.REFERENCED_TABLE_NAME, r.DELETE_RULE, r.UPDATE_RULE,
            k.COLUMN_NAME, k.REFERENCED_COLUMN_NAME
       FROM information_schema.REFERENTIAL_CONSTRAINTS r
       JOIN information_schema.KEY_COLUMN_USAGE k
         ON k.CONSTRAINT_SCHEMA = r.CONSTRAINT_SCHEMA AND k.CONSTRAINT_NAME = r.CONSTRAINT_NAME
        AND k.TABLE_NAME = r.TABLE_NAME
      WHERE r.CONSTRAINT_SCHEMA = ? AND r.TABLE_NAME IN (?)
      ORDER BY r.TABLE_NAME, r.CONSTRAINT_NAME, k.ORDINAL_POSITION`,
    inMailcow,
  );
  // MariaDB's JSON columns carry a json_valid() CHECK each.
  const checks = await select(
    db,
    `SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
      WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME IN (?) ORDER BY TABLE_NAME, CONSTRAINT_NAME`,
    inMailcow,
  );
  const tableOptions = await select(
    db,
    `SELECT TABLE_NAME, TABLE_TYPE, ENGINE, ROW_FORMAT, TABLE_COLLATION, CREATE_OPTIONS
       FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?) ORDER BY TABLE_NAME`,
    inMailcow,
  );
  const views = await select(
    db,
    `SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, IS_UPDATABLE, SECURITY_TYPE
       FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME`,
    [schema],
  );
  const rows: Record<string, string[]> = {};
  for (const table of [...MAILCOW_TABLES, ...MAILCOW_VIEWS]) {
    const all = await select(db, `SELECT * FROM \`${table}\``);
    rows[table] = all.map((row) => JSON.stringify(row)).sort();
  }
  return { columns, indexes, foreignKeys, checks, tableOptions, views, rows };
}

type Snapshot = Awaited<ReturnType<typeof snapshot>>;

let admin: Connection | undefined;
const databases: string[] = [];
const pools: Db[] = [];
const connections: Connection[] = [];

/** A database with mailcow's server defaults (data/conf/mysql/my.cnf) and a connection to it. */
async function openMailcowDatabase(label: string): Promise<{ conn: Connection; name: string; db: Db }> {
  if (!admin) throw new Error(`MariaDB at ${SERVER.host}:${SERVER.port} is not reachable; this test never skips`);
  const name = uniqueName(label);
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
  databases.push(name);
  const conn = await mysql.createConnection({ ...SERVER, database: name, dateStrings: true, charset: 'utf8mb4' });
  connections.push(conn);
  const db = await createDb({ url: `${MYSQL_ROOT_URL.replace(/\/$/, '')}/${name}`, poolSize: 2 });
  pools.push(db);
  return { conn, name, db };
}

const log = createLogger('silent');

beforeAll(async () => {
  admin = await mysql.createConnection(SERVER);
});

afterAll(async () => {
  for (const db of pools) await db.close();
  for (const conn of connections) await conn.end();
  for (const name of databases) await dropDatabase(name);
  await admin?.end();
});

describe("postern's migrations on mailcow's own schema (init_db.inc.php, 19022026_1220)", () => {
  let conn: Connection;
  let schema: string;
  let db: Db;
  let before: Snapshot;
  let after: Snapshot;
  let applied: number[];
  let tablesBefore: string[];
  let viewsBefore: string[];

  beforeAll(async () => {
    ({ conn, name: schema, db } = await openMailcowDatabase('mailcow_schema'));
    for (const statement of fixtureStatements()) await conn.query(statement);
    tablesBefore = await listObjects(conn, schema, 'BASE TABLE');
    viewsBefore = await listObjects(conn, schema, 'VIEW');
    before = await snapshot(conn, schema);
    applied = await applyMigrations(db, log);
    after = await snapshot(conn, schema);
  });

  it("starts from mailcow's tables, views, schema version and seed, nothing of postern's", async () => {
    expect([...tablesBefore].sort()).toEqual([...MAILCOW_TABLES].sort());
    expect([...viewsBefore].sort()).toEqual(MAILCOW_VIEWS);
    expect(before.rows.versions).toHaveLength(1);
    expect(before.rows.versions?.[0]).toContain('"version":"19022026_1220"');
    expect(before.rows.templates).toHaveLength(2);
    // The snapshot really holds the definitions it compares.
    const column = (table: string, name: string) =>
      before.columns.find((row) => row.TABLE_NAME === table && row.COLUMN_NAME === name);
    expect(column('mailbox', 'quota')?.COLUMN_DEFAULT).toBe('102400');
    expect(column('mailbox', 'custom_attributes')?.COLUMN_DEFAULT).toBe("'{}'");
    expect(column('mailbox', 'authsource')?.COLUMN_TYPE).toBe("enum('mailcow','keycloak','generic-oidc','ldap')");
    expect(column('sasl_log', 'service')?.COLUMN_DEFAULT).toBe("''");
    expect(column('mailbox', 'username')?.COLLATION_NAME).toBe('utf8mb4_general_ci');
    expect(before.columns.length).toBeGreaterThan(150);
    expect(before.indexes.length).toBeGreaterThan(30);
    expect(before.foreignKeys.map((row) => row.TABLE_NAME)).toEqual(['app_passwd', 'user_acl']);
  });

  it('applies every migration', () => {
    expect(applied).toEqual(migrations.map((migration) => migration.id));
  });

  it('changes no mailcow column: type, default, nullability, charset, collation, position', () => {
    expect(after.columns).toEqual(before.columns);
  });

  it('changes no mailcow index, foreign key or CHECK constraint', () => {
    expect(after.indexes).toEqual(before.indexes);
    expect(after.foreignKeys).toEqual(before.foreignKeys);
    expect(after.checks).toEqual(before.checks);
  });

  it("changes no table option and none of mailcow's views", () => {
    expect(after.tableOptions).toEqual(before.tableOptions);
    expect(after.views).toEqual(before.views);
    expect(after.views.map((row) => row.TABLE_NAME)).toEqual(MAILCOW_VIEWS);
  });

  it("changes no row: no second Default template, mailcow's seed and data as they were", () => {
    expect(after.rows).toEqual(before.rows);
  });

  it('adds only postern_ tables and postern_ triggers on the tables a mail login reads', async () => {
    const added = (await listObjects(conn, schema, 'BASE TABLE')).filter((name) => !MAILCOW_TABLES.includes(name));
    expect(added.length).toBeGreaterThan(0);
    for (const name of added) expect(name).toMatch(/^postern_/);
    const triggers = await select<{ name: string; table: string }>(
      conn,
      `SELECT TRIGGER_NAME AS name, EVENT_OBJECT_TABLE AS \`table\` FROM information_schema.TRIGGERS
        WHERE TRIGGER_SCHEMA = ? ORDER BY TRIGGER_NAME`,
      [schema],
    );
    expect(triggers.length).toBe(15);
    for (const trigger of triggers) {
      expect(trigger.name).toMatch(/^postern_/);
      expect(['mailbox', 'app_passwd', 'domain', 'alias_domain', 'tfa']).toContain(trigger.table);
    }
  });

  it('leaves mailcow writing its rows as before (a mailbox added the way mailcow adds one)', async () => {
    await conn.query(
      `INSERT INTO mailbox (username, password, name, quota, local_part, domain, attributes, authsource, active)
       VALUES ('bob@example.org', '', 'Bob', 0, 'bob', 'example.org', '{"imap_access":"1"}', 'keycloak', 1)`,
    );
    await conn.query("INSERT INTO user_acl (username) VALUES ('bob@example.org')");
    await conn.query(
      "REPLACE INTO sasl_log (username, real_rip, service, app_password) VALUES ('bob@example.org', '192.0.2.20', 'imap', 0)",
    );
    const views = await select(conn, "SELECT * FROM grouped_domain_alias_address WHERE username = 'bob@example.org'");
    expect(views).toEqual([{ username: 'bob@example.org', ad_alias: 'bob@example.net' }]);
    await conn.query("DELETE FROM mailbox WHERE username = 'bob@example.org'");
    expect(await select(conn, "SELECT * FROM user_acl WHERE username = 'bob@example.org'")).toEqual([]);
  });

  it('applies nothing and changes nothing when started again', async () => {
    const once = await snapshot(conn, schema);
    expect(await applyMigrations(db, log)).toEqual([]);
    expect(await snapshot(conn, schema)).toEqual(once);
  });
});

describe("postern's migrations on an empty database", () => {
  it("create mailcow's tables exactly as init_db does: same columns, defaults and indexes", async () => {
    const fromMailcow = await openMailcowDatabase('mailcow_schema_ref');
    for (const statement of fixtureStatements()) await fromMailcow.conn.query(statement);
    const fromPostern = await openMailcowDatabase('mailcow_schema_empty');
    await applyMigrations(fromPostern.db, log);

    const posternTables = (await listObjects(fromPostern.conn, fromPostern.name, 'BASE TABLE')).filter(
      (name) => !name.startsWith('postern_'),
    );
    expect(posternTables.length).toBeGreaterThan(10);
    for (const name of posternTables) expect(MAILCOW_TABLES).toContain(name);
    const shape = async (conn: Connection, schema: string) => {
      const columns = await select(
        conn,
        `SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_DEFAULT, IS_NULLABLE, COLUMN_TYPE,
                CHARACTER_SET_NAME, COLLATION_NAME, EXTRA
           FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?)
          ORDER BY TABLE_NAME, ORDINAL_POSITION`,
        [schema, posternTables],
      );
      const indexes = await select(
        conn,
        `SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE
           FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?)
          ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`,
        [schema, posternTables],
      );
      const foreignKeys = await select(
        conn,
        `SELECT TABLE_NAME, REFERENCED_TABLE_NAME, DELETE_RULE, UPDATE_RULE
           FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME IN (?)
          ORDER BY TABLE_NAME`,
        [schema, posternTables],
      );
      return { columns, indexes, foreignKeys };
    };
    expect(await shape(fromPostern.conn, fromPostern.name)).toEqual(await shape(fromMailcow.conn, fromMailcow.name));
  });
});
