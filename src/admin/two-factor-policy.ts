// Two-factor enforcement per role (superadmins, domain admins, local-password mailbox users),
// Mailhardener-style: an enforced account without an authenticator must enrol at its next sign-in
// before anything else, and an admin turns enforcement on only once it uses a second factor itself
// (so nobody demands of others what would lock themselves out). Denials are values; SQL in storage/.
import { type AuditActor, recordAudit } from '../storage/audit.js';
import type { Db } from '../storage/db.js';
import { hasAnyActiveTfa } from '../storage/two-factor.js';
import {
  POLICY_ROLES,
  type PolicyRole,
  readTwoFactorPolicy,
  type TwoFactorPolicy,
  writeTwoFactorPolicyRole,
} from '../storage/two-factor-policy.js';

export type PolicyChangeOutcome =
  | { ok: true; before: TwoFactorPolicy; after: TwoFactorPolicy }
  | { ok: false; denial: 'actor_not_enrolled'; message: string };

export const ACTOR_NOT_ENROLLED_MESSAGE =
  'set up your own two-factor sign-in (at /admin/tfa/enrol) before requiring it of anyone';

export async function changeTwoFactorPolicy(
  deps: { db: Db },
  input: {
    change: Partial<TwoFactorPolicy>;
    /** Who asks: an admin (session) or an API key, for the audit trail. */
    actor: AuditActor;
    /** The signed-in admin making the change, when it is a person rather than a key. */
    actorAccount?: string;
    ip?: string;
  },
): Promise<PolicyChangeOutcome> {
  const { policy: before } = await readTwoFactorPolicy(deps.db);
  const turnedOn = POLICY_ROLES.filter((role) => input.change[role] === true && !before[role]);
  if (turnedOn.length > 0 && input.actorAccount && !(await hasAnyActiveTfa(deps.db, input.actorAccount))) {
    return { ok: false, denial: 'actor_not_enrolled', message: ACTOR_NOT_ENROLLED_MESSAGE };
  }
  const changed = POLICY_ROLES.filter(
    (role) => input.change[role] !== undefined && input.change[role] !== before[role],
  );
  const after: TwoFactorPolicy = { ...before };
  for (const role of changed) after[role] = input.change[role] as boolean;
  if (changed.length === 0) return { ok: true, before, after };
  const actorName = typeof input.actor === 'string' ? input.actor : input.actor.name;
  await deps.db.transaction(async (tx) => {
    for (const role of changed) {
      await writeTwoFactorPolicyRole(tx, { role, enforced: after[role], modifiedBy: actorName });
    }
    await recordAudit(tx, {
      actor: input.actor,
      action: 'two_factor_policy.update',
      target: 'two_factor_policy',
      before: pick(before, changed),
      after: pick(after, changed),
      ...(input.ip ? { ip: input.ip } : {}),
    });
  });
  return { ok: true, before, after };
}

function pick(policy: TwoFactorPolicy, roles: readonly PolicyRole[]): Partial<TwoFactorPolicy> {
  return Object.fromEntries(roles.map((role) => [role, policy[role]]));
}
