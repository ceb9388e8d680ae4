// postern's own table for two-factor enforcement per role (Mailhardener-style): one row per role
// (superadmin, domainadmin, mailbox) that must use a second factor. mailcow has no such setting
// (only the per-admin attributes.force_tfa), so the table is postern's; a missing row means "not
// enforced", so the table starts empty and a console can change it at run time.
import type { Migration } from './migration.js';

const twoFactorPolicy = `CREATE TABLE IF NOT EXISTS postern_two_factor_policy (
  role VARCHAR(32) NOT NULL,
  enforced TINYINT(1) NOT NULL DEFAULT 0,
  modified DATETIME(0) NOT NULL DEFAULT NOW(0),
  modified_by VARCHAR(255) NULL DEFAULT NULL,
  PRIMARY KEY (role)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci ROW_FORMAT=DYNAMIC`;

export const twoFactorPolicyTable: Migration = {
  id: 8,
  name: 'two-factor-policy',
  statements: [twoFactorPolicy],
};
