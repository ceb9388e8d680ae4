// mailcow's tables that postern reads and writes, as mailcow-dockerized defines them in
// data/web/inc/init_db.inc.php (schema version 19022026_1220, checked at commit 06424670fa5d).
// CREATE TABLE IF NOT EXISTS only: on a mailcow database every table already exists and
// mailcow's own init_db owns its shape, so nothing here may run against an existing table.
import type { Migration } from './migration.js';

// mailcow's tables say `DEFAULT CHARSET=utf8mb4` and inherit utf8mb4_general_ci from its
// MariaDB 10.11 (data/conf/mysql/my.cnf: collation-server). We name the collation so that
// postern's tables match mailcow's whatever the server or database default is (MariaDB 11.2+
// defaults utf8mb4 to uca1400), keeping joins and the app_passwd → mailbox foreign key valid.
const TABLE_OPTIONS = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci ROW_FORMAT=DYNAMIC';

// Notes on mailcow's column semantics that the DDL cannot say:
// - `active` columns are TINYINT(1), not booleans: mailbox.active = 2 means "accepts mail,
//   refuses every login"; only 1 may log in.
// - JSON columns are LONGTEXT utf8mb4_bin with a json_valid() CHECK on MariaDB (JSON is an
//   alias there); JSON attribute values are mostly the strings "0"/"1".
// - quota columns are bytes (mailbox, templates) but MiB in the domain table (defquota,
//   maxquota, quota).
// - templates.template (the name) is not unique; mailcow takes the first match.

const domain = `CREATE TABLE IF NOT EXISTS domain (
  domain VARCHAR(255) NOT NULL,
  description VARCHAR(255),
  aliases INT(10) NOT NULL DEFAULT 0,
  mailboxes INT(10) NOT NULL DEFAULT 0,
  defquota BIGINT(20) NOT NULL DEFAULT 3072,
  maxquota BIGINT(20) NOT NULL DEFAULT 102400,
  quota BIGINT(20) NOT NULL DEFAULT 102400,
  relayhost VARCHAR(255) NOT NULL DEFAULT '0',
  backupmx TINYINT(1) NOT NULL DEFAULT 0,
  gal TINYINT(1) NOT NULL DEFAULT 1,
  relay_all_recipients TINYINT(1) NOT NULL DEFAULT 0,
  relay_unknown_only TINYINT(1) NOT NULL DEFAULT 0,
  created DATETIME(0) NOT NULL DEFAULT NOW(0),
  modified DATETIME ON UPDATE CURRENT_TIMESTAMP,
  active TINYINT(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (domain)
) ${TABLE_OPTIONS}`;

const aliasDomain = `CREATE TABLE IF NOT EXISTS alias_domain (
  alias_domain VARCHAR(255) NOT NULL,
  target_domain VARCHAR(255) NOT NULL,
  created DATETIME(0) NOT NULL DEFAULT NOW(0),
  modified DATETIME ON UPDATE CURRENT_TIMESTAMP,
  active TINYINT(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (alias_domain),
  KEY active (active),
  KEY target_domain (target_domain)
) ${TABLE_OPTIONS}`;

// authsource NULL is legal and means "no login" in mailcow's user_login(); keep it nullable.
// password is '' for mailboxes created by an external authsource.
const mailbox = `CREATE TABLE IF NOT EXISTS mailbox (
  username VARCHAR(255) NOT NULL,
  password VARCHAR(255) NOT NULL,
  name VARCHAR(255),
  description VARCHAR(255),
  mailbox_path_prefix VARCHAR(150) DEFAULT '/var/vmail/',
  quota BIGINT(20) NOT NULL DEFAULT 102400,
  local_part VARCHAR(255) NOT NULL,
  domain VARCHAR(255) NOT NULL,
  attributes JSON,
  custom_attributes JSON NOT NULL DEFAULT ('{}'),
  kind VARCHAR(100) NOT NULL DEFAULT '',
  multiple_bookings INT NOT NULL DEFAULT -1,
  authsource ENUM('mailcow', 'keycloak', 'generic-oidc', 'ldap') DEFAULT 'mailcow',
  created DATETIME(0) NOT NULL DEFAULT NOW(0),
  modified DATETIME ON UPDATE CURRENT_TIMESTAMP,
  active TINYINT(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (username),
  KEY domain (domain),
  KEY kind (kind)
) ${TABLE_OPTIONS}`;

