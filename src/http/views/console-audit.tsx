// The audit page: filters (actor, target, event, IP, time, outcome), newest entries first with
// keyset paging, and export links for the same filter as CSV or JSON lines.
import type { AuditRow } from '../../storage/audit.js';
import { Field, Select } from './console-layout.js';

export interface AuditFilterView {
  actor: string;
  target: string;
  action: string;
  ip: string;
  since: string;
  until: string;
  outcome: string;
}

export function AuditPage(props: {
  filter: AuditFilterView;
  rows: AuditRow[];
  nextHref: string | undefined;
  exportQuery: string;
  error?: string | undefined;
}) {
  const f = props.filter;
  return (
    <>
      <form method="get" action="/admin/audit" id="audit-filter" aria-label="Filter the audit log">
        <div class="filters">
          <Field name="actor" label="Actor" value={f.actor} type="search" />
          <Field name="target" label="Target" value={f.target} type="search" />
          <Field
            name="action"
            label="Event"
            value={f.action}
            type="search"
            hint='Exact, e.g. ban.lift, or a prefix ending in ".", e.g. template.'
          />
          <Field name="ip" label="IP address" value={f.ip} type="search" />
          <div class="field">
            <label for="f-since">From (UTC)</label>
            <input type="datetime-local" id="f-since" name="since" value={f.since} />
          </div>
          <div class="field">
            <label for="f-until">Until (UTC)</label>
            <input type="datetime-local" id="f-until" name="until" value={f.until} />
          </div>
          <Select
            name="outcome"
            label="Outcome"
            value={f.outcome}
            options={[
              { value: '', label: 'any' },
              { value: 'success', label: 'success' },
              { value: 'failure', label: 'failure' },
            ]}
          />
        </div>
        <div class="actions">
          <button type="submit">Search</button>
          <a href="/admin/audit">Clear filters</a>
          <a href={`/admin/audit/export?format=csv&${props.exportQuery}`} id="export-csv">
            Export CSV
          </a>
          <a href={`/admin/audit/export?format=jsonl&${props.exportQuery}`} id="export-jsonl">
            Export JSON lines
          </a>
        </div>
      </form>
      {props.error ? (
        <p class="error" role="alert">
          {props.error}
        </p>
      ) : null}
      <table id="audit">
        <thead>
          <tr>
            <th scope="col">Time (UTC)</th>
            <th scope="col">Actor</th>
            <th scope="col">Event</th>
            <th scope="col">Outcome</th>
            <th scope="col">Target</th>
            <th scope="col">IP</th>
            <th scope="col">Detail</th>
          </tr>
        </thead>
        <tbody>
          {props.rows.map((row) => (
            <tr data-audit={row.action}>
              <td>{new Date(row.at).toISOString().replace('T', ' ').slice(0, 19)}</td>
              <td>{row.actor}</td>
              <td>{row.action}</td>
              <td>{row.outcome}</td>
              <td>{row.target ?? ''}</td>
              <td>{row.ip ?? ''}</td>
              <td>
                <code>{describeDetail(row)}</code>
              </td>
            </tr>
          ))}
          {props.rows.length === 0 ? (
            <tr>
              <td colspan={7}>No entries match.</td>
            </tr>
          ) : null}
        </tbody>
      </table>
      <nav class="pager" aria-label="Pages">
        {props.nextHref ? (
          <a href={props.nextHref} id="audit-older">
            Older entries
          </a>
        ) : null}
      </nav>
    </>
  );
}

export function describeDetail(row: Pick<AuditRow, 'detail' | 'before' | 'after'>): string {
  const parts: Record<string, unknown> = {};
  if (row.detail && typeof row.detail === 'object' && Object.keys(row.detail).length) parts.detail = row.detail;
  if (row.before) parts.before = row.before;
  if (row.after) parts.after = row.after;
  const text = Object.keys(parts).length ? JSON.stringify(parts) : '';
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
