// Rows of postern_sync_runs: one per IdP sync (cron or admin, real or dry run). A run is
// inserted 'running' and finished once; rows a dead process left 'running' are closed as
// failed by the next run that holds the sync lock.
import type { Db } from './db.js';
import { parseAttributes } from './mailboxes.js';

export type SyncRunStatus = 'running' | 'succeeded' | 'partial' | 'failed';

/** Actions stored per run; the counts always cover all of them. */
export const MAX_STORED_ACTIONS = 5_000;

export interface SyncRunSummary {
  id: number;
  startedAt: Date;
  finishedAt: Date | null;
  status: SyncRunStatus;
  source: string;
  triggeredBy: string;
  dryRun: boolean;
  counts: Record<string, number>;
  errors: string[];
}

export interface SyncRun extends SyncRunSummary {
  actions: unknown[];
  /** More actions happened than are stored (see counts for totals). */
  actionsTruncated: boolean;
}

interface SyncRunRow {
  id: number;
  started_at: Date;
  finished_at: Date | null;
  status: SyncRunStatus;
  source: string;
  triggered_by: string;
  dry_run: number;
  counts: unknown;
  errors: unknown;
  actions?: unknown;
  [key: string]: unknown;
}

const SUMMARY_COLUMNS = 'id, started_at, finished_at, status, source, triggered_by, dry_run, counts, errors';

function parseArray(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (typeof value !== 'string' && !Buffer.isBuffer(value)) return [];
  try {
    const parsed: unknown = JSON.parse(value.toString());
    return Array.isArray(parsed) ? parsed : [];
  } catch {
    return [];
  }
}

function toSummary(row: SyncRunRow): SyncRunSummary {
  const counts = Object.fromEntries(
    Object.entries(parseAttributes(row.counts)).filter(
      (entry): entry is [string, number] => typeof entry[1] === 'number',
    ),
  );
  return {
    id: Number(row.id),
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    status: row.status,
    source: row.source,
    triggeredBy: row.triggered_by,
    dryRun: Number(row.dry_run) === 1,
    counts,
    errors: parseArray(row.errors).map(String),
  };
}

export async function startSyncRun(
  db: Pick<Db, 'execute'>,
  input: { source: string; triggeredBy: string; dryRun: boolean },
): Promise<number> {
  const { insertId } = await db.execute(
    "INSERT INTO postern_sync_runs (status, source, triggered_by, dry_run) VALUES ('running', ?, ?, ?)",
    [input.source, input.triggeredBy.slice(0, 255), input.dryRun ? 1 : 0],
  );
  return insertId;
}

export async function finishSyncRun(
  db: Pick<Db, 'execute'>,
  id: number,
  result: {
    status: Exclude<SyncRunStatus, 'running'>;
    counts: Record<string, number>;
    errors: string[];
    actions: unknown[];
  },
): Promise<void> {
  const truncated = result.actions.length > MAX_STORED_ACTIONS;
  const counts = {
    ...result.counts,
    actions_stored: Math.min(result.actions.length, MAX_STORED_ACTIONS),
    actions_truncated: truncated ? 1 : 0,
  };
  await db.execute(
    'UPDATE postern_sync_runs SET finished_at = CURRENT_TIMESTAMP(3), status = ?, counts = ?, errors = ?, actions = ? WHERE id = ?',
    [
      result.status,
      JSON.stringify(counts),
      JSON.stringify(result.errors.slice(0, 100)),
      JSON.stringify(truncated ? result.actions.slice(0, MAX_STORED_ACTIONS) : result.actions),
      id,
    ],
  );
}

/**
 * Mark runs a dead process left 'running' as failed (call only while holding the sync lock).
 * finished_at stays NULL: they never finished, and must not delay the next interval.
 */
export async function failAbandonedSyncRuns(
  db: Pick<Db, 'execute'>,
  source: string,
  beforeId: number,
): Promise<number> {
  const { affectedRows } = await db.execute(
    `UPDATE postern_sync_runs SET status = 'failed',
            errors = JSON_ARRAY('abandoned: the process running this sync stopped before it finished')
      WHERE status = 'running' AND source = ? AND id < ?`,
    [source, beforeId],
  );
  return affectedRows;
}

export async function listSyncRuns(db: Pick<Db, 'many'>, limit: number): Promise<SyncRunSummary[]> {
  const rows = await db.many<SyncRunRow>(
    `SELECT ${SUMMARY_COLUMNS} FROM postern_sync_runs ORDER BY id DESC LIMIT ${Math.max(1, Math.min(500, Math.floor(limit)))}`,
  );
  return rows.map(toSummary);
}

export async function getSyncRun(db: Pick<Db, 'one'>, id: number): Promise<SyncRun | undefined> {
  const row = await db.one<SyncRunRow>(`SELECT ${SUMMARY_COLUMNS}, actions FROM postern_sync_runs WHERE id = ?`, [id]);
  if (!row) return undefined;
  const summary = toSummary(row);
  return { ...summary, actions: parseArray(row.actions), actionsTruncated: summary.counts.actions_truncated === 1 };
}

/** When the last real (not dry) run of `source` finished, whatever its status. */
export async function lastFinishedSyncRunAt(db: Pick<Db, 'one'>, source: string): Promise<Date | undefined> {
  const row = await db.one<{ finished_at: Date | null }>(
    'SELECT MAX(finished_at) AS finished_at FROM postern_sync_runs WHERE source = ? AND dry_run = 0 AND finished_at IS NOT NULL',
    [source],
  );
  return row?.finished_at ?? undefined;
}
