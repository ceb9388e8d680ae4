// One audit row per sync run that changed (or tried to change) mailboxes: who started it (an
// admin or key through the API, or the scheduler), its status and the counts of what it did. The
// run's every action stays in postern_sync_runs (GET /api/v1/sync/runs/:id); the trail gets the
// summary, so a 50,000-user import is one row, not 50,000. Dry runs change nothing: no row.
import type { AuditActorRef } from '../storage/audit.js';
import { recordAudit } from '../storage/audit.js';
import type { Db } from '../storage/db.js';
import type { SyncReport } from '../sync/sync-report.js';

export const SCHEDULER_ACTOR: AuditActorRef = { kind: 'system', name: 'scheduler' };

/** The counts worth a line in the trail (the rest is in the run's own record). */
const SUMMARISED = ['users', 'created', 'updated', 'deactivated', 'reactivated', 'unmarked', 'skipped', 'failed'];

export async function auditSyncRun(
  db: Pick<Db, 'execute'>,
  input: { actor: AuditActorRef; ip?: string | undefined; report: SyncReport },
): Promise<void> {
  const { report } = input;
  if (report.dryRun) return;
  const counts = Object.fromEntries(SUMMARISED.map((key) => [key, report.counts[key] ?? 0]));
  await recordAudit(db, {
    actor: input.actor,
    action: 'sync.run',
    outcome: report.status === 'failed' ? 'failure' : 'success',
    target: `sync_run:${report.runId}`,
    detail: {
      status: report.status,
      counts,
      errors: report.errors.length,
      duration_ms: report.durationMs,
      ...(report.refused ? { refused: report.refused.slice(0, 200) } : {}),
    },
    ...(input.ip ? { ip: input.ip } : {}),
  });
}
