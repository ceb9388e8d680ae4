// Admin accounts as mailcow keeps them: `admin` (one row per superadmin or domain admin) and
// `domain_admins` (a domain admin's domain ACL), column for column as mailcow-dockerized's
// data/web/inc/init_db.inc.php defines them (checked at commit 06424670), created only when
// missing. Plus postern's own recovery codes for TOTP (mailcow has none).
import type { Migration } from './migration.js';

const TABLE_OPTIONS = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci ROW_FORMAT=DYNAMIC';

// mailcow: superadmin = 1 for full admins, 0 for domain admins (functions.domain_admin.inc.php
// inserts them with '0'); attributes JSON holds force_tfa / force_pw_update as 0/1.
const admin = `CREATE TABLE IF NOT EXISTS admin (
  username VARCHAR(255) NOT NULL,
  password VARCHAR(255) NOT NULL,
  superadmin TINYINT(1) NOT NULL DEFAULT 0,
  created DATETIME(0) NOT NULL DEFAULT NOW(0),
  modified DATETIME ON UPDATE NOW(0),
  active TINYINT(1) NOT NULL DEFAULT 1,
  attributes JSON,
  PRIMARY KEY (username)
) ${TABLE_OPTIONS}`;

// mailcow gives each superadmin a row with domain 'ALL' here (init_db's seed); postern only
// reads rows of domain admins (admin.superadmin = 0) as their ACL.
const domainAdmins = `CREATE TABLE IF NOT EXISTS domain_admins (
  id INT NOT NULL AUTO_INCREMENT,
  username VARCHAR(255) NOT NULL,
  domain VARCHAR(255) NOT NULL,
  created DATETIME(0) NOT NULL DEFAULT NOW(0),
  active TINYINT(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (id),
  KEY username (username)
) ${TABLE_OPTIONS}`;

// One row per recovery code: only a SHA-256 of the code (80 random bits, so a digest cannot be
// reversed by search); used_at set once, atomically, when the code is spent.
const recoveryCodes = `CREATE TABLE IF NOT EXISTS postern_recovery_codes (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  username VARCHAR(255) NOT NULL,
  code_hash CHAR(64) NOT NULL,
  created DATETIME(0) NOT NULL DEFAULT NOW(0),
  used_at DATETIME(0) NULL DEFAULT NULL,
  PRIMARY KEY (id),
  KEY username (username)
) ${TABLE_OPTIONS}`;

export const admins: Migration = {
  id: 4,
  name: 'admins',
  statements: [admin, domainAdmins, recoveryCodes],
};
