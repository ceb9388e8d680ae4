// postern's own tables (prefix postern_): the sync-run log and the admin/audit trail. mailcow
// never reads them; they may change shape in later migrations, unlike mailcow's tables.
import type { Migration } from './migration.js';

// Same charset and collation as mailcow's tables, so usernames compare and join alike.
const TABLE_OPTIONS = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci ROW_FORMAT=DYNAMIC';

// One row per IdP sync (cron or admin-triggered, real or dry run). A run is inserted as
// 'running' and updated once when it ends; a row left 'running' with no finished_at is a run
// whose process died. counts is an object of totals (e.g. {"created":1,"updated":0}), errors
// and actions are arrays; actions is the planned/applied diff, so it can be long (LONGTEXT on
// MariaDB). 'partial' = finished but some users failed.
const syncRuns = `CREATE TABLE IF NOT EXISTS postern_sync_runs (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  started_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  finished_at DATETIME(3) NULL DEFAULT NULL,
  status ENUM('running', 'succeeded', 'partial', 'failed') NOT NULL DEFAULT 'running',
  source VARCHAR(32) NOT NULL DEFAULT '',
  triggered_by VARCHAR(255) NOT NULL DEFAULT 'cron',
  dry_run TINYINT(1) NOT NULL DEFAULT 0,
  counts JSON NOT NULL DEFAULT ('{}'),
  errors JSON NOT NULL DEFAULT ('[]'),
  actions JSON NOT NULL DEFAULT ('[]'),
  PRIMARY KEY (id),
  KEY started_at (started_at),
  KEY status (status, started_at)
) ${TABLE_OPTIONS}`;

// Append-only record of who changed what (admin API, portal, sync). actor is a username or a
// system actor such as 'cron'; detail never holds secrets (no passwords, tokens, hashes).
// ip is VARCHAR(64) like mailcow's sasl_log.real_rip, room for any IPv6 text form.
const audit = `CREATE TABLE IF NOT EXISTS postern_audit (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  actor VARCHAR(255) NOT NULL,
  action VARCHAR(64) NOT NULL,
  target VARCHAR(255) NULL DEFAULT NULL,
  detail JSON NULL DEFAULT NULL,
  ip VARCHAR(64) NULL DEFAULT NULL,
  PRIMARY KEY (id),
  KEY at (at),
  KEY actor (actor, at),
  KEY target (target, at),
  KEY action (action, at)
) ${TABLE_OPTIONS}`;

export const posternOwn: Migration = {
  id: 2,
  name: 'postern-own',
  statements: [syncRuns, audit],
};
