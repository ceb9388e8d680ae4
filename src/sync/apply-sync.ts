// Runs one directory sync: streams the listing page by page through planSync's pieces and
// executes each action (every mailbox change in its own transaction), or only reports it (dry
// run). Records the run in postern_sync_runs and in mailcow's CRON_LOG. Reads no settings and
// takes no lock: call it under the sync lock, as run-sync.ts does (it closes abandoned runs).
//
// Order of a real run, so that a refused run applies nothing:
// 1. with deprovisioning on, a first pass over the listing (brief representation) computes
//    the deactivations and the safety verdict before anything is written;
// 2. the main pass plans and applies creates/updates per page (never destructive);
// 3. the end phase scans the Keycloak mailboxes against the seen emails, re-checks safety on
//    this pass's own numbers, then deactivates / reactivates. Each deactivation is confirmed
//    first by asking Keycloak for that email: its paging has no snapshot, so a user deleted
//    between two page requests pushes another one out of the listing, and one listing's
//    silence is no evidence that a user is gone.
// A listing that fails half-way (Keycloak error, lock lost) never reaches step 3, so a partial
// listing can never deactivate anyone.
import { foldAddress } from '../address.js';
import type { Redis } from '../cache/redis.js';
import { forEachLimited } from '../concurrency.js';
import type { Logger } from '../log.js';
import type { KeycloakAdminClient } from '../sources/keycloak-admin.js';
import type { Db } from '../storage/db.js';
import type { MailboxAuthSource } from '../storage/mailboxes.js';
import {
  findDomainStates,
  findSyncMailboxes,
  listSourceMailboxesAfter,
  type SyncMailboxRow,
} from '../storage/sync-mailboxes.js';
import { failAbandonedSyncRuns, finishSyncRun, startSyncRun } from '../storage/sync-runs.js';
import { listMailboxTemplates, type MailboxTemplate } from '../storage/templates.js';
import { templateHash } from '../templates/apply-template.js';
import { applySyncAction } from './apply-sync-action.js';
import { createCronLog } from './cron-log.js';
import {
  DEPROVISION_MARKER,
  type DirectoryUser,
  domainOf,
  emailOf,
  type MailboxState,
  planDirectoryEnd,
  planPage,
  refusalFor,
  type SeenUser,
  type SyncAction,
  type SyncSettings,
} from './plan-sync.js';
import { createSyncTally, type SyncCounts, type SyncReport } from './sync-report.js';

export type { ActionOutcome, RecordedAction, SyncCounts, SyncReport } from './sync-report.js';

export interface ApplySyncDeps {
  db: Db;
  redis: Redis;
  log: Logger;
}

export interface ApplySyncOptions {
  client: Pick<KeycloakAdminClient, 'listUserPages' | 'findUsersByEmail'>;
  settings: SyncSettings;
  dryRun: boolean;
  triggeredBy: string;
  /** Aborts the run between pages (lock lost, shutdown). */
  signal?: AbortSignal;
  /** Tests use a private list; production writes mailcow's CRON_LOG. */
  cronLogKey?: string;
  /** Mailbox changes in flight at once within a page (each its own transaction). */
  concurrency?: number;
  /** Called once the run has its postern_sync_runs row (an API caller that does not wait gets the id). */
  onStarted?: (runId: number) => void;
  /** Called with the counts so far after each listing page of the main pass (live progress). */
  onProgress?: (counts: Readonly<SyncCounts>) => void;
}

const SOURCE = 'keycloak';
const END_SCAN_BATCH = 1_000;