const userAcl = `CREATE TABLE IF NOT EXISTS user_acl (
  username VARCHAR(255) NOT NULL,
  spam_alias TINYINT(1) NOT NULL DEFAULT 1,
  tls_policy TINYINT(1) NOT NULL DEFAULT 1,
  spam_score TINYINT(1) NOT NULL DEFAULT 1,
  spam_policy TINYINT(1) NOT NULL DEFAULT 1,
  delimiter_action TINYINT(1) NOT NULL DEFAULT 1,
  syncjobs TINYINT(1) NOT NULL DEFAULT 0,
  eas_reset TINYINT(1) NOT NULL DEFAULT 1,
  sogo_profile_reset TINYINT(1) NOT NULL DEFAULT 0,
  pushover TINYINT(1) NOT NULL DEFAULT 1,
  quarantine TINYINT(1) NOT NULL DEFAULT 1,
  quarantine_attachments TINYINT(1) NOT NULL DEFAULT 1,
  quarantine_notification TINYINT(1) NOT NULL DEFAULT 1,
  quarantine_category TINYINT(1) NOT NULL DEFAULT 1,
  app_passwds TINYINT(1) NOT NULL DEFAULT 1,
  pw_reset TINYINT(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (username),
  CONSTRAINT fk_username FOREIGN KEY (username) REFERENCES mailbox (username)
    ON DELETE CASCADE ON UPDATE NO ACTION
) ${TABLE_OPTIONS}`;

// mailcow adds a self-alias (address = goto = the mailbox) for every mailbox it creates.
const alias = `CREATE TABLE IF NOT EXISTS alias (
  id INT NOT NULL AUTO_INCREMENT,
  address VARCHAR(255) NOT NULL,
  goto TEXT NOT NULL,
  domain VARCHAR(255) NOT NULL,
  created DATETIME(0) NOT NULL DEFAULT NOW(0),
  modified DATETIME ON UPDATE CURRENT_TIMESTAMP,
  private_comment TEXT,
  public_comment TEXT,
  sogo_visible TINYINT(1) NOT NULL DEFAULT 1,
  internal TINYINT(1) NOT NULL DEFAULT 0,
  sender_allowed TINYINT(1) NOT NULL DEFAULT 1,
  active TINYINT(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (id),
  UNIQUE KEY address (address),
  KEY domain (domain)
) ${TABLE_OPTIONS}`;

const appPasswd = `CREATE TABLE IF NOT EXISTS app_passwd (
  id INT NOT NULL AUTO_INCREMENT,
  name VARCHAR(255) NOT NULL,
  mailbox VARCHAR(255) NOT NULL,
  domain VARCHAR(255) NOT NULL,
  password VARCHAR(255) NOT NULL,
  created DATETIME(0) NOT NULL DEFAULT NOW(0),
  modified DATETIME ON UPDATE CURRENT_TIMESTAMP,
  imap_access TINYINT(1) NOT NULL DEFAULT 1,
  smtp_access TINYINT(1) NOT NULL DEFAULT 1,
  dav_access TINYINT(1) NOT NULL DEFAULT 1,
  eas_access TINYINT(1) NOT NULL DEFAULT 1,
  pop3_access TINYINT(1) NOT NULL DEFAULT 1,
  sieve_access TINYINT(1) NOT NULL DEFAULT 1,
  active TINYINT(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (id),
  KEY mailbox (mailbox),
  KEY password (password),
  KEY domain (domain),
  CONSTRAINT fk_username_app_passwd FOREIGN KEY (mailbox) REFERENCES mailbox (username)
    ON DELETE CASCADE ON UPDATE NO ACTION
) ${TABLE_OPTIONS}`;

const quota2 = `CREATE TABLE IF NOT EXISTS quota2 (
  username VARCHAR(255) NOT NULL,
  bytes BIGINT(20) NOT NULL DEFAULT 0,
  messages BIGINT(20) NOT NULL DEFAULT 0,
  PRIMARY KEY (username)
) ${TABLE_OPTIONS}`;

const quota2replica = `CREATE TABLE IF NOT EXISTS quota2replica (
  username VARCHAR(255) NOT NULL,
  bytes BIGINT(20) NOT NULL DEFAULT 0,
  messages BIGINT(20) NOT NULL DEFAULT 0,
  PRIMARY KEY (username)
) ${TABLE_OPTIONS}`;

// One row per (service, real_rip, username): mailcow writes it with REPLACE INTO, so the
// primary key is what keeps this a "last login" table rather than a log.
const saslLog = `CREATE TABLE IF NOT EXISTS sasl_log (
  service VARCHAR(32) NOT NULL DEFAULT '',
  app_password INT,
  username VARCHAR(255) NOT NULL,
  real_rip VARCHAR(64) NOT NULL,
  datetime DATETIME(0) NOT NULL DEFAULT NOW(0),
  PRIMARY KEY (service, real_rip, username),
  KEY username (username),
  KEY service (service),
  KEY datetime (datetime),
  KEY real_rip (real_rip)
) ${TABLE_OPTIONS}`;

