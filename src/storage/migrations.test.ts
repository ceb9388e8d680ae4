// Runs the migrations' statements against the real MariaDB at 127.0.0.1:3306 (root, no
// password), each scenario in a scratch database of its own that is dropped afterwards.
import { randomBytes } from 'node:crypto';
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAILBOX_TEMPLATE_ATTRIBUTES } from './migrations/0001-mailcow-core.js';
import { migrations } from './migrations/index.js';

const SERVER = { host: '127.0.0.1', port: 3306, user: 'root', multipleStatements: false } as const;
const RUN_ID = randomBytes(4).toString('hex');

const MAILCOW_TABLES = [
  'domain',
  'alias_domain',
  'mailbox',
  'user_acl',
  'alias',
  'app_passwd',
  'quota2',
  'quota2replica',
  'sasl_log',
  'templates',
  'identity_provider',
  'api',
  'tfa',
  'admin',
  'domain_admins',
] as const;
const POSTERN_TABLES = [
  'postern_sync_runs',
  'postern_audit',
  'postern_change_counter',
  'postern_recovery_codes',
  'postern_api_keys',
  'postern_two_factor_policy',
] as const;

let admin: Connection;
let unreachable: Error | undefined;
const scratchDatabases: string[] = [];
const openConnections: Connection[] = [];

/** A fresh database (default collation deliberately not mailcow's) and a connection to it. */
async function openScratchDatabase(label: string): Promise<{ db: Connection; name: string }> {
  if (unreachable) throw unreachable;
  const name = `postern_test_migrations_${RUN_ID}_${label}`;
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  scratchDatabases.push(name);
  const db = await mysql.createConnection({ ...SERVER, database: name, dateStrings: true });
  openConnections.push(db);
  return { db, name };
}

async function runStatements(db: Connection, statements: readonly string[]): Promise<void> {
  for (const statement of statements) await db.query(statement);
}

async function applyAllMigrations(db: Connection): Promise<void> {
  for (const migration of migrations) await runStatements(db, migration.statements);
}

async function select<T>(db: Connection, sql: string, params: unknown[] = []): Promise<T[]> {
  const [rows] = await db.query<RowDataPacket[]>(sql, params);
  return rows as T[];
}

async function listTables(db: Connection, schema: string): Promise<string[]> {
  const rows = await select<{ name: string }>(
    db,
    `SELECT TABLE_NAME AS name FROM information_schema.TABLES
     WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`,
    [schema],
  );
  return rows.map((row) => row.name);
}

/** Everything about the listed tables that a migration could change: shape and contents. */
async function snapshot(db: Connection, schema: string, tables: readonly string[]) {
  const inTables = [schema, tables];
  const columns = await select(
    db,
    `SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT,
            CHARACTER_SET_NAME, COLLATION_NAME, EXTRA
     FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?)
     ORDER BY TABLE_NAME, ORDINAL_POSITION`,
    inTables,
  );
  const indexes = await select(
    db,
    `SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE
     FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?)
     ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`,
    inTables,
  );
  const foreignKeys = await select(
    db,
    `SELECT TABLE_NAME, CONSTRAINT_NAME, REFERENCED_TABLE_NAME, DELETE_RULE, UPDATE_RULE
     FROM information_schema.REFERENTIAL_CONSTRAINTS
     WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME IN (?) ORDER BY TABLE_NAME, CONSTRAINT_NAME`,
    inTables,
  );
  const tableOptions = await select(
    db,
    `SELECT TABLE_NAME, ENGINE, TABLE_COLLATION, ROW_FORMAT
     FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?)
     ORDER BY TABLE_NAME`,
    inTables,
  );
  const rows: Record<string, unknown[]> = {};
  for (const table of tables) {
    const all = await select<Record<string, unknown>>(db, `SELECT * FROM \`${table}\``);
    rows[table] = all.map((row) => JSON.stringify(row)).sort();
  }
  return { columns, indexes, foreignKeys, tableOptions, rows };
}

// A missing server is a failure, never a skip: the connection error is kept, the first test
// reports it, and every suite that needs a database fails in its setup.
beforeAll(async () => {
  try {
    admin = await mysql.createConnection(SERVER);
  } catch (error) {
    unreachable = new Error(
      `MariaDB at ${SERVER.host}:${SERVER.port} (user root, no password) is not reachable; ` +
        'these tests need it and never skip',
      { cause: error },
    );
  }
});

