// Writes to mailcow's `tfa` table for TOTP (authmech 'totp', secret = the base32 key, as mailcow's
// set_tfa() stores it in data/web/inc/functions.inc.php) and to postern_recovery_codes.
// Reads for the mail-login 2FA rule live in tfa.ts.
import type { Db, Tx } from './db.js';

type Writer = Pick<Db, 'execute'>;

export interface TotpRow {
  id: number;
  secret: string;
  /** The last accepted RFC 6238 time step (postern's replay guard; mailcow leaves it 0 for totp). */
  lastStep: number;
}

export async function findActiveTotp(db: Pick<Db, 'many'>, username: string): Promise<TotpRow[]> {
  const rows = await db.many<{ id: number; secret: string | null; counter: number }>(
    "SELECT id, secret, counter FROM tfa WHERE username = ? AND authmech = 'totp' AND active = 1 ORDER BY id",
    [username],
  );
  return rows
    .filter((row) => typeof row.secret === 'string' && row.secret !== '')
    .map((row) => ({ id: Number(row.id), secret: row.secret as string, lastStep: Number(row.counter) }));
}

/** Whether the user has any active authenticator of any kind (mailcow's get_tfa). */
export async function hasAnyActiveTfa(db: Pick<Db, 'one'>, username: string): Promise<boolean> {
  return (
    (await db.one('SELECT 1 AS found FROM tfa WHERE username = ? AND active = 1 LIMIT 1', [username])) !== undefined
  );
}

export async function insertTotp(
  db: Writer,
  input: { username: string; keyId: string; secret: string; step: number },
): Promise<number> {
  const result = await db.execute(
    "INSERT INTO tfa (username, key_id, authmech, secret, counter, active) VALUES (?, ?, 'totp', ?, ?, 1)",
    [input.username, input.keyId, input.secret, input.step],
  );
  return result.insertId;
}

/**
 * Move the replay guard forward to `step`, only if it is behind: one UPDATE, so two requests
 * racing with the same code cannot both win (affectedRows tells which one did).
 */
export async function advanceTotpStep(db: Writer, id: number, step: number): Promise<boolean> {
  const result = await db.execute("UPDATE tfa SET counter = ? WHERE id = ? AND authmech = 'totp' AND counter < ?", [
    step,
    id,
    step,
  ]);
  return result.affectedRows === 1;
}

/** Every authenticator and recovery code of the user (a reset, as mailcow's "remove all TFA"). */
export async function deleteTwoFactor(tx: Tx, username: string): Promise<{ authenticators: number; codes: number }> {
  const tfa = await tx.execute('DELETE FROM tfa WHERE username = ?', [username]);
  const codes = await tx.execute('DELETE FROM postern_recovery_codes WHERE username = ?', [username]);
  return { authenticators: tfa.affectedRows, codes: codes.affectedRows };
}

export async function replaceRecoveryCodes(tx: Tx, username: string, codeHashes: readonly string[]): Promise<void> {
  await tx.execute('DELETE FROM postern_recovery_codes WHERE username = ?', [username]);
  for (const hash of codeHashes) {
    await tx.execute('INSERT INTO postern_recovery_codes (username, code_hash) VALUES (?, ?)', [username, hash]);
  }
}

/** Spend a code: true only for the one request that marks it used. */
export async function useRecoveryCode(db: Writer, username: string, codeHash: string): Promise<boolean> {
  const result = await db.execute(
    'UPDATE postern_recovery_codes SET used_at = NOW() WHERE username = ? AND code_hash = ? AND used_at IS NULL LIMIT 1',
    [username, codeHash],
  );
  return result.affectedRows === 1;
}

export async function countUnusedRecoveryCodes(db: Pick<Db, 'one'>, username: string): Promise<number> {
  const row = await db.one<{ n: number }>(
    'SELECT COUNT(*) AS n FROM postern_recovery_codes WHERE username = ? AND used_at IS NULL',
    [username],
  );
  return Number(row?.n ?? 0);
}

/**
 * Clear an admin's "your second factor was reset" flag (admin.attributes.tfa_reset_notice):
 * true only for the one request that cleared it, so the owner is told, and it is audited, once.
 */
export async function clearAdminResetNotice(db: Writer, username: string): Promise<boolean> {
  const result = await db.execute(
    `UPDATE admin SET attributes = JSON_SET(attributes, '$.tfa_reset_notice', 0)
     WHERE username = ? AND JSON_VALUE(attributes, '$.tfa_reset_notice') = 1`,
    [username],
  );
  return result.affectedRows === 1;
}

/**
 * Flag a mailbox whose second factor a superadmin reset, so its owner is told at the next portal
 * sign-in: a postern key in mailcow's mailbox.attributes JSON (mailcow keeps keys it does not know).
 */
export async function setMailboxResetNotice(db: Writer, username: string): Promise<void> {
  await db.execute(
    `UPDATE mailbox SET attributes = JSON_SET(COALESCE(attributes, '{}'), '$.tfa_reset_notice', '1') WHERE username = ?`,
    [username],
  );
}

/** Clear that flag: true only for the one request that cleared it (the owner is told once). */
export async function clearMailboxResetNotice(db: Writer, username: string): Promise<boolean> {
  const result = await db.execute(
    `UPDATE mailbox SET attributes = JSON_REMOVE(attributes, '$.tfa_reset_notice')
     WHERE username = ? AND JSON_VALUE(attributes, '$.tfa_reset_notice') = '1'`,
    [username],
  );
  return result.affectedRows === 1;
}
