// A superadmin (or the CLI) removes another admin's second factor: every tfa row and recovery
// code goes, the account is flagged so its owner is told at the next sign-in, and it is audited.
import { findAdmin, mergeAdminAttributes } from '../storage/admins.js';
import { type AuditActor, recordAudit } from '../storage/audit.js';
import type { Db } from '../storage/db.js';
import { clearAdminResetNotice, deleteTwoFactor } from '../storage/two-factor.js';
import { normaliseUsername } from './admin-accounts.js';

export type ResetOutcome = { ok: true; removed: number } | { ok: false; denial: 'not_found'; message: string };

export async function resetAdminTwoFactor(
  db: Db,
  input: { username: string; actor: AuditActor; ip?: string },
): Promise<ResetOutcome> {
  const username = normaliseUsername(input.username);
  if (!(await findAdmin(db, username))) return { ok: false, denial: 'not_found', message: `no admin ${username}` };
  const removed = await db.transaction(async (tx) => {
    const deleted = await deleteTwoFactor(tx, username);
    await mergeAdminAttributes(tx, username, { tfa_reset_notice: 1 });
    await recordAudit(tx, {
      actor: input.actor,
      action: 'tfa.reset',
      target: username,
      detail: { authenticators: deleted.authenticators, recovery_codes: deleted.codes },
      ...(input.ip ? { ip: input.ip } : {}),
    });
    return deleted.authenticators;
  });
  return { ok: true, removed };
}

/**
 * The owner has been told that its second factor was reset (the notice is on the page being
 * rendered): the flag is cleared and that is audited, once. True when there was a notice to give.
 */
export async function acknowledgeTwoFactorReset(db: Db, input: { username: string; ip?: string }): Promise<boolean> {
  return db.transaction(async (tx) => {
    if (!(await clearAdminResetNotice(tx, input.username))) return false;
    await recordAudit(tx, {
      actor: { kind: 'admin', name: input.username },
      action: 'tfa.reset.notified',
      target: input.username,
      ...(input.ip ? { ip: input.ip } : {}),
    });
    return true;
  });
}
