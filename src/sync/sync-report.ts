// What a sync run tells: the tally of its actions (counts, the first errors, the stored actions)
// and its lines in mailcow's CRON_LOG, in mailcow's wording where it has one (keycloak-sync.php,
// reference/mailcow-compat.md §6). applySync decides; this file only counts and words it.
import { MAX_STORED_ACTIONS } from '../storage/sync-runs.js';
import type { CronLog } from './cron-log.js';
import type { SyncAction } from './plan-sync.js';

export type ActionOutcome = 'applied' | 'planned' | 'unchanged' | 'skipped' | 'failed';

/** An action as stored with the run and returned by the API. */
export type RecordedAction = SyncAction & { outcome: ActionOutcome; note?: string };

export interface SyncCounts {
  users: number;
  pages: number;
  created: number;
  updated: number;
  deactivated: number;
  reactivated: number;
  unmarked: number;
  skipped: number;
  failed: number;
  [key: string]: number;
}

export interface SyncReport {
  runId: number;
  status: 'succeeded' | 'partial' | 'failed';
  dryRun: boolean;
  /** Why the run applied nothing (empty listing, suspicious drop). */
  refused?: string;
  counts: SyncCounts;
  errors: string[];
  durationMs: number;
}

const MAX_ERRORS = 100;

export interface SyncTally {
  readonly counts: SyncCounts;
  readonly errors: string[];
  /** The first MAX_STORED_ACTIONS (+1) actions, for postern_sync_runs. */
  readonly stored: RecordedAction[];
  /** Every action recorded, stored or not. */
  readonly actionsTotal: number;
  /** Count one action's outcome and queue its CRON_LOG line. */
  record(action: SyncAction, outcome: ActionOutcome, note?: string): void;
  /** The run was refused; `partlyApplied` when creates/updates were already written. */
  refused(reason: string, partlyApplied: boolean): void;
  /** The run stopped on a fault. */
  failed(message: string): void;
  /** The closing lines (omitted entries, summary, mailcow's "DONE!"); flush the log after. */
  finish(runId: number): void;
}

/** `dryRun` prefixes every CRON_LOG line with "[dry run] ". */
export function createSyncTally(cronLog: CronLog, dryRun: boolean): SyncTally {
  const prefix = dryRun ? '[dry run] ' : '';
  const counts: SyncCounts = {
    users: 0,
    pages: 0,
    created: 0,
    updated: 0,
    deactivated: 0,
    reactivated: 0,
    unmarked: 0,
    skipped: 0,
    failed: 0,
  };
  const errors: string[] = [];
  const stored: RecordedAction[] = [];
  let actionsTotal = 0;
  return {
    counts,
    errors,
    stored,
    get actionsTotal() {
      return actionsTotal;
    },
    record(action, outcome, note) {
      actionsTotal++;
      if (stored.length <= MAX_STORED_ACTIONS) stored.push({ ...action, outcome, ...(note ? { note } : {}) });
      if (outcome === 'failed') {
        counts.failed++;
        if (errors.length < MAX_ERRORS)
          errors.push(`${'email' in action ? action.email : action.username}: ${note ?? 'failed'}`);
      } else if (action.type === 'skip' || outcome === 'skipped') counts.skipped++;
      else if (outcome === 'applied' || outcome === 'planned') {
        const key = {
          create: 'created',
          update: 'updated',
          deactivate: 'deactivated',
          reactivate: 'reactivated',
          unmark: 'unmarked',
        }[action.type];
        counts[key] = (counts[key] ?? 0) + 1;
      }
      logAction(cronLog, prefix, action, outcome, note);
    },
    refused(reason, partlyApplied) {
      errors.unshift(`refused: ${reason}`);
      cronLog.add('err', `${prefix}Sync refused, ${partlyApplied ? 'no deactivation' : 'nothing'} applied: ${reason}`);
    },
    failed(message) {
      errors.unshift(message);
      cronLog.add('err', `${prefix}${message}`);
    },
    finish(runId) {
      if (cronLog.omitted > 0)
        cronLog.add(
          'warning',
          `${prefix}${cronLog.omitted} more per-user entries omitted; see postern sync run ${runId}`,
        );
      cronLog.add('info', `${prefix}${summaryOf(counts)}`);
      // mailcow ends every run with an info "DONE!"; a failure has its own err line above.
      cronLog.add('info', `${prefix}DONE!`);
    },
  };
}

function summaryOf(counts: SyncCounts): string {
  return `Synced ${counts.users} users: ${counts.created} created, ${counts.updated} updated, ${counts.deactivated} deactivated, ${counts.reactivated} reactivated, ${counts.skipped} skipped, ${counts.failed} failed`;
}

/** mailcow's wording where it has one (keycloak-sync.php); postern's own actions say what they do. */
function logAction(cronLog: CronLog, prefix: string, action: SyncAction, outcome: ActionOutcome, note?: string) {
  const perUser = { perUser: true };
  if (outcome === 'unchanged') return;
  switch (action.type) {
    case 'create':
      if (outcome === 'failed') cronLog.add('err', `${prefix}Could not create user ${action.email}`, perUser);
      else if (outcome === 'skipped')
        cronLog.add('warning', `${prefix}Skipping user ${action.email} (${note ?? 'skipped'})`, perUser);
      else cronLog.add('info', `${prefix}Creating user ${action.email}`, perUser);
      return;
    case 'update':
      if (outcome === 'failed')
        cronLog.add('err', `${prefix}Could not sync attributes for user ${action.email}`, perUser);
      else if (outcome === 'skipped')
        cronLog.add('warning', `${prefix}Skipping user ${action.email} (${note ?? 'skipped'})`, perUser);
      else cronLog.add('info', `${prefix}Syncing attributes for user ${action.email}`, perUser);
      return;
    case 'deactivate':
      if (outcome === 'skipped' && note === 'still_in_keycloak')
        cronLog.add(
          'warning',
          `${prefix}Not deactivating user ${action.email}: the listing missed it, but Keycloak still has it (users changed during the run)`,
          perUser,
        );
      else if (outcome === 'applied' || outcome === 'planned') {
        const why = action.why === 'disabled_upstream' ? 'disabled in Keycloak' : 'no longer in Keycloak';
        cronLog.add('warning', `${prefix}Deactivating user ${action.email} (${why})`, perUser);
      } else if (outcome === 'failed')
        cronLog.add('err', `${prefix}Could not deactivate user ${action.email}`, perUser);
      return;
    case 'reactivate':
      if (outcome === 'applied' || outcome === 'planned')
        cronLog.add('info', `${prefix}Reactivating user ${action.email}`, perUser);
      else if (outcome === 'failed') cronLog.add('err', `${prefix}Could not reactivate user ${action.email}`, perUser);
      return;
    case 'unmark':
      return;
    case 'skip': {
      const who = action.email ?? action.username;
      if (action.why === 'no_template')
        cronLog.add('warning', `${prefix}No matching attribute mapping found for user ${who}`, perUser);
      else cronLog.add('warning', `${prefix}Skipping user ${who} (${action.why.replace(/_/g, ' ')})`, perUser);
      return;
    }
  }
}
