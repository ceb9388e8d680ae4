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
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { KeycloakAdminClient } from '../sources/keycloak-admin.js';
import type { Db } from '../storage/db.js';
import { type MailboxAuthSource, parseAttributes } from '../storage/mailboxes.js';
import { failAbandonedSyncRuns, finishSyncRun, MAX_STORED_ACTIONS, startSyncRun } from '../storage/sync-runs.js';
import { listMailboxTemplates, type MailboxTemplate } from '../storage/templates.js';
import { applyTemplateToMailbox, createMailboxFromTemplate, templateHash } from '../templates/apply-template.js';
import { type CronLog, createCronLog } from './cron-log.js';
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
}

const SOURCE = 'keycloak';
const END_SCAN_BATCH = 1_000;
const MAX_ERRORS = 100;

export async function applySync(deps: ApplySyncDeps, options: ApplySyncOptions): Promise<SyncReport> {
  const startedAt = Date.now();
  const { db, log } = deps;
  const { settings, dryRun } = options;
  const runId = await startSyncRun(db, { source: SOURCE, triggeredBy: options.triggeredBy, dryRun });
  options.onStarted?.(runId);
  const abandoned = await failAbandonedSyncRuns(db, SOURCE, runId);
  if (abandoned > 0) log.warn({ runs: abandoned }, 'closed sync runs left running by a stopped process');

  const cronLog = createCronLog(deps.redis, { ...(options.cronLogKey ? { key: options.cronLogKey } : {}), log });
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
  let refused: string | undefined;
  let status: SyncReport['status'] = 'succeeded';

  const record = (action: SyncAction, outcome: ActionOutcome, note?: string) => {
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
  };

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
      errors.unshift(`refused: ${refused}`);
      // Only a listing that changed between the safety pass and the main pass can get here with
      // creates/updates already applied; then it is the deactivations that were refused.
      const partlyApplied = !dryRun && counts.created + counts.updated > 0;
      cronLog.add('err', `${prefix}Sync refused, ${partlyApplied ? 'no deactivation' : 'nothing'} applied: ${refused}`);
    } else if (counts.failed > 0) status = 'partial';
  } catch (error) {
    status = 'failed';
    const message = error instanceof Error ? error.message : String(error);
    errors.unshift(message);
    cronLog.add('err', `${prefix}${message}`);
    log.warn({ err: error, runId }, 'sync run failed');
  }

  if (cronLog.omitted > 0)
    cronLog.add('warning', `${prefix}${cronLog.omitted} more per-user entries omitted; see postern sync run ${runId}`);
  cronLog.add('info', `${prefix}${summaryOf(counts)}`);
  // mailcow ends every run with an info "DONE!"; a failure has its own err line above.
  cronLog.add('info', `${prefix}DONE!`);
  await cronLog.flush();

  const finalCounts = { ...counts, actions_total: actionsTotal };
  await finishSyncRun(db, runId, { status, counts: finalCounts, errors, actions: stored }).catch((error: unknown) => {
    log.error({ err: error, runId }, 'could not record the end of a sync run');
  });
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

/** mailcow's template names are not unique; the first one wins, as in mailcow. */
function firstByName(templates: MailboxTemplate[]): Map<string, MailboxTemplate> {
  const byName = new Map<string, MailboxTemplate>();
  for (const template of templates) if (!byName.has(template.name)) byName.set(template.name, template);
  return byName;
}

interface MailboxRow {
  username: string;
  name: string | null;
  active: number;
  authsource: string | null;
  attributes: unknown;
  [key: string]: unknown;
}

function toMailboxState(row: MailboxRow): MailboxState {
  const attributes = parseAttributes(row.attributes);
  const marker = attributes[DEPROVISION_MARKER];
  const hash = attributes.attribute_hash;
  return {
    username: foldAddress(row.username),
    name: row.name ?? '',
    active: Number(row.active),
    authSource: (row.authsource ?? null) as MailboxAuthSource | null,
    attributeHash: typeof hash === 'string' && hash !== '' ? hash : undefined,
    deprovisionedFrom:
      marker === '2' ? 2 : marker === undefined || marker === null || marker === '' || marker === '0' ? undefined : 1,
  };
}

const MAILBOX_COLUMNS = 'username, name, active, authsource, attributes';

async function loadMailboxes(db: Db, emails: string[]): Promise<Map<string, MailboxState>> {
  if (emails.length === 0) return new Map();
  const rows = await db.many<MailboxRow>(
    `SELECT ${MAILBOX_COLUMNS} FROM mailbox WHERE username IN (${emails.map(() => '?').join(', ')})`,
    emails,
  );
  // The IN list matches under the column's collation (mailcow's equates é with e): keep only the
  // rows whose name is exactly one of the listed (folded) emails.
  const wanted = new Set(emails);
  const exact = rows.filter((row) => wanted.has(row.username));
  return new Map(exact.map((row) => [foldAddress(row.username), toMailboxState(row)]));
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
    const rows = await db.many<{ domain: string; active: number }>(
      `SELECT domain, active FROM domain WHERE domain IN (${missing.map(() => '?').join(', ')})`,
      missing,
    );
    for (const domain of missing) cache.set(domain, null);
    // Exact names only (the IN list matched under the collation, which equates é with e).
    const asked = new Set(missing);
    for (const row of rows) if (asked.has(row.domain)) cache.set(row.domain, Number(row.active) === 1);
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
    const rows = await db.many<MailboxRow>(
      `SELECT ${MAILBOX_COLUMNS} FROM mailbox WHERE authsource = 'keycloak' AND username > ? ORDER BY username LIMIT ${END_SCAN_BATCH}`,
      [after],
    );
    const batch = rows.map(toMailboxState);
    totals.idpMailboxes += batch.length;
    totals.activeIdpMailboxes += batch.filter((mailbox) => mailbox.active !== 0).length;
    actions.push(...planDirectoryEnd(batch, seen, settings));
    if (rows.length < END_SCAN_BATCH) break;
    after = (rows[rows.length - 1] as MailboxRow).username;
  }
  return { actions, totals, deactivations: actions.filter((action) => action.type === 'deactivate').length };
}

async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Execute one action in its own transaction. Rows are re-read FOR UPDATE and the action is
 * dropped ('skipped') when the mailbox changed since planning (another source, an admin, a login).
 * Per-mailbox SQL errors become 'failed'; an unreachable database aborts the run (thrown).
 */
export async function applySyncAction(
  db: Db,
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
      const row = await tx.one<MailboxRow>(
        `SELECT ${MAILBOX_COLUMNS} FROM mailbox WHERE username = ? AND BINARY username = ? FOR UPDATE`,
        [action.email, action.email],
      );
      if (!row) return { outcome: 'skipped', note: 'no_mailbox' };
      if (row.authsource !== 'keycloak') return { outcome: 'skipped', note: 'authsource_not_keycloak' };
      const active = Number(row.active);
      const attributes = parseAttributes(row.attributes);
      const marker = attributes[DEPROVISION_MARKER];
      const writeState = (nextActive: number, nextAttributes: Record<string, unknown>) =>
        tx.execute(
          'UPDATE mailbox SET active = ?, attributes = ?, modified = NOW() WHERE username = ? AND BINARY username = ?',
          [nextActive, JSON.stringify(nextAttributes), row.username, row.username],
        );

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
