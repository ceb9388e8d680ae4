// postern_audit grows the columns the audit trail needs to answer "who, in which role, from where,
// to what, with which result, changing what": the actor's kind and role, the outcome, the domain
// the target belongs to (a domain admin's view), and the changed fields before and after. Rows
// written before this step are filled in from what they already say (action suffix, target).
import type { Migration } from './migration.js';

const columns = `ALTER TABLE postern_audit
  ADD COLUMN IF NOT EXISTS actor_kind VARCHAR(16) NULL DEFAULT NULL AFTER actor,
  ADD COLUMN IF NOT EXISTS actor_role VARCHAR(16) NULL DEFAULT NULL AFTER actor_kind,
  ADD COLUMN IF NOT EXISTS outcome VARCHAR(8) NULL DEFAULT NULL AFTER action,
  ADD COLUMN IF NOT EXISTS domain VARCHAR(255) NULL DEFAULT NULL AFTER target,
  ADD COLUMN IF NOT EXISTS before_values JSON NULL DEFAULT NULL AFTER detail,
  ADD COLUMN IF NOT EXISTS after_values JSON NULL DEFAULT NULL AFTER before_values,
  ADD INDEX IF NOT EXISTS domain (domain, id),
  ADD INDEX IF NOT EXISTS ip (ip, at),
  ADD INDEX IF NOT EXISTS outcome (outcome, at)`;

export const auditColumns: Migration = {
  id: 6,
  name: 'audit-columns',
  statements: [
    columns,
    `UPDATE postern_audit SET outcome = IF(action LIKE '%.failed' OR action LIKE '%.refused', 'failure', 'success')
      WHERE outcome IS NULL`,
    `UPDATE postern_audit SET domain = LOWER(SUBSTRING_INDEX(target, '@', -1))
      WHERE domain IS NULL AND target LIKE '_%@_%'`,
  ],
};
