// postern's own API keys (POST /api/v1/api-keys): a role (superadmin, or domain admin of the
// listed domains), read-only or read-write, the networks they may be used from, an optional
// expiry, and when and from where they were last used. Only a SHA-256 of the key is stored: the
// key is 256 random bits, so the digest cannot be searched back to it. mailcow's `api` table is
// left as mailcow defines it; its keys keep working as superadmin keys.
import type { Migration } from './migration.js';

const TABLE_OPTIONS = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci ROW_FORMAT=DYNAMIC';

const apiKeys = `CREATE TABLE IF NOT EXISTS postern_api_keys (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  name VARCHAR(64) NOT NULL,
  key_hash CHAR(64) NOT NULL,
  hint VARCHAR(16) NOT NULL,
  role VARCHAR(16) NOT NULL,
  domains JSON NOT NULL,
  access VARCHAR(2) NOT NULL DEFAULT 'ro',
  allow_from VARCHAR(2048) NOT NULL,
  expires_at DATETIME(0) NULL DEFAULT NULL,
  created DATETIME(0) NOT NULL DEFAULT NOW(0),
  created_by VARCHAR(255) NOT NULL,
  last_used_at DATETIME(0) NULL DEFAULT NULL,
  last_used_ip VARCHAR(64) NULL DEFAULT NULL,
  revoked_at DATETIME(0) NULL DEFAULT NULL,
  revoked_by VARCHAR(255) NULL DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY key_hash (key_hash)
) ${TABLE_OPTIONS}`;

export const apiKeysTable: Migration = {
  id: 7,
  name: 'api-keys',
  statements: [apiKeys],
};
