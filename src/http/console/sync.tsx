// /admin/sync: the sync settings (saved into the IdP settings through the API's use-case),
// "run now" and "dry run" (started like POST /api/v1/sync/runs with wait=false, then the run's
// page), the history of runs with filters, and one run: live counts while it runs (from Redis,
// sync-progress.ts; polled by a small script, refresh link without it) and its actions with
// their reasons, filterable. Superadmins only (can(): sync).
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { readSyncProgress } from '../../admin/sync-progress.js';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { getSyncRun, listSyncRuns } from '../../storage/sync-runs.js';
import { describeProvider, saveIdentityProvider } from '../routes/admin-identity-provider.js';
import { changeOrigin } from '../routes/admin-request.js';
import { firstOf, launchSyncRun } from '../routes/sync.js';
import { SYNC_FIELDS } from '../views/console-idp.js';
import { ACTION_TYPES, OUTCOMES, PROGRESS_SCRIPT, SyncPage, SyncRunPage } from '../views/console-sync.js';
import { authorizePage, checked } from './context.js';
import { renderPage } from './page.js';

const SECTION = '/admin/sync';
const HISTORY_LIMIT = 200;
const SHOWN_ACTIONS = 1_000;

const historyFilter = z.object({
  status: z.enum(['', 'running', 'succeeded', 'partial', 'failed']).catch(''),
  kind: z.enum(['', 'real', 'dry']).catch(''),
});
const actionFilter = z.object({
  type: z.enum(['', ...ACTION_TYPES]).catch(''),
  outcome: z.enum(['', ...OUTCOMES]).catch(''),
  q: z.string().max(320).catch(''),
});
const runIdSchema = z.coerce
  .number()
  .int()
  .positive()
  .max(2 ** 53);

export function createConsoleSync(deps: Deps) {
  const app = new Hono();
  const progressDeps = { redis: deps.redis, redisPrefix: deps.config.redisPrefix };

  async function showSync(
    c: Context,
    extra: { problem?: string; errors?: Record<string, string>; status?: number } = {},
  ) {
    const filter = historyFilter.parse(c.req.query());
    const current = await describeProvider(deps);
    const runs = (await listSyncRuns(deps.db, HISTORY_LIMIT)).filter(
      (run) =>
        (!filter.status || run.status === filter.status) && (!filter.kind || run.dryRun === (filter.kind === 'dry')),
    );
    const settings = current.settings?.authsource === 'keycloak' ? current.settings : undefined;
    return renderPage(
      c,
      {
        title: 'Sync',
        section: SECTION,
        notice: c.req.query('saved') ? 'The sync settings were saved.' : undefined,
        ...(extra.status ? { status: extra.status as 400 } : {}),
      },
      <SyncPage
        view={c.get('console')}
        settings={settings as Record<string, unknown> | undefined}
        runs={runs}
        filter={filter}
        problem={extra.problem}
        errors={extra.errors}
      />,
    );
  }

  app.get('/sync', async (c) => {
    authorizePage(c, 'read', { kind: 'sync' });
    return showSync(c);
  });

  app.get('/sync/progress.js', (c) => {
    authorizePage(c, 'read', { kind: 'sync' });
    c.header('content-type', 'text/javascript; charset=utf-8');
    return c.body(PROGRESS_SCRIPT);
  });

  app.post('/sync/run', async (c) => {
    authorizePage(c, 'write', { kind: 'sync' });
    const form = await c.req.parseBody();
    const dryRun = form.mode !== 'real';
    const first = await firstOf(deps, launchSyncRun(deps, changeOrigin(c), { dryRun }));
    if ('id' in first) return c.redirect(`${SECTION}/runs/${first.id}`, 303);
    const { result } = first;
    const problem =
      result.state === 'busy'
        ? 'A sync is already running (on this or another replica).'
        : result.state === 'disabled'
          ? `Sync is not enabled: ${result.reason}.`
          : 'No run was started.';
    return showSync(c, { problem, status: 409 });
  });

  app.post('/sync/settings', async (c) => {
    authorizePage(c, 'write', { kind: 'sync' });
    const current = await describeProvider(deps);
    if (current.settings?.authsource !== 'keycloak') {
      throw new AppError('conflict', 'Sync needs a Keycloak identity provider.');
    }
    const form = await c.req.parseBody();
    const body: Record<string, unknown> = { ...current.settings };
    for (const spec of SYNC_FIELDS) {
      body[spec.key] = spec.kind === 'bool' ? checked(form[spec.key]) : String(form[spec.key] ?? '');
    }
    try {
      await saveIdentityProvider(deps, body, changeOrigin(c));
    } catch (error) {
      if (!(error instanceof AppError) || !error.expose) throw error;
      return showSync(c, { errors: { form: error.message }, status: error.status });
    }
    return c.redirect(`${SECTION}?saved=1`, 303);
  });

  app.get('/sync/runs/:id/progress', async (c) => {
    authorizePage(c, 'read', { kind: 'sync' });
    const run = await findRun(c.req.param('id'));
    const progress = run.status === 'running' ? await readSyncProgress(progressDeps, run.id) : undefined;
    return c.json({ id: run.id, status: run.status, counts: progress?.counts ?? run.counts });
  });

  app.get('/sync/runs/:id', async (c) => {
    authorizePage(c, 'read', { kind: 'sync' });
    const run = await findRun(c.req.param('id'));
    const filter = actionFilter.parse(c.req.query());
    const needle = filter.q.trim().toLowerCase();
    const actions = (run.actions as Record<string, unknown>[])
      .map((action) => ({
        type: String(action.type ?? ''),
        outcome: String(action.outcome ?? ''),
        ...(typeof action.email === 'string' ? { email: action.email } : {}),
        ...(typeof action.username === 'string' ? { username: action.username } : {}),
        ...(typeof action.why === 'string' ? { why: action.why } : {}),
        ...(typeof action.template === 'string' ? { template: action.template } : {}),
        ...(typeof action.note === 'string' ? { note: action.note } : {}),
      }))
      .filter(
        (action) =>
          (!filter.type || action.type === filter.type) &&
          (!filter.outcome || action.outcome === filter.outcome) &&
          (!needle || `${action.email ?? ''} ${action.username ?? ''}`.toLowerCase().includes(needle)),
      )
      .slice(0, SHOWN_ACTIONS);
    const progress = run.status === 'running' ? await readSyncProgress(progressDeps, run.id) : undefined;
    return renderPage(
      c,
      { title: `Sync run #${run.id}`, section: SECTION },
      <SyncRunPage view={c.get('console')} run={run} progress={progress} filter={filter} actions={actions} />,
    );
  });

  async function findRun(raw: string) {
    const id = runIdSchema.safeParse(raw);
    const run = id.success ? await getSyncRun(deps.db, id.data) : undefined;
    if (!run) throw new AppError('not_found', 'There is no such sync run.');
    return run;
  }

  return app;
}
