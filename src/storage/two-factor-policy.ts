// postern_two_factor_policy: which roles must use a second factor. A role without a row is not
// enforced. Written by the policy use-case only (src/admin/two-factor-policy.ts).
import type { Db } from './db.js';

export const POLICY_ROLES = ['superadmin', 'domainadmin', 'mailbox'] as const;
export type PolicyRole = (typeof POLICY_ROLES)[number];

export type TwoFactorPolicy = Record<PolicyRole, boolean>;

export interface StoredPolicy {
  policy: TwoFactorPolicy;
  /** When and by whom each enforced-or-not role was last set (absent: never set). */
  changes: Partial<Record<PolicyRole, { modified: Date; modifiedBy: string | null }>>;
}

export async function readTwoFactorPolicy(db: Pick<Db, 'many'>): Promise<StoredPolicy> {
  const rows = await db.many<{ role: string; enforced: number; modified: Date; modified_by: string | null }>(
    'SELECT role, enforced, modified, modified_by FROM postern_two_factor_policy',
  );
  const policy: TwoFactorPolicy = { superadmin: false, domainadmin: false, mailbox: false };
  const changes: StoredPolicy['changes'] = {};
  for (const row of rows) {
    if (!(POLICY_ROLES as readonly string[]).includes(row.role)) continue;
    const role = row.role as PolicyRole;
    policy[role] = Number(row.enforced) === 1;
    changes[role] = { modified: row.modified, modifiedBy: row.modified_by };
  }
  return { policy, changes };
}

/** Whether this one role is enforced (the sign-in paths ask only about their own). */
export async function isRoleEnforced(db: Pick<Db, 'one'>, role: PolicyRole): Promise<boolean> {
  const row = await db.one<{ enforced: number }>('SELECT enforced FROM postern_two_factor_policy WHERE role = ?', [
    role,
  ]);
  return Number(row?.enforced ?? 0) === 1;
}

export async function writeTwoFactorPolicyRole(
  db: Pick<Db, 'execute'>,
  input: { role: PolicyRole; enforced: boolean; modifiedBy: string },
): Promise<void> {
  await db.execute(
    `INSERT INTO postern_two_factor_policy (role, enforced, modified, modified_by) VALUES (?, ?, NOW(), ?)
     ON DUPLICATE KEY UPDATE enforced = VALUES(enforced), modified = NOW(), modified_by = VALUES(modified_by)`,
    [input.role, input.enforced ? 1 : 0, input.modifiedBy],
  );
}