const templates = `CREATE TABLE IF NOT EXISTS templates (
  id INT NOT NULL AUTO_INCREMENT,
  template VARCHAR(255) NOT NULL,
  type VARCHAR(255) NOT NULL,
  attributes JSON,
  created DATETIME(0) NOT NULL DEFAULT NOW(0),
  modified DATETIME ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (id)
) ${TABLE_OPTIONS}`;

// `key` is a reserved word; mailcow's code always quotes it.
const identityProvider = `CREATE TABLE IF NOT EXISTS identity_provider (
  \`key\` VARCHAR(255) NOT NULL,
  value TEXT NOT NULL,
  created DATETIME(0) NOT NULL DEFAULT NOW(0),
  modified DATETIME ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (\`key\`)
) ${TABLE_OPTIONS}`;

// mailcow's admin API keys; allow_from is a comma-separated list of IPs/CIDRs.
const api = `CREATE TABLE IF NOT EXISTS api (
  api_key VARCHAR(255) NOT NULL,
  allow_from VARCHAR(512) NOT NULL,
  skip_ip_check TINYINT(1) NOT NULL DEFAULT 0,
  created DATETIME(0) NOT NULL DEFAULT NOW(0),
  modified DATETIME ON UPDATE NOW(0),
  access ENUM('ro', 'rw') NOT NULL DEFAULT 'rw',
  active TINYINT(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (api_key)
) ${TABLE_OPTIONS}`;

const tfa = `CREATE TABLE IF NOT EXISTS tfa (
  id INT NOT NULL AUTO_INCREMENT,
  key_id VARCHAR(255) NOT NULL,
  username VARCHAR(255) NOT NULL,
  authmech ENUM('yubi_otp', 'u2f', 'hotp', 'totp', 'webauthn'),
  secret VARCHAR(255) DEFAULT NULL,
  keyHandle VARCHAR(1023) DEFAULT NULL,
  publicKey VARCHAR(4096) DEFAULT NULL,
  counter INT NOT NULL DEFAULT 0,
  certificate TEXT,
  active TINYINT(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (id)
) ${TABLE_OPTIONS}`;

/**
 * mailcow's seeded mailbox template "Default", key for key and in mailcow's order, with the
 * values init_db derives from vars.inc.php's MAILBOX_DEFAULT_ATTRIBUTES. Unlike mailbox
 * attributes, PHP's json_encode writes these flags as numbers, not "0"/"1" strings.
 */
export const DEFAULT_MAILBOX_TEMPLATE_ATTRIBUTES = {
  tags: [],
  quota: 0,
  quarantine_notification: 'hourly',
  quarantine_category: 'reject',
  rl_frame: 's',
  rl_value: '',
  force_pw_update: 0,
  force_tfa: 0,
  sogo_access: 1,
  active: 1,
  tls_enforce_in: 0,
  tls_enforce_out: 0,
  imap_access: 1,
  pop3_access: 1,
  smtp_access: 1,
  sieve_access: 1,
  eas_access: 1,
  dav_access: 1,
  acl_spam_alias: 1,
  acl_tls_policy: 1,
  acl_spam_score: 1,
  acl_spam_policy: 1,
  acl_delimiter_action: 1,
  acl_syncjobs: 0,
  acl_eas_reset: 1,
  acl_sogo_profile_reset: 0,
  acl_pushover: 1,
  acl_quarantine: 1,
  acl_quarantine_attachments: 1,
  acl_quarantine_notification: 1,
  acl_quarantine_category: 1,
  acl_app_passwds: 1,
} as const;

function quoteSqlString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

// Matches on type and name as mailcow's init_db does: a domain template called Default (which
// mailcow also seeds) must not stop the mailbox one from being created.
const seedDefaultMailboxTemplate = `INSERT INTO templates (template, type, attributes)
SELECT 'Default', 'mailbox', ${quoteSqlString(JSON.stringify(DEFAULT_MAILBOX_TEMPLATE_ATTRIBUTES))}
FROM DUAL
WHERE NOT EXISTS (SELECT 1 FROM templates WHERE type = 'mailbox' AND template = 'Default')`;

export const mailcowCore: Migration = {
  id: 1,
  name: 'mailcow-core',
  // Referenced tables (mailbox) come before the tables whose foreign keys point at them.
  statements: [
    domain,
    aliasDomain,
    mailbox,
    userAcl,
    alias,
    appPasswd,
    quota2,
    quota2replica,
    saslLog,
    templates,
    identityProvider,
    api,
    tfa,
    seedDefaultMailboxTemplate,
  ],
};