export async function applySync(deps: ApplySyncDeps, options: ApplySyncOptions): Promise<SyncReport> {
  const startedAt = Date.now();
  const { db, log } = deps;
  const { settings, dryRun } = options;
  const runId = await startSyncRun(db, { source: SOURCE, triggeredBy: options.triggeredBy, dryRun });
  options.onStarted?.(runId);
  const abandoned = await failAbandonedSyncRuns(db, SOURCE, runId);
  if (abandoned > 0) log.warn({ runs: abandoned }, 'closed sync runs left running by a stopped process');

  const cronLog = createCronLog(deps.redis, { ...(options.cronLogKey ? { key: options.cronLogKey } : {}), log });
  const tally = createSyncTally(cronLog, dryRun);
  const { counts, errors } = tally;
  const record = tally.record;
  let refused: string | undefined;
  let status: SyncReport['status'] = 'succeeded';
  try {
    const templates = firstByName(await listMailboxTemplates(db));
    const templateHashes = new Map([...templates].map(([name, template]) => [name, { hash: templateHash(template) }]));

    // 1. Safety first: with deprovisioning on, know the verdict before writing anything.
    if (!dryRun && settings.deprovision) {
      const seen = new Map<string, Pick<SeenUser, 'enabled'>>();
      let listed = 0;
      for await (const page of options.client.listUserPages({
        briefRepresentation: true,
        ...signalOpt(options.signal),
      })) {
        listed += page.length;
        for (const user of page) {
          const email = emailOf(user);
          if (email && !seen.has(email)) seen.set(email, { enabled: user.enabled });
        }
      }
      const end = await planEnd(db, seen, settings);
      refused = refusalFor({
        ...end.totals,
        listedUsers: listed,
        deactivations: end.deactivations,
        maxDropPercent: settings.maxDropPercent,
      });
      if (refused) counts.users = listed;
    }

    if (!refused) {
      // 2. Main pass: creates and updates, page by page.
      const seen = new Map<string, SeenUser>();
      const domainCache = new Map<string, boolean | null>();
      for await (const page of options.client.listUserPages({
        briefRepresentation: false,
        ...signalOpt(options.signal),
      })) {
        counts.pages++;
        counts.users += page.length;
        const emails = [...new Set(page.map(emailOf).filter((email): email is string => email !== undefined))];
        const mailboxes = await loadMailboxes(db, emails);
        const domains = await loadDomains(
          db,
          emails.filter((email) => !mailboxes.has(email)),
          domainCache,
        );
        const planned = planPage(
          page as DirectoryUser[],
          mailboxes,
          { settings, templates: templateHashes, domains },
          seen,
        );
        for (const [email, user] of planned.seen) seen.set(email, user);
        await forEachLimited(planned.actions, options.concurrency ?? 4, async (action) => {
          if (action.type === 'skip') return record(action, 'skipped');
          if (dryRun) return record(action, 'planned');
          const result = await applySyncAction(db, action, templates);
          record(action, result.outcome, result.note);
        });
        await cronLog.flush();
        options.onProgress?.(counts);
      }
      options.signal?.throwIfAborted();

      // 3. End phase: deactivations and reactivations against the complete listing.
      const end = await planEnd(db, seen, settings);
      refused = refusalFor({
        ...end.totals,
        listedUsers: counts.users,
        deactivations: end.deactivations,
        maxDropPercent: settings.maxDropPercent,
      });
      if (!refused) {
        for (const planned of end.actions) {
          options.signal?.throwIfAborted();
          const action =
            planned.type === 'deactivate'
              ? await confirmDeactivation(options.client, planned, options.signal)
              : planned;
          if ('stillThere' in action) record(action.planned, 'skipped', 'still_in_keycloak');
          else if (action.type === 'skip') record(action, 'skipped');
          else if (dryRun) record(action, 'planned');
          else {
            const result = await applySyncAction(db, action, templates);
            record(action, result.outcome, result.note);
          }
        }
      }
    }
    if (refused) {
      status = 'failed';
      // Only a listing that changed between the safety pass and the main pass can get here with
      // creates/updates already applied; then it is the deactivations that were refused.
      tally.refused(refused, !dryRun && counts.created + counts.updated > 0);
    } else if (counts.failed > 0) status = 'partial';
  } catch (error) {
    status = 'failed';
    tally.failed(error instanceof Error ? error.message : String(error));
    log.warn({ err: error, runId }, 'sync run failed');
  }

  tally.finish(runId);
  await cronLog.flush();

  const finalCounts = { ...counts, actions_total: tally.actionsTotal };
  await finishSyncRun(db, runId, { status, counts: finalCounts, errors, actions: tally.stored }).catch(
    (error: unknown) => {
      log.error({ err: error, runId }, 'could not record the end of a sync run');
    },
  );
  const report: SyncReport = {
    runId,
    status,
    dryRun,
    ...(refused ? { refused } : {}),
    counts: finalCounts,
    errors,
    durationMs: Date.now() - startedAt,
  };
  log.info({ runId, status, dryRun, counts: finalCounts, durationMs: report.durationMs }, 'sync run finished');
  return report;
}

