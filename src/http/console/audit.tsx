// /admin/audit: the audit log through the same query as GET /api/v1/audit (queryAudit; domain
// admins narrowed to their domains), filtered by actor, target, event (exact or `prefix.`), IP,
// time range (UTC) and outcome, keyset-paged; /admin/audit/export answers the same filter as
// CSV or JSON lines (at most EXPORT_MAX rows, newest first).
import { type Context, Hono } from 'hono';
import { stream } from 'hono/streaming';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { type AuditQuery, type AuditRow, queryAudit } from '../../storage/audit.js';
import { AuditPage } from '../views/console-audit.js';
import { authorizePage } from './context.js';
import { renderPage } from './page.js';

const PAGE_SIZE = 50;
const EXPORT_BATCH = 500;
export const EXPORT_MAX = 50_000;

const optionalText = (max: number) =>
  z
    .string()
    .trim()
    .max(max)
    .optional()
    .transform((value) => (value ? value : undefined));
/** datetime-local's value (no zone), read as UTC; or a full ISO timestamp. */
const when = z
  .string()
  .trim()
  .optional()
  .transform((value, ctx) => {
    if (!value) return undefined;
    const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value) ? `${value}Z` : value;
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) {
      ctx.addIssue({ code: 'custom', message: 'must be a date and time' });
      return z.NEVER;
    }
    return date;
  });
const filterSchema = z.object({
  actor: optionalText(255),
  target: optionalText(255),
  action: optionalText(64).refine((value) => value === undefined || /^[a-z0-9_.]{1,64}$/.test(value), {
    message: 'must be an event such as ban.lift, or a prefix ending in "." such as template.',
  }),
  ip: optionalText(64),
  since: when,
  until: when,
  outcome: z.enum(['', 'success', 'failure']).optional(),
  before: z.coerce.number().int().positive().optional().catch(undefined),
});
const FILTER_KEYS = ['actor', 'target', 'action', 'ip', 'since', 'until', 'outcome'] as const;

export function createConsoleAudit(deps: Pick<Deps, 'db'>) {
  const app = new Hono();

  function readFilter(c: Context) {
    const raw = Object.fromEntries(FILTER_KEYS.map((key) => [key, c.req.query(key) ?? '']));
    const parsed = filterSchema.safeParse({ ...raw, before: c.req.query('before') });
    const view = Object.fromEntries(FILTER_KEYS.map((key) => [key, String(raw[key]).slice(0, 255)])) as Record<
      (typeof FILTER_KEYS)[number],
      string
    >;
    const kept = new URLSearchParams(Object.entries(view).filter(([, value]) => value !== '')).toString();
    if (!parsed.success) {
      return {
        ok: false as const,
        view,
        kept,
        error: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
      };
    }
    const f = parsed.data;
    const actor = c.get('console').actor;
    const query: Omit<AuditQuery, 'limit'> = {
      ...(f.actor ? { actor: f.actor } : {}),
      ...(f.target ? { target: f.target } : {}),
      ...(f.action ? { action: f.action } : {}),
      ...(f.ip ? { ip: f.ip } : {}),
      ...(f.since ? { since: f.since } : {}),
      ...(f.until ? { until: f.until } : {}),
      ...(f.outcome ? { outcome: f.outcome } : {}),
      ...(f.before ? { beforeId: f.before } : {}),
      // The query narrows a domain admin to entries about its domains.
      ...(actor.role === 'superadmin' ? {} : { domains: actor.domains }),
    };
    return { ok: true as const, view, kept, query };
  }

  app.get('/audit', async (c) => {
    authorizePage(c, 'read', { kind: 'audit' });
    const filter = readFilter(c);
    const rows = filter.ok ? await queryAudit(deps.db, { ...filter.query, limit: PAGE_SIZE }) : [];
    const last = rows.length === PAGE_SIZE ? rows[rows.length - 1] : undefined;
    const nextHref = last ? `/admin/audit?${filter.kept ? `${filter.kept}&` : ''}before=${last.id}` : undefined;
    return renderPage(
      c,
      { title: 'Audit log', section: '/admin/audit', ...(filter.ok ? {} : { status: 400 as const }) },
      <AuditPage
        filter={filter.view}
        rows={rows}
        nextHref={nextHref}
        exportQuery={filter.kept}
        error={filter.ok ? undefined : filter.error}
      />,
    );
  });

  app.get('/audit/export', async (c) => {
    authorizePage(c, 'read', { kind: 'audit' });
    const format = c.req.query('format') === 'jsonl' ? 'jsonl' : 'csv';
    const filter = readFilter(c);
    if (!filter.ok) return c.text(filter.error, 400);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    c.header('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8');
    c.header(
      'content-disposition',
      `attachment; filename="postern-audit-${stamp}.${format === 'csv' ? 'csv' : 'jsonl'}"`,
    );
    return stream(c, async (out) => {
      if (format === 'csv') await out.write(`${CSV_COLUMNS.join(',')}\r\n`);
      let beforeId = filter.query.beforeId;
      let written = 0;
      while (written < EXPORT_MAX) {
        const limit = Math.min(EXPORT_BATCH, EXPORT_MAX - written);
        const rows = await queryAudit(deps.db, { ...filter.query, ...(beforeId ? { beforeId } : {}), limit });
        if (rows.length === 0) break;
        await out.write(rows.map(format === 'csv' ? toCsvLine : toJsonLine).join(''));
        written += rows.length;
        beforeId = rows[rows.length - 1]?.id;
        if (rows.length < limit) break;
      }
    });
  });

  return app;
}

const CSV_COLUMNS = [
  'id',
  'at',
  'actor',
  'actor_kind',
  'actor_role',
  'action',
  'outcome',
  'target',
  'domain',
  'ip',
  'detail',
  'before',
  'after',
];

function exported(row: AuditRow) {
  return {
    id: row.id,
    at: new Date(row.at).toISOString(),
    actor: row.actor,
    actor_kind: row.actorKind,
    actor_role: row.actorRole,
    action: row.action,
    outcome: row.outcome,
    target: row.target,
    domain: row.domain,
    ip: row.ip,
    detail: row.detail ?? null,
    before: row.before ?? null,
    after: row.after ?? null,
  };
}

function toJsonLine(row: AuditRow): string {
  return `${JSON.stringify(exported(row))}\n`;
}

/** RFC 4180 fields; a leading = + - @ gets a ' so spreadsheets do not run it as a formula (OWASP CSV injection). */
function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function toCsvLine(row: AuditRow): string {
  const values = exported(row);
  return `${CSV_COLUMNS.map((column) => csvField(values[column as keyof typeof values])).join(',')}\r\n`;
}
