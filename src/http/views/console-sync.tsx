// The sync pages: settings, "run now" / "dry run", the history of runs (filterable) and one
// run with live counts while it runs and its actions (filterable by type and outcome). The
// counts update by themselves with a small script (sync-progress.js); without it the page has a
// refresh link and says the run is still going.
import type { SyncProgress } from '../../admin/sync-progress.js';
import type { SyncRun, SyncRunSummary } from '../../storage/sync-runs.js';
import type { ConsoleView } from '../console/context.js';
import { SettingField, SYNC_FIELDS } from './console-idp.js';
import { CsrfForm, FormErrors, Select } from './console-layout.js';

export const COUNT_KEYS = ['users', 'created', 'updated', 'deactivated', 'reactivated', 'skipped', 'failed'] as const;
export const ACTION_TYPES = ['create', 'update', 'deactivate', 'reactivate', 'unmark', 'skip'] as const;
export const OUTCOMES = ['applied', 'planned', 'unchanged', 'skipped', 'failed'] as const;

const time = (date: Date | null) => (date ? `${date.toISOString().replace('T', ' ').slice(0, 19)} UTC` : '—');

export function SyncPage(props: {
  view: ConsoleView;
  settings: Record<string, unknown> | undefined;
  runs: SyncRunSummary[];
  filter: { status: string; kind: string };
  problem?: string | undefined;
  errors?: Record<string, string> | undefined;
}) {
  return (
    <>
      {props.problem ? (
        <p class="error" role="alert" id="sync-problem">
          {props.problem}
        </p>
      ) : null}
      <section aria-labelledby="run-heading">
        <h2 id="run-heading">Run</h2>
        <CsrfForm view={props.view} action="/admin/sync/run" class="actions" id="sync-run">
          <button type="submit" name="mode" value="dry" id="sync-dry-run">
            Dry run (change nothing)
          </button>
          <button type="submit" name="mode" value="real" class="secondary" id="sync-run-now">
            Run now
          </button>
        </CsrfForm>
      </section>
      <section aria-labelledby="history-heading">
        <h2 id="history-heading">History</h2>
        <form method="get" action="/admin/sync" class="toolbar" aria-label="Filter runs">
          <Select
            name="status"
            label="Status"
            value={props.filter.status}
            options={[
              { value: '', label: 'any' },
              ...['running', 'succeeded', 'partial', 'failed'].map((v) => ({ value: v, label: v })),
            ]}
          />
          <Select
            name="kind"
            label="Kind"
            value={props.filter.kind}
            options={[
              { value: '', label: 'any' },
              { value: 'real', label: 'real runs' },
              { value: 'dry', label: 'dry runs' },
            ]}
          />
          <button type="submit" class="secondary">
            Filter
          </button>
        </form>
        <table id="sync-runs">
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">Started</th>
              <th scope="col">By</th>
              <th scope="col">Status</th>
              {COUNT_KEYS.map((key) => (
                <th scope="col" class="num">
                  {key}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {props.runs.map((run) => (
              <tr data-run={String(run.id)}>
                <td>
                  <a href={`/admin/sync/runs/${run.id}`}>
                    #{run.id}
                    {run.dryRun ? ' (dry run)' : ''}
                  </a>
                </td>
                <td>{time(run.startedAt)}</td>
                <td>{run.triggeredBy}</td>
                <td>{run.status}</td>
                {COUNT_KEYS.map((key) => (
                  <td class="num">{run.counts[key] ?? 0}</td>
                ))}
              </tr>
            ))}
            {props.runs.length === 0 ? (
              <tr>
                <td colspan={4 + COUNT_KEYS.length}>No runs match.</td>
              </tr>
            ) : null}
          </tbody>
        </table>
      </section>
      {props.settings ? (
        <section aria-labelledby="sync-settings-heading">
          <h2 id="sync-settings-heading">Settings</h2>
          <FormErrors errors={props.errors} />
          <CsrfForm view={props.view} action="/admin/sync/settings" id="sync-settings">
            {SYNC_FIELDS.map((spec) => (
              <SettingField spec={spec} values={props.settings ?? {}} error={props.errors?.[spec.key]} />
            ))}
            <div class="actions">
              <button type="submit">Save sync settings</button>
            </div>
          </CsrfForm>
        </section>
      ) : (
        <p>
          Sync needs a Keycloak <a href="/admin/identity-provider">identity provider</a>.
        </p>
      )}
    </>
  );
}

interface ActionRow {
  type: string;
  outcome: string;
  email?: string;
  username?: string;
  why?: string;
  template?: string;
  note?: string;
}

export function SyncRunPage(props: {
  view: ConsoleView;
  run: SyncRun;
  progress: SyncProgress | undefined;
  filter: { type: string; outcome: string; q: string };
  actions: ActionRow[];
}) {
  const { run } = props;
  const running = run.status === 'running';
  const counts = running ? (props.progress?.counts ?? {}) : run.counts;
  return (
    <>
      <p>
        <a href="/admin/sync">All runs</a>
      </p>
      <dl>
        <dt>Kind</dt>
        <dd>{run.dryRun ? 'dry run: nothing was changed' : 'real run'}</dd>
        <dt>Started</dt>
        <dd>
          {time(run.startedAt)} by {run.triggeredBy}
        </dd>
        <dt>Status</dt>
        <dd id="run-status" data-status={run.status}>
          {run.status}
          {running ? ' (counts update while it runs)' : ''}
        </dd>
        {run.finishedAt ? (
          <>
            <dt>Finished</dt>
            <dd>{time(run.finishedAt)}</dd>
          </>
        ) : null}
      </dl>
      {running ? (
        <p id="run-live" data-progress-url={`/admin/sync/runs/${run.id}/progress`}>
          Still running. <a href={`/admin/sync/runs/${run.id}`}>Refresh</a>
        </p>
      ) : null}
      <table id="run-counts">
        <caption>Counts{running ? ' so far' : ''}</caption>
        <tbody>
          {COUNT_KEYS.map((key) => (
            <tr>
              <th scope="row">{key}</th>
              <td class="num" data-count={key}>
                {counts[key] ?? 0}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {run.errors.length ? (
        <div class="error" role="status">
          <p>Errors:</p>
          <ul>
            {run.errors.map((error) => (
              <li>{error}</li>
            ))}
          </ul>
        </div>
      ) : null}
      {running ? null : (
        <section aria-labelledby="actions-heading">
          <h2 id="actions-heading">Actions</h2>
          <form method="get" action={`/admin/sync/runs/${run.id}`} class="toolbar" aria-label="Filter actions">
            <Select
              name="type"
              label="Action"
              value={props.filter.type}
              options={[{ value: '', label: 'any' }, ...ACTION_TYPES.map((v) => ({ value: v, label: v }))]}
            />
            <Select
              name="outcome"
              label="Outcome"
              value={props.filter.outcome}
              options={[{ value: '', label: 'any' }, ...OUTCOMES.map((v) => ({ value: v, label: v }))]}
            />
            <div class="field">
              <label for="f-q">Email or user contains</label>
              <input type="search" id="f-q" name="q" value={props.filter.q} />
            </div>
            <button type="submit" class="secondary">
              Filter
            </button>
          </form>
          {run.actionsTruncated ? (
            <p class="muted">Only the first actions are stored; the counts are complete.</p>
          ) : null}
          <table id="run-actions">
            <thead>
              <tr>
                <th scope="col">Action</th>
                <th scope="col">Mailbox or user</th>
                <th scope="col">Reason</th>
                <th scope="col">Template</th>
                <th scope="col">Outcome</th>
              </tr>
            </thead>
            <tbody>
              {props.actions.map((action) => (
                <tr data-action={action.type}>
                  <td>{action.type}</td>
                  <td>{action.email ?? action.username ?? ''}</td>
                  <td>{[action.why, action.note].filter(Boolean).join('; ')}</td>
                  <td>{action.template ?? ''}</td>
                  <td>{action.outcome}</td>
                </tr>
              ))}
              {props.actions.length === 0 ? (
                <tr>
                  <td colspan={5}>No actions match.</td>
                </tr>
              ) : null}
            </tbody>
          </table>
        </section>
      )}
      {running ? <script src="/admin/sync/progress.js" defer /> : null}
    </>
  );
}

/** Progressive enhancement for a running run's page: poll the counts, reload once it finished. */
export const PROGRESS_SCRIPT = `(function () {
  var live = document.getElementById('run-live');
  if (!live) return;
  var url = live.getAttribute('data-progress-url');
  function tick() {
    fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (!p) return setTimeout(tick, 3000);
        Object.keys(p.counts || {}).forEach(function (key) {
          var cell = document.querySelector('[data-count="' + key + '"]');
          if (cell) cell.textContent = String(p.counts[key]);
        });
        if (p.status !== 'running') return location.reload();
        setTimeout(tick, 1000);
      })
      .catch(function () { setTimeout(tick, 3000); });
  }
  live.firstChild.textContent = 'Running: counts update live. ';
  tick();
})();
`;
