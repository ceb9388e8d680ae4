// mailcow's identity_provider table: one row per setting (`key`, `value`), strings as mailcow
// stores them (secrets sealed by sources/secret-box.ts before they get here).
import type { Db, Tx } from './db.js';

/** identity_provider as stored (mailcow's strings; sealed or plain secrets included). */
export async function readIdpRows(db: Pick<Db, 'many'>): Promise<Record<string, string>> {
  const rows = await db.many<{ key: string; value: string }>('SELECT `key`, value FROM identity_provider');
  return Object.fromEntries(rows.map((row) => [row.key, row.value]));
}

/**
 * Write these keys (others, such as the other provider type's, are left as mailcow leaves them)
 * and drop mailcow's cached Keycloak service-account token, which a new configuration invalidates.
 */
export async function writeIdpRows(db: Pick<Db, 'transaction'>, rows: Record<string, string>): Promise<void> {
  await db.transaction(async (tx) => {
    for (const [key, value] of Object.entries(rows)) {
      await tx.execute(
        'INSERT INTO identity_provider (`key`, value, created, modified) VALUES (?, ?, NOW(), NOW()) ON DUPLICATE KEY UPDATE value = VALUES(value), modified = NOW()',
        [key, value],
      );
    }
    await tx.execute("DELETE FROM identity_provider WHERE `key` = 'access_token'");
  });
}

/** mailcow's delete: every key goes, old provider types' leftovers included. */
export async function deleteIdpRows(db: Pick<Tx, 'execute'>): Promise<number> {
  const { affectedRows } = await db.execute('DELETE FROM identity_provider');
  return affectedRows;
}
