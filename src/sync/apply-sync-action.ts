// One planned sync action carried out in its own transaction: create from a template, update
// from one, deactivate (remembering what to restore), reactivate, or drop the sync's marker.
import { AppError } from '../errors.js';
import type { Db } from '../storage/db.js';
import { lockSyncMailbox, writeMailboxState } from '../storage/sync-mailboxes.js';
import type { MailboxTemplate } from '../storage/templates.js';
import { applyTemplateToMailbox, createMailboxFromTemplate } from '../templates/apply-template.js';
import { DEPROVISION_MARKER, type SyncAction } from './plan-sync.js';
import type { ActionOutcome } from './sync-report.js';

/**
 * Execute one action in its own transaction. Rows are re-read FOR UPDATE and the action is
 * dropped ('skipped') when the mailbox changed since planning (another source, an admin, a login).
 * Per-mailbox SQL errors become 'failed'; an unreachable database aborts the run (thrown).
 */
export async function applySyncAction(
  db: Pick<Db, 'transaction'>,
  action: Exclude<SyncAction, { type: 'skip' }>,
  templates: ReadonlyMap<string, MailboxTemplate>,
): Promise<{ outcome: ActionOutcome; note?: string }> {
  try {
    return await db.transaction(async (tx) => {
      if (action.type === 'create') {
        const template = templates.get(action.template);
        if (!template) return { outcome: 'skipped', note: 'template_missing' };
        const created = await createMailboxFromTemplate(tx, {
          username: action.email,
          name: action.name,
          authSource: 'keycloak',
          template,
        });
        return created.ok ? { outcome: 'applied' } : { outcome: 'skipped', note: created.reason };
      }
      const row = await lockSyncMailbox(tx, action.email);
      if (!row) return { outcome: 'skipped', note: 'no_mailbox' };
      if (row.authsource !== 'keycloak') return { outcome: 'skipped', note: 'authsource_not_keycloak' };
      const { active, attributes } = row;
      const marker = attributes[DEPROVISION_MARKER];
      const writeState = (nextActive: number, nextAttributes: Record<string, unknown>) =>
        writeMailboxState(tx, row.username, nextActive, nextAttributes);

      switch (action.type) {
        case 'update': {
          const template = templates.get(action.template);
          if (!template) return { outcome: 'skipped', note: 'template_missing' };
          const result = await applyTemplateToMailbox(tx, {
            username: row.username,
            template,
            ...(action.name !== undefined ? { name: action.name } : {}),
          });
          return { outcome: result.changed ? 'applied' : 'unchanged' };
        }
        case 'deactivate': {
          if (active === 0) return { outcome: 'unchanged' };
          // The marker remembers what to restore (1, or 2 = mail only) and that sync did it.
          await writeState(0, { ...attributes, [DEPROVISION_MARKER]: String(active === 2 ? 2 : 1) });
          return { outcome: 'applied' };
        }
        case 'reactivate': {
          if (active !== 0 || marker === undefined) return { outcome: 'skipped', note: 'changed_since_planned' };
          const { [DEPROVISION_MARKER]: _dropped, ...rest } = attributes;
          await writeState(marker === '2' ? 2 : 1, rest);
          return { outcome: 'applied' };
        }
        case 'unmark': {
          if (marker === undefined) return { outcome: 'unchanged' };
          const { [DEPROVISION_MARKER]: _dropped, ...rest } = attributes;
          await writeState(active, rest);
          return { outcome: 'applied' };
        }
      }
    });
  } catch (error) {
    if (error instanceof AppError && error.code === 'backend_unavailable') throw error;
    return { outcome: 'failed', note: error instanceof Error ? error.message : String(error) };
  }
}
