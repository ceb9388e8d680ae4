// Owns postern's database schema: mailcow's tables as mailcow's init_db defines them (created
// only when missing) and postern's own `postern_*` tables. Must never ALTER, DROP or rewrite a
// mailcow table or column: postern is pointed at live mailcow databases that mailcow migrates.

import { mailcowCore } from './0001-mailcow-core.js';
import { posternOwn } from './0002-postern-own.js';
import { changeCounter } from './0003-change-counter.js';
import { admins } from './0004-admins.js';
import { tfaChangeCounter } from './0005-tfa-change-counter.js';
import { auditColumns } from './0006-audit-columns.js';
import { apiKeysTable } from './0007-api-keys.js';
import { twoFactorPolicyTable } from './0008-two-factor-policy.js';
import type { Migration } from './migration.js';

export type { Migration };

/** Every migration, ordered by id. The ledger `postern_migrations` belongs to the runner. */
export const migrations: readonly Migration[] = [
  mailcowCore,
  posternOwn,
  changeCounter,
  admins,
  tfaChangeCounter,
  auditColumns,
  apiKeysTable,
  twoFactorPolicyTable,
];