/**
 * Ask Keycloak about a mailbox the listing says is gone or disabled, right before acting on it:
 * still there and enabled → no deactivation; there but disabled → deactivate as disabled; no
 * user with that email → really gone. A Keycloak fault throws and ends the run (nothing more
 * is deactivated).
 */
async function confirmDeactivation(
  client: Pick<KeycloakAdminClient, 'findUsersByEmail'>,
  action: Extract<SyncAction, { type: 'deactivate' }>,
  signal: AbortSignal | undefined,
): Promise<Extract<SyncAction, { type: 'deactivate' }> | { stillThere: true; planned: SyncAction }> {
  const users = await client.findUsersByEmail(action.email, { briefRepresentation: true, ...signalOpt(signal) });
  if (users.some((user) => user.enabled)) return { stillThere: true, planned: action };
  const why = users.length > 0 ? 'disabled_upstream' : 'gone_upstream';
  return why === action.why ? action : { ...action, why };
}

function signalOpt(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}

/** mailcow's template names are not unique; the first one wins, as in mailcow. */
function firstByName(templates: MailboxTemplate[]): Map<string, MailboxTemplate> {
  const byName = new Map<string, MailboxTemplate>();
  for (const template of templates) if (!byName.has(template.name)) byName.set(template.name, template);
  return byName;
}

function toMailboxState(row: SyncMailboxRow): MailboxState {
  const marker = row.attributes[DEPROVISION_MARKER];
  const hash = row.attributes.attribute_hash;
  return {
    username: foldAddress(row.username),
    name: row.name ?? '',
    active: row.active,
    authSource: row.authsource as MailboxAuthSource | null,
    attributeHash: typeof hash === 'string' && hash !== '' ? hash : undefined,
    deprovisionedFrom:
      marker === '2' ? 2 : marker === undefined || marker === null || marker === '' || marker === '0' ? undefined : 1,
  };
}

async function loadMailboxes(db: Db, emails: string[]): Promise<Map<string, MailboxState>> {
  const rows = await findSyncMailboxes(db, emails);
  return new Map(rows.map((row) => [foldAddress(row.username), toMailboxState(row)]));
}

/**
 * Domains of addresses that may be created. Cached per run, unknown domains too (null), so a
 * realm full of foreign domains costs at most one query per page; the cache is bounded.
 */
async function loadDomains(
  db: Db,
  emails: string[],
  cache: Map<string, boolean | null>,
): Promise<Map<string, { active: boolean }>> {
  const wanted = [...new Set(emails.map(domainOf).filter((domain): domain is string => domain !== undefined))];
  const missing = wanted.filter((domain) => !cache.has(domain));
  if (missing.length > 0) {
    if (cache.size > 10_000) cache.clear();
    const rows = await findDomainStates(db, missing);
    for (const domain of missing) cache.set(domain, null);
    for (const row of rows) cache.set(row.domain, row.active);
  }
  const result = new Map<string, { active: boolean }>();
  for (const domain of wanted) {
    const active = cache.get(domain);
    if (active !== null && active !== undefined) result.set(domain, { active });
  }
  return result;
}

/** Scan every Keycloak mailbox (keyset batches, so memory holds one batch) against the seen emails. */
async function planEnd(db: Db, seen: ReadonlyMap<string, Pick<SeenUser, 'enabled'>>, settings: SyncSettings) {
  const actions: SyncAction[] = [];
  const totals = { idpMailboxes: 0, activeIdpMailboxes: 0 };
  let after = '';
  for (;;) {
    const rows = await listSourceMailboxesAfter(db, SOURCE, after, END_SCAN_BATCH);
    const batch = rows.map(toMailboxState);
    totals.idpMailboxes += batch.length;
    totals.activeIdpMailboxes += batch.filter((mailbox) => mailbox.active !== 0).length;
    actions.push(...planDirectoryEnd(batch, seen, settings));
    if (rows.length < END_SCAN_BATCH) break;
    after = (rows[rows.length - 1] as SyncMailboxRow).username;
  }
  return { actions, totals, deactivations: actions.filter((action) => action.type === 'deactivate').length };
}