it('reaches the MariaDB server these tests run against', () => {
  if (unreachable) throw unreachable;
  expect(admin).toBeDefined();
});

afterAll(async () => {
  for (const db of openConnections) await db.end();
  if (!admin) return;
  for (const name of scratchDatabases) await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
  await admin.end();
});

describe('migration list', () => {
  it('has unique ids in ascending order, each with a name and statements', () => {
    const ids = migrations.map((migration) => migration.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    for (const migration of migrations) {
      expect(migration.name).toMatch(/^[a-z0-9-]+$/);
      expect(migration.statements.length).toBeGreaterThan(0);
    }
  });

  it('only creates missing mailcow tables or inserts missing rows, never alters, drops or rewrites them', () => {
    const statementShape =
      /^\s*(CREATE TABLE IF NOT EXISTS|CREATE TABLE|INSERT INTO|ALTER TABLE|DROP TABLE(?: IF EXISTS)?|UPDATE|DELETE FROM|REPLACE INTO|TRUNCATE(?: TABLE)?|RENAME TABLE|CREATE (?:UNIQUE )?INDEX \S+ ON)\s+`?(\w+)`?/i;
    for (const migration of migrations) {
      for (const statement of migration.statements) {
        // Triggers add behaviour beside mailcow's tables and write only postern's counter.
        if (
          /^\s*CREATE TRIGGER IF NOT EXISTS postern_\w+ AFTER (INSERT|UPDATE|DELETE) ON \w+\s+FOR EACH ROW UPDATE postern_change_counter SET changes = changes \+ 1 WHERE id = 1\s*$/.test(
            statement,
          )
        ) {
          continue;
        }
        const match = statementShape.exec(statement);
        expect(match, `unrecognised statement in migration ${migration.id}: ${statement}`).not.toBeNull();
        const verb = (match?.[1] ?? '').toUpperCase();
        const table = match?.[2] ?? '';
        if (table.startsWith('postern_')) continue;
        const isSafe =
          verb === 'CREATE TABLE IF NOT EXISTS' || (verb === 'INSERT INTO' && /\bWHERE NOT EXISTS\b/i.test(statement));
        expect(isSafe, `migration ${migration.id} touches mailcow's ${table}: ${statement}`).toBe(true);
      }
    }
  });
});

describe('on an empty database', () => {
  let db: Connection;
  let schema: string;

  beforeAll(async () => {
    ({ db, name: schema } = await openScratchDatabase('empty'));
    await applyAllMigrations(db);
  });

  it("creates exactly mailcow's tables and postern's own tables", async () => {
    expect(await listTables(db, schema)).toEqual([...MAILCOW_TABLES, ...POSTERN_TABLES].sort());
  });

  it.each([
    ['domain', ['domain']],
    ['alias_domain', ['alias_domain']],
    ['mailbox', ['username']],
    ['user_acl', ['username']],
    ['alias', ['id']],
    ['app_passwd', ['id']],
    ['quota2', ['username']],
    ['quota2replica', ['username']],
    ['sasl_log', ['service', 'real_rip', 'username']],
    ['templates', ['id']],
    ['identity_provider', ['key']],
    ['api', ['api_key']],
    ['tfa', ['id']],
    ['admin', ['username']],
    ['domain_admins', ['id']],
    ['postern_recovery_codes', ['id']],
    ['postern_sync_runs', ['id']],
    ['postern_audit', ['id']],
    ['postern_change_counter', ['id']],
    ['postern_two_factor_policy', ['role']],
  ])('gives %s the primary key %j', async (table, keyColumns) => {
    const rows = await select<{ column: string }>(
      db,
      `SELECT COLUMN_NAME AS \`column\` FROM information_schema.KEY_COLUMN_USAGE
       WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY'
       ORDER BY ORDINAL_POSITION`,
      [schema, table],
    );
    expect(rows.map((row) => row.column)).toEqual(keyColumns);
  });

  it.each([
    ['mailbox', 'domain'],
    ['mailbox', 'kind'],
    ['alias', 'address'],
    ['alias', 'domain'],
    ['alias_domain', 'target_domain'],
    ['app_passwd', 'mailbox'],
    ['app_passwd', 'password'],
    ['app_passwd', 'domain'],
    ['sasl_log', 'username'],
    ['sasl_log', 'datetime'],
    ['sasl_log', 'real_rip'],
    ['domain_admins', 'username'],
  ])('indexes %s.%s as mailcow does', async (table, column) => {
    const rows = await select(
      db,
      `SELECT 1 FROM information_schema.STATISTICS
       WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = ? AND SEQ_IN_INDEX = 1 AND COLUMN_NAME = ?`,
      [schema, table, column, column],
    );
    expect(rows).toHaveLength(1);
  });

  it("creates every table as InnoDB utf8mb4_general_ci, mailcow's collation, though the database defaults to unicode_ci", async () => {
    const rows = await select<{ name: string; engine: string; collation: string }>(
      db,
      `SELECT TABLE_NAME AS name, ENGINE AS engine, TABLE_COLLATION AS collation
       FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?`,
      [schema],
    );
    expect(rows).toHaveLength(MAILCOW_TABLES.length + POSTERN_TABLES.length);
    for (const row of rows)
      expect([row.name, row.engine, row.collation]).toEqual([row.name, 'InnoDB', 'utf8mb4_general_ci']);
  });

  it.each([
    ['mailbox', 'authsource', "enum('mailcow','keycloak','generic-oidc','ldap')", 'YES', "'mailcow'"],
    ['mailbox', 'active', 'tinyint(1)', 'NO', '1'],
    ['mailbox', 'quota', 'bigint(20)', 'NO', '102400'],
    ['mailbox', 'password', 'varchar(255)', 'NO', null],
    ['mailbox', 'kind', 'varchar(100)', 'NO', "''"],
    ['mailbox', 'multiple_bookings', 'int(11)', 'NO', '-1'],
    ['mailbox', 'mailbox_path_prefix', 'varchar(150)', 'YES', "'/var/vmail/'"],
    ['app_passwd', 'mailbox', 'varchar(255)', 'NO', null],
    ['app_passwd', 'pop3_access', 'tinyint(1)', 'NO', '1'],
    ['app_passwd', 'active', 'tinyint(1)', 'NO', '1'],
    ['domain', 'active', 'tinyint(1)', 'NO', '1'],
    ['domain', 'quota', 'bigint(20)', 'NO', '102400'],
    ['alias_domain', 'active', 'tinyint(1)', 'NO', '1'],
    ['sasl_log', 'service', 'varchar(32)', 'NO', "''"],
    ['sasl_log', 'app_password', 'int(11)', 'YES', 'NULL'],
    ['sasl_log', 'datetime', 'datetime', 'NO', 'current_timestamp()'],
    ['identity_provider', 'value', 'text', 'NO', null],
    ['api', 'allow_from', 'varchar(512)', 'NO', null],
    ['api', 'access', "enum('ro','rw')", 'NO', "'rw'"],
    ['tfa', 'authmech', "enum('yubi_otp','u2f','hotp','totp','webauthn')", 'YES', 'NULL'],
    ['tfa', 'active', 'tinyint(1)', 'NO', '0'],
    ['admin', 'password', 'varchar(255)', 'NO', null],
    ['admin', 'superadmin', 'tinyint(1)', 'NO', '0'],
    ['admin', 'active', 'tinyint(1)', 'NO', '1'],
    ['admin', 'created', 'datetime', 'NO', 'current_timestamp()'],
    ['admin', 'modified', 'datetime', 'YES', 'NULL'],
    ['domain_admins', 'domain', 'varchar(255)', 'NO', null],
    ['domain_admins', 'active', 'tinyint(1)', 'NO', '1'],
    ['postern_recovery_codes', 'code_hash', 'char(64)', 'NO', null],
    ['postern_sync_runs', 'dry_run', 'tinyint(1)', 'NO', '0'],
    ['postern_audit', 'ip', 'varchar(64)', 'YES', 'NULL'],
  ])(
    'defines %s.%s as %s (nullable %s, default %s) like mailcow',
    async (table, column, type, nullable, defaultValue) => {
      const rows = await select(
        db,
        `SELECT COLUMN_TYPE AS type, IS_NULLABLE AS nullable, COLUMN_DEFAULT AS defaultValue
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?`,
        [schema, table, column],
      );
      expect(rows).toEqual([{ type, nullable, defaultValue }]);
    },
  );

  it.each([
    ['mailbox', 'attributes'],
    ['mailbox', 'custom_attributes'],
    ['templates', 'attributes'],
    ['admin', 'attributes'],
    ['postern_sync_runs', 'counts'],
    ['postern_sync_runs', 'errors'],
    ['postern_sync_runs', 'actions'],
    ['postern_audit', 'detail'],
  ])('stores %s.%s as MariaDB JSON: LONGTEXT utf8mb4_bin guarded by json_valid', async (table, column) => {
    const [definition] = await select(
      db,
      `SELECT DATA_TYPE AS dataType, COLLATION_NAME AS collation
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?`,
      [schema, table, column],
    );
    expect(definition).toEqual({ dataType: 'longtext', collation: 'utf8mb4_bin' });
    const checks = await select(
      db,
      `SELECT CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS
       WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = ?`,
      [schema, table, column],
    );
    expect(checks).toEqual([{ clause: `json_valid(\`${column}\`)` }]);
  });

  it("seeds mailcow's Default mailbox template exactly once, with mailcow's attributes", async () => {
    const rows = await select<{ type: string; attributes: unknown }>(
      db,
      "SELECT type, attributes FROM templates WHERE template = 'Default'",
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.type).toBe('mailbox');
    const attributes = typeof rows[0]?.attributes === 'string' ? JSON.parse(rows[0].attributes) : rows[0]?.attributes;
    expect(attributes).toEqual(DEFAULT_MAILBOX_TEMPLATE_ATTRIBUTES);
    expect(Object.keys(attributes as object)).toEqual(Object.keys(DEFAULT_MAILBOX_TEMPLATE_ATTRIBUTES));
  });

  it('lets a mailbox be active = 2 (receives mail, no login) and refuses attributes that are not JSON', async () => {
    await db.query("INSERT INTO domain (domain) VALUES ('example.org')");
    await db.query(
      `INSERT INTO mailbox (username, password, local_part, domain, attributes, active)
       VALUES ('nologin@example.org', '', 'nologin', 'example.org', '{"imap_access":"1"}', 2)`,
    );
    const [row] = await select<{ active: number; authsource: string; custom: string }>(
      db,
      "SELECT active, authsource, custom_attributes AS custom FROM mailbox WHERE username = 'nologin@example.org'",
    );
    expect(row).toMatchObject({ active: 2, authsource: 'mailcow' });
    await expect(
      db.query(
        `INSERT INTO mailbox (username, password, local_part, domain, attributes)
         VALUES ('broken@example.org', '', 'broken', 'example.org', 'not json')`,
      ),
    ).rejects.toThrow(/CONSTRAINT/i);
    await expect(
      db.query(
        `INSERT INTO mailbox (username, password, local_part, domain, authsource)
         VALUES ('saml@example.org', '', 'saml', 'example.org', 'saml')`,
      ),
    ).rejects.toThrow(/authsource/);
  });

  it("deletes a mailbox's app passwords and ACL row with the mailbox (ON DELETE CASCADE)", async () => {
    await db.query(
      `INSERT INTO mailbox (username, password, local_part, domain)
       VALUES ('gone@example.org', '{BLF-CRYPT}x', 'gone', 'example.org')`,
    );
    await db.query(
      `INSERT INTO app_passwd (name, mailbox, domain, password)
       VALUES ('phone', 'gone@example.org', 'example.org', '{BLF-CRYPT}y')`,
    );
    await db.query("INSERT INTO user_acl (username) VALUES ('gone@example.org')");
    await db.query("DELETE FROM mailbox WHERE username = 'gone@example.org'");
    expect(await select(db, "SELECT id FROM app_passwd WHERE mailbox = 'gone@example.org'")).toEqual([]);
    expect(await select(db, "SELECT username FROM user_acl WHERE username = 'gone@example.org'")).toEqual([]);
    await expect(
      db.query(
        `INSERT INTO app_passwd (name, mailbox, domain, password)
         VALUES ('orphan', 'nobody@example.org', 'example.org', '{BLF-CRYPT}z')`,
      ),
    ).rejects.toThrow(/foreign key/i);
  });

  it('accepts postern_audit and postern_sync_runs rows written without quoting column names', async () => {
    await db.query(
      `INSERT INTO postern_audit (actor, action, target, detail, ip)
       VALUES ('admin', 'mailbox.authsource.set', 'nologin@example.org', '{"to":"keycloak"}', '2001:db8::1')`,
    );
    await db.query("INSERT INTO postern_sync_runs (source, dry_run) VALUES ('keycloak', 1)");
    const [audit] = await select(db, 'SELECT at IS NOT NULL AS hasTime, detail FROM postern_audit');
    expect(audit).toMatchObject({ hasTime: 1 });
    const [run] = await select(db, 'SELECT status, finished_at, counts, errors, actions FROM postern_sync_runs');
    expect(run).toMatchObject({ status: 'running', finished_at: null });
  });
});

describe('applied twice', () => {
  it('changes no table, column, index or row the first run left', async () => {
    const { db, name } = await openScratchDatabase('twice');
    await applyAllMigrations(db);
    await db.query("INSERT INTO domain (domain) VALUES ('example.org')");
    await db.query(
      `INSERT INTO mailbox (username, password, local_part, domain, attributes)
       VALUES ('alice@example.org', '{BLF-CRYPT}x', 'alice', 'example.org', '{}')`,
    );
    const tables = await listTables(db, name);
    const before = await snapshot(db, name, tables);

    await applyAllMigrations(db);

    expect(await listTables(db, name)).toEqual(tables);
    expect(await snapshot(db, name, tables)).toEqual(before);
    expect(await select(db, "SELECT id FROM templates WHERE template = 'Default'")).toHaveLength(1);
  });
});

// A mailcow database of another vintage, with local changes: extra and legacy columns, older
// ENUMs and widths, another collation, missing columns, FKs, its own Default templates, and a
// few of our tables absent. Written for this test, not copied from mailcow.
const MAILCOW_FIXTURE = [
  `CREATE TABLE versions (
     application VARCHAR(255) NOT NULL,
     version VARCHAR(100) NOT NULL,
     created DATETIME(0) NOT NULL DEFAULT NOW(0),
     PRIMARY KEY (application)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC`,
  `CREATE TABLE domain (
     domain VARCHAR(255) NOT NULL,
     description VARCHAR(255),
     aliases INT(10) NOT NULL DEFAULT '0',
     mailboxes INT(10) NOT NULL DEFAULT '0',
     defquota BIGINT(20) NOT NULL DEFAULT '3072',
     maxquota BIGINT(20) NOT NULL DEFAULT '102400',
     quota BIGINT(20) NOT NULL DEFAULT '102400',
     relayhost VARCHAR(255) NOT NULL DEFAULT '0',
     backupmx TINYINT(1) NOT NULL DEFAULT '0',
     gal TINYINT(1) NOT NULL DEFAULT '1',
     relay_all_recipients TINYINT(1) NOT NULL DEFAULT '0',
     local_note TEXT,
     created DATETIME(0) NOT NULL DEFAULT NOW(0),
     modified DATETIME ON UPDATE CURRENT_TIMESTAMP,
     active TINYINT(1) NOT NULL DEFAULT '1',
     PRIMARY KEY (domain)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci ROW_FORMAT=DYNAMIC`,
  `CREATE TABLE mailbox (
     username VARCHAR(255) NOT NULL,
     password VARCHAR(255) NOT NULL,
     name VARCHAR(255),
     description VARCHAR(255),
     mailbox_path_prefix VARCHAR(150) DEFAULT '/var/vmail/',
     quota BIGINT(20) NOT NULL DEFAULT '0',
     local_part VARCHAR(255) NOT NULL,
     domain VARCHAR(255) NOT NULL,
     attributes JSON,
     custom_attributes JSON NOT NULL DEFAULT ('{}'),
     kind VARCHAR(100) NOT NULL DEFAULT '',
     multiple_bookings INT NOT NULL DEFAULT -1,
     tls_enforce_in TINYINT(1) NOT NULL DEFAULT '0',
     authsource ENUM('mailcow', 'keycloak', 'generic-oidc') DEFAULT 'mailcow',
     created DATETIME(0) NOT NULL DEFAULT NOW(0),
     modified DATETIME ON UPDATE CURRENT_TIMESTAMP,
     active TINYINT(1) NOT NULL DEFAULT '1',
     PRIMARY KEY (username),
     KEY domain (domain),
     KEY kind (kind)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC`,
  `CREATE TABLE user_acl (
     username VARCHAR(255) NOT NULL,
     spam_alias TINYINT(1) NOT NULL DEFAULT '1',
     syncjobs TINYINT(1) NOT NULL DEFAULT '0',
     app_passwds TINYINT(1) NOT NULL DEFAULT '1',
     PRIMARY KEY (username),
     FOREIGN KEY fk_username (username) REFERENCES mailbox (username) ON DELETE CASCADE ON UPDATE NO ACTION
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC`,
  `CREATE TABLE alias (
     id INT NOT NULL AUTO_INCREMENT,
     address VARCHAR(255) NOT NULL,
     goto TEXT NOT NULL,
     domain VARCHAR(255) NOT NULL,
     created DATETIME(0) NOT NULL DEFAULT NOW(0),
     modified DATETIME ON UPDATE CURRENT_TIMESTAMP,
     private_comment TEXT,
     public_comment TEXT,
     sogo_visible TINYINT(1) NOT NULL DEFAULT '1',
     active TINYINT(1) NOT NULL DEFAULT '1',
     PRIMARY KEY (id),
     UNIQUE KEY address (address),
     KEY domain (domain)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC`,
  `CREATE TABLE app_passwd (
     id INT NOT NULL AUTO_INCREMENT,
     name VARCHAR(255) NOT NULL,
     mailbox VARCHAR(255) NOT NULL,
     domain VARCHAR(255) NOT NULL,
     password VARCHAR(255) NOT NULL,
     created DATETIME(0) NOT NULL DEFAULT NOW(0),
     modified DATETIME ON UPDATE CURRENT_TIMESTAMP,
     imap_access TINYINT(1) NOT NULL DEFAULT '1',
     smtp_access TINYINT(1) NOT NULL DEFAULT '1',
     dav_access TINYINT(1) NOT NULL DEFAULT '1',
     eas_access TINYINT(1) NOT NULL DEFAULT '1',
     active TINYINT(1) NOT NULL DEFAULT '1',
     PRIMARY KEY (id),
     KEY mailbox (mailbox),
     KEY password (password),
     KEY domain (domain),
     FOREIGN KEY fk_username_app_passwd (mailbox) REFERENCES mailbox (username) ON DELETE CASCADE ON UPDATE NO ACTION
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC`,
  `CREATE TABLE sasl_log (
     service VARCHAR(32) NOT NULL DEFAULT '',
     app_password INT,
     username VARCHAR(255),
     real_rip VARCHAR(64) NOT NULL,
     datetime DATETIME(0) NOT NULL DEFAULT NOW(0),
     KEY username (username),
     KEY service (service),
     KEY datetime (datetime),
     KEY real_rip (real_rip)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC`,
  `CREATE TABLE templates (
     id INT NOT NULL AUTO_INCREMENT,
     template VARCHAR(255) NOT NULL,
     type VARCHAR(255) NOT NULL,
     attributes JSON,
     created DATETIME(0) NOT NULL DEFAULT NOW(0),
     modified DATETIME ON UPDATE CURRENT_TIMESTAMP,
     PRIMARY KEY (id)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC`,
  `CREATE TABLE identity_provider (
     \`key\` VARCHAR(255) NOT NULL,
     value TEXT NOT NULL,
     created DATETIME(0) NOT NULL DEFAULT NOW(0),
     modified DATETIME ON UPDATE CURRENT_TIMESTAMP,
     PRIMARY KEY (\`key\`)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC`,
  `CREATE TABLE api (
     api_key VARCHAR(255) NOT NULL,
     allow_from VARCHAR(255) NOT NULL,
     skip_ip_check TINYINT(1) NOT NULL DEFAULT '0',
     created DATETIME(0) NOT NULL DEFAULT NOW(0),
     modified DATETIME ON UPDATE NOW(0),
     access ENUM('ro', 'rw') NOT NULL DEFAULT 'rw',
     active TINYINT(1) NOT NULL DEFAULT '1',
     PRIMARY KEY (api_key)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC`,
  `CREATE TABLE admin (
     username VARCHAR(255) NOT NULL,
     password VARCHAR(255) NOT NULL,
     superadmin TINYINT(1) NOT NULL DEFAULT '0',
     created DATETIME(0) NOT NULL DEFAULT NOW(0),
     modified DATETIME ON UPDATE NOW(0),
     active TINYINT(1) NOT NULL DEFAULT '1',
     PRIMARY KEY (username)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC`,
  `CREATE TABLE domain_admins (
     id INT NOT NULL AUTO_INCREMENT,
     username VARCHAR(255) NOT NULL,
     domain VARCHAR(255) NOT NULL,
     created DATETIME(0) NOT NULL DEFAULT NOW(0),
     active TINYINT(1) NOT NULL DEFAULT '1',
     PRIMARY KEY (id),
     KEY username (username)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC`,
  "INSERT INTO versions (application, version) VALUES ('db_schema', '01022024_1500')",
  "INSERT INTO admin (username, password, superadmin, created, modified, active) VALUES ('admin', '{SSHA256}K8eVJ6YsZbQCfuJvSUbaQRLr0HPLz5rC9IAp0PAFl0tmNDBkMDc0NDAyOTAxN2Rk', 1, NOW(), NOW(), 1), ('helpdesk', '{BLF-CRYPT}$2y$10$abcdefghijklmnopqrstuv', 0, NOW(), NOW(), 1)",
  "INSERT INTO domain_admins (username, domain, active) VALUES ('admin', 'ALL', 1), ('helpdesk', 'example.org', 1)",
  "INSERT INTO domain (domain, description, local_note, active) VALUES ('example.org', 'Example', 'keep me', 1), ('parked.example', NULL, NULL, 0)",
  `INSERT INTO mailbox (username, password, name, quota, local_part, domain, attributes, custom_attributes, kind, multiple_bookings, tls_enforce_in, authsource, active) VALUES
     ('alice@example.org', '{BLF-CRYPT}$2y$10$abcdefghijklmnopqrstuv', 'Alice', 3221225472, 'alice', 'example.org',
      '{"imap_access":"1","pop3_access":"0","force_pw_update":"0","attribute_hash":"da39a3ee"}', '{"team":"ops"}', '', -1, 1, 'mailcow', 1),
     ('bob@example.org', '', 'Bob', 0, 'bob', 'example.org', '{"imap_access":"1"}', '{}', '', -1, 0, 'keycloak', 2),
     ('room1@example.org', '', 'Room 1', 0, 'room1', 'example.org', NULL, '{}', 'location', 3, 0, NULL, 1)`,
  "INSERT INTO user_acl (username, syncjobs) VALUES ('alice@example.org', 1)",
  "INSERT INTO alias (address, goto, domain) VALUES ('alice@example.org', 'alice@example.org', 'example.org'), ('info@example.org', 'alice@example.org,bob@example.org', 'example.org')",
  "INSERT INTO app_passwd (name, mailbox, domain, password, imap_access, smtp_access, active) VALUES ('Thunderbird', 'alice@example.org', 'example.org', '{BLF-CRYPT}$2y$10$zyxwvutsrqponmlkjihgfe', 1, 0, 1)",
  "INSERT INTO sasl_log (service, app_password, username, real_rip) VALUES ('imap', NULL, 'alice@example.org', '192.0.2.10'), ('smtp', 1, 'alice@example.org', '2001:db8::10')",
  `INSERT INTO templates (template, type, attributes) VALUES
     ('Default', 'domain', '{"max_num_mboxes_for_domain":10}'),
     ('Default', 'mailbox', '{"quota":5368709120,"imap_access":1,"pop3_access":0}'),
     ('Staff', 'mailbox', '{"quota":0}')`,
  "INSERT INTO identity_provider (`key`, value) VALUES ('authsource', 'keycloak'), ('mappers', '[\"staff\"]'), ('templates', '[\"Staff\"]')",
  "INSERT INTO api (api_key, allow_from, access) VALUES ('ABCDEF-123456', '192.0.2.0/24', 'ro')",
];

describe('on an existing mailcow database', () => {
  let db: Connection;
  let schema: string;
  let existingTables: string[];
  let before: Awaited<ReturnType<typeof snapshot>>;

  beforeAll(async () => {
    ({ db, name: schema } = await openScratchDatabase('mailcow'));
    await runStatements(db, MAILCOW_FIXTURE);
    existingTables = await listTables(db, schema);
    before = await snapshot(db, schema, existingTables);
    await applyAllMigrations(db);
  });

  it('leaves every existing column definition, index, foreign key and table option unchanged', async () => {
    const after = await snapshot(db, schema, existingTables);
    expect(before.columns.length).toBeGreaterThan(80);
    expect(after.columns).toEqual(before.columns);
    expect(after.indexes).toEqual(before.indexes);
    expect(after.foreignKeys).toEqual(before.foreignKeys);
    expect(after.tableOptions).toEqual(before.tableOptions);
  });

  it("leaves every existing row unchanged and adds no Default template beside mailcow's", async () => {
    const after = await snapshot(db, schema, existingTables);
    expect(after.rows).toEqual(before.rows);
    expect(before.rows.templates).toHaveLength(3);
  });

  it("adds the missing mailcow tables and postern's own tables, and nothing else", async () => {
    const added = (await listTables(db, schema)).filter((table) => !existingTables.includes(table));
    expect(added.sort()).toEqual([
      'alias_domain',
      'postern_api_keys',
      'postern_audit',
      'postern_change_counter',
      'postern_recovery_codes',
      'postern_sync_runs',
      'postern_two_factor_policy',
      'quota2',
      'quota2replica',
      'tfa',
    ]);
  });

  it('adds only postern_ triggers, one per event on each table a mail login reads (tfa included)', async () => {
    const triggers = await select<{ name: string; event: string; table: string }>(
      db,
      `SELECT TRIGGER_NAME AS name, EVENT_MANIPULATION AS event, EVENT_OBJECT_TABLE AS \`table\`
         FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY TRIGGER_NAME`,
      [schema],
    );
    const expected = ['alias_domain', 'app_passwd', 'domain', 'mailbox', 'tfa'].flatMap((table) =>
      ['INSERT', 'UPDATE', 'DELETE'].map((event) => ({
        name: `postern_${table}_${event.toLowerCase()}_count`,
        event,
        table,
      })),
    );
    expect(triggers).toEqual(expected.sort((a, b) => (a.name < b.name ? -1 : 1)));
  });

  it('counts every insert, update and delete on the tables a mail login reads', async () => {
    const counter = async () =>
      Number(
        (await select<{ changes: number }>(db, 'SELECT changes FROM postern_change_counter WHERE id = 1'))[0]?.changes,
      );
    const before = await counter();
    await db.query("INSERT INTO alias_domain (alias_domain, target_domain) VALUES ('alias.example', 'example.org')");
    await db.query("UPDATE alias_domain SET active = 0 WHERE alias_domain = 'alias.example'");
    await db.query("DELETE FROM alias_domain WHERE alias_domain = 'alias.example'");
    await db.query("UPDATE domain SET active = active WHERE domain = 'example.org'");
    expect(await counter()).toBe(before + 4);
    // mailcow's tfa table (migration 5): an authenticator decides whether the password logs in.
    await db.query("INSERT INTO tfa (key_id, username, authmech, active) VALUES ('k', 'alice@example.org', 'totp', 1)");
    await db.query("UPDATE tfa SET active = 0 WHERE username = 'alice@example.org'");
    await db.query("DELETE FROM tfa WHERE username = 'alice@example.org'");
    expect(await counter()).toBe(before + 7);
    await db.query("INSERT INTO sasl_log (service, real_rip, username) VALUES ('imap', '192.0.2.1', 'x@example.org')");
    expect(await counter()).toBe(before + 7);
  });

  it('stays unchanged when the migrations run again', async () => {
    const tables = await listTables(db, schema);
    const once = await snapshot(db, schema, tables);
    await applyAllMigrations(db);
    expect(await snapshot(db, schema, tables)).toEqual(once);
  });
});
