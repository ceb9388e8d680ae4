// A superadmin (or the CLI) removes another admin's second factor, or an admin a mailbox's (a lost
// phone): every tfa row and recovery code goes, the account is flagged so its owner is told at the
// next sign-in, and it is audited, as is the owner being told.
import { findAdmin, mergeAdminAttributes } from '../storage/admins.js';
import { type AuditActor, recordAudit } from '../storage/audit.js';
import type { Db } from '../storage/db.js';
import {
  clearAdminResetNotice,
  clearMailboxResetNotice,
  deleteTwoFactor,
  setMailboxResetNotice,
} from '../storage/two-factor.js';
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

/**
 * A mailbox's authenticators and recovery codes removed by an admin who may change the mailbox
 * (the caller checks that on the mailbox itself). mailcow's 2FA rule stops applying with them:
 * the mailbox password opens IMAP/SMTP again. The owner is told at the next portal sign-in.
 */
export async function resetMailboxTwoFactor(
  db: Db,
  input: { username: string; actor: AuditActor; ip?: string },
): Promise<{ removed: number }> {
  return db.transaction(async (tx) => {
    const deleted = await deleteTwoFactor(tx, input.username);
    if (deleted.authenticators > 0) await setMailboxResetNotice(tx, input.username);
    await recordAudit(tx, {
      actor: input.actor,
      action: 'tfa.reset',
      target: input.username,
      detail: { authenticators: deleted.authenticators, recovery_codes: deleted.codes },
      ...(input.ip ? { ip: input.ip } : {}),
    });
    return { removed: deleted.authenticators };
  });
}

/** The mailbox's owner has been told (the notice is on the page being rendered); audited once. */
export async function acknowledgeMailboxTwoFactorReset(
  db: Db,
  input: { username: string; ip?: string },
): Promise<boolean> {
  return db.transaction(async (tx) => {
    if (!(await clearMailboxResetNotice(tx, input.username))) return false;
    await recordAudit(tx, {
      actor: { kind: 'mailbox', name: input.username },
      action: 'tfa.reset.notified',
      target: input.username,
      ...(input.ip ? { ip: input.ip } : {}),
    });
    return true;
  });
}
