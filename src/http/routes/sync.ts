// Admin API for the IdP sync under /api/v1/sync: run one now (optionally dry), list runs, show a
// run with its actions. Guarded by requireAdmin; a run respects the cross-replica lock (409).
import { Hono } from 'hono';
import { z } from 'zod';
import { auditSyncRun } from '../../audit/sync-audit.js';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { getSyncRun, listSyncRuns, type SyncRun, type SyncRunSummary } from '../../storage/sync-runs.js';
import type { SyncReport } from '../../sync/apply-sync.js';
import { type RunSyncOptions, type RunSyncResult, runSync } from '../../sync/run-sync.js';
import { requireAdminOf } from '../admin-auth.js';
import type { AdminSessionStore } from '../admin-session.js';
import { authorizeArea, type ChangeOrigin, changeOrigin, parseWith } from './admin-request.js';

const runBody = z.strictObject({
  dry_run: z.boolean().optional(),
  /** false: answer 202 with the run's id as soon as it has started (a large import takes minutes). */
  wait: z.boolean().optional(),
});
const listQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).default(20) });
const runId = z.coerce.number().int().positive();

export function createSyncRoutes(
  deps: Deps,
  options: { runOptions?: Partial<RunSyncOptions>; sessions?: AdminSessionStore } = {},
) {
  const app = new Hono();
  app.use('*', requireAdminOf(deps, options.sessions));
  // A run's actions name users of every domain: superadmins only.
  app.use('*', authorizeArea({ kind: 'sync' }));

  app.post('/runs', async (c) => {
    const text = await c.req.text();
    let json: unknown = {};
    if (text.trim() !== '') {
      try {
        json = JSON.parse(text);
      } catch {
        throw new AppError('bad_request', 'body is not valid JSON');
      }
    }
    const body = parseWith(runBody, json);
    const { run, started } = launchSyncRun(deps, changeOrigin(c), {
      ...options.runOptions,
      dryRun: body.dry_run ?? false,
    });
    if (body.wait === false) {
      const first = await firstOf(deps, { run, started });
      if ('id' in first) {
        c.header('location', `/api/v1/sync/runs/${first.id}`);
        return c.json({ id: first.id, status: 'running' }, 202);
      }
    }
    const result = await run;
    if (result.state === 'busy')
      throw new AppError('conflict', 'a sync is already running (on this or another replica)');
    if (result.state === 'disabled') throw new AppError('conflict', `sync is not enabled: ${result.reason}`);
    if (result.state === 'not_due') throw new AppError('internal', 'unexpected sync state');
    return c.json(renderReport(result.report), 200);
  });

  app.get('/runs', async (c) => {
    const query = parseWith(listQuery, c.req.query(), 'query');
    const runs = await listSyncRuns(deps.db, query.limit);
    return c.json({ runs: runs.map(renderSummary) });
  });

  app.get('/runs/:id', async (c) => {
    const id = parseWith(runId, c.req.param('id'), 'id');
    const run = await getSyncRun(deps.db, id);
    if (!run) throw new AppError('not_found', 'no such sync run');
    return c.json(renderRun(run));
  });

  return app;
}

/**
 * Starts a run (as the API and the console do): `started` resolves with the run's id once it
 * has its row; `run` with the result. A real run is audited as sync.run when it ends. Shutdown
 * ends the run between pages, recorded as such, even when nobody waits for it.
 */
export function launchSyncRun(
  deps: Deps,
  origin: ChangeOrigin,
  options: Partial<RunSyncOptions> & { dryRun: boolean },
): { run: Promise<RunSyncResult>; started: Promise<number> } {
  let onStarted: (runId: number) => void = () => undefined;
  const started = new Promise<number>((resolve) => {
    onStarted = resolve;
  });
  const run = runSync(deps, {
    ...options,
    triggeredBy: origin.actor.name,
    onStarted,
    signal: deps.background.signal,
  }).then(async (result) => {
    if (result.state === 'ran') {
      await auditSyncRun(deps.db, { actor: origin.actor, ip: origin.ip, report: result.report }).catch(
        (error: unknown) => deps.log.warn({ err: error }, 'audit write failed'),
      );
    }
    return result;
  });
  return { run, started };
}

/**
 * Whichever comes first: the run's row (then it goes on in the background), or an answer that
 * no run started (busy, disabled, or a fault before the row was written).
 */
export async function firstOf(
  deps: Pick<Deps, 'background'>,
  launched: { run: Promise<RunSyncResult>; started: Promise<number> },
): Promise<{ id: number } | { result: RunSyncResult }> {
  const first = await Promise.race([
    launched.started.then((id) => ({ id })),
    launched.run.then((result) => ({ result })),
  ]);
  if ('id' in first) deps.background.track(launched.run, `sync run ${first.id}`);
  return first;
}

function renderReport(report: SyncReport) {
  return {
    id: report.runId,
    status: report.status,
    dry_run: report.dryRun,
    ...(report.refused ? { refused: report.refused } : {}),
    counts: report.counts,
    errors: report.errors,
    duration_ms: report.durationMs,
  };
}

function renderSummary(run: SyncRunSummary) {
  return {
    id: run.id,
    started_at: run.startedAt.toISOString(),
    finished_at: run.finishedAt?.toISOString() ?? null,
    status: run.status,
    source: run.source,
    triggered_by: run.triggeredBy,
    dry_run: run.dryRun,
    counts: run.counts,
    errors: run.errors,
  };
}

function renderRun(run: SyncRun) {
  return { ...renderSummary(run), actions: run.actions, actions_truncated: run.actionsTruncated };
}
