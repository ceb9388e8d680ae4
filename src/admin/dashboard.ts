// The console dashboard's figures: last logins per service over 24 hours (by hour) and 7 days
// (by day) from mailcow's sasl_log (a domain admin: its domains only), and for superadmins the
// refused mail logins per service and bans placed (postern's hourly counters in Redis, shared by
// the replicas; global across domains, so superadmins only), the current bans, the last sync run and the health of MySQL, Redis and the IdP. Faults of one
// source become "unavailable" for that figure; they never fail the page.
import { readHourlyStats, statsServices } from '../cache/login-stats.js';
import type { Redis } from '../cache/redis.js';
import { KNOWN_SERVICES } from '../login/services.js';
import type { RateLimiter } from '../rate-limit/limiter.js';
import type { Ban } from '../rate-limit/store.js';
import { idpFetch } from '../sources/idp-fetch.js';
import { loadIdpSettings } from '../sources/idp-settings.js';
import type { SecretBox } from '../sources/secret-box.js';
import type { Db } from '../storage/db.js';
import { countSaslLogins } from '../storage/sasl-log.js';
import { listSyncRuns, type SyncRunSummary } from '../storage/sync-runs.js';

export interface LoginSeries {
  /** Bucket labels, oldest first (`YYYY-MM-DD HH:00` or `YYYY-MM-DD`). */
  buckets: string[];
  /** Service → logins per bucket, aligned with `buckets`. */
  services: Record<string, number[]>;
}

export type Health = { ok: true; detail: string } | { ok: false; detail: string };

export interface Dashboard {
  day: LoginSeries | undefined;
  week: LoginSeries | undefined;
  /** Refused mail logins per service and bans placed, every domain's (superadmins only). */
  refusals?: { day: LoginSeries; week: LoginSeries; bansDay: LoginSeries; bansWeek: LoginSeries } | undefined;
  bans?: Ban[] | undefined;
  lastRun?: SyncRunSummary | null | undefined;
  health?: { mysql: Health; redis: Health; idp: Health };
}

export interface DashboardDeps {
  db: Db;
  redis: Redis;
  /** The Redis key prefix of postern's counters. */
  prefix: string;
  limiter: Pick<RateLimiter, 'listBans'>;
  secretBox: SecretBox;
  timeoutMs: number;
}

export async function loadDashboard(
  deps: DashboardDeps,
  viewer: { superadmin: boolean; domains: readonly string[] },
): Promise<Dashboard> {
  const domains = viewer.superadmin ? undefined : viewer.domains;
  const [day, week] = await Promise.all([
    series(deps.db, 24, 'hour', domains).catch(() => undefined),
    series(deps.db, 7 * 24, 'day', domains).catch(() => undefined),
  ]);
  if (!viewer.superadmin) return { day, week };
  const [refusals, bans, runs, mysql, redis, idp] = await Promise.all([
    refusalSeries(deps).catch(() => undefined),
    deps.limiter.listBans().catch(() => undefined),
    listSyncRuns(deps.db, 1).catch(() => undefined),
    check(() => deps.db.ping(), 'answers'),
    check(async () => {
      await deps.redis.ping();
    }, 'answers'),
    idpHealth(deps),
  ]);
  return { day, week, refusals, bans, lastRun: runs ? (runs[0] ?? null) : undefined, health: { mysql, redis, idp } };
}

async function series(db: Db, hours: number, unit: 'hour' | 'day', domains: readonly string[] | undefined) {
  const { now, buckets } = await countSaslLogins(db, { hours, unit, domains });
  const labels = bucketLabels(now, unit === 'hour' ? 24 : 7, unit);
  const services: Record<string, number[]> = {};
  for (const row of buckets) {
    const index = labels.indexOf(label(row.bucket, unit));
    if (index < 0) continue;
    const counts = services[row.service] ?? labels.map(() => 0);
    counts[index] = (counts[index] ?? 0) + row.logins;
    services[row.service] = counts;
  }
  return { buckets: labels, services };
}

/**
 * The counters of the 7 UTC days ending today (at most 168 hours, one MGET): the last 24 hours by
 * hour and the days as sums. Labelled in UTC, as the counters' keys are.
 */
async function refusalSeries(deps: DashboardDeps) {
  const nowMs = Date.now();
  const hoursToday = new Date(nowMs).getUTCHours() + 1;
  const stats = await readHourlyStats(
    deps.redis,
    deps.prefix,
    statsServices(KNOWN_SERVICES),
    6 * 24 + hoursToday,
    nowMs,
  );
  const nowLabel = `${new Date(nowMs).toISOString().slice(0, 13).replace('T', ' ')}:00`;
  const hourLabels = bucketLabels(nowLabel, 24, 'hour');
  const dayNames = bucketLabels(nowLabel, 7, 'day');
  // `yyyymmddhh` → `YYYY-MM-DD HH:00` and `YYYY-MM-DD`.
  const asHour = (h: string) => `${h.slice(0, 4)}-${h.slice(4, 6)}-${h.slice(6, 8)} ${h.slice(8, 10)}:00`;
  const bucketed = (counts: number[], labels: string[], unit: 'hour' | 'day') => {
    const out = labels.map(() => 0);
    stats.hours.forEach((hour, i) => {
      const at = labels.indexOf(unit === 'hour' ? asHour(hour) : asHour(hour).slice(0, 10));
      if (at >= 0) out[at] = (out[at] ?? 0) + (counts[i] ?? 0);
    });
    return out;
  };
  const perService = (labels: string[], unit: 'hour' | 'day'): LoginSeries => ({
    buckets: labels,
    services: Object.fromEntries(
      Object.entries(stats.failures).map(([service, counts]) => [service, bucketed(counts, labels, unit)]),
    ),
  });
  const bans = (labels: string[], unit: 'hour' | 'day'): LoginSeries => {
    const counts = bucketed(stats.bans, labels, unit);
    return { buckets: labels, services: counts.some((n) => n > 0) ? { bans: counts } : {} };
  };
  return {
    day: perService(hourLabels, 'hour'),
    week: perService(dayNames, 'day'),
    bansDay: bans(hourLabels, 'hour'),
    bansWeek: bans(dayNames, 'day'),
  };
}

function label(bucket: string, unit: 'hour' | 'day') {
  return unit === 'hour' ? bucket.slice(0, 16) : bucket.slice(0, 10);
}

/** The `count` buckets ending with the one `now` is in, oldest first. */
export function bucketLabels(now: string, count: number, unit: 'hour' | 'day'): string[] {
  const end = new Date(`${now.replace(' ', 'T')}Z`);
  const step = unit === 'hour' ? 3_600_000 : 86_400_000;
  return Array.from({ length: count }, (_, i) => {
    const at = new Date(end.getTime() - (count - 1 - i) * step).toISOString();
    return unit === 'hour' ? `${at.slice(0, 10)} ${at.slice(11, 16)}` : at.slice(0, 10);
  });
}

async function check(probe: () => Promise<void>, okDetail: string): Promise<Health> {
  try {
    await probe();
    return { ok: true, detail: okDetail };
  } catch (error) {
    return { ok: false, detail: error instanceof Error ? error.message : 'unavailable' };
  }
}

/** The provider's discovery document answers (Keycloak realm or generic issuer). */
async function idpHealth(deps: DashboardDeps): Promise<Health> {
  let loaded: Awaited<ReturnType<typeof loadIdpSettings>>;
  try {
    loaded = await loadIdpSettings(deps.db, deps.secretBox);
  } catch {
    return { ok: false, detail: 'the settings cannot be read' };
  }
  if (loaded.state === 'none') return { ok: true, detail: 'none configured' };
  if (loaded.state === 'invalid') return { ok: false, detail: `invalid settings: ${loaded.problems.join('; ')}` };
  const settings = loaded.settings;
  const issuer =
    settings.authsource === 'keycloak'
      ? `${settings.server_url}/realms/${encodeURIComponent(settings.realm)}`
      : settings.postern_issuer_url;
  if (!issuer) return { ok: true, detail: 'configured URLs (no discovery to check)' };
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  try {
    const response = await idpFetch(settings)(url, { signal: AbortSignal.timeout(deps.timeoutMs), redirect: 'manual' });
    await response.body?.cancel().catch(() => undefined);
    return response.status === 200
      ? { ok: true, detail: `discovery answers (${url})` }
      : { ok: false, detail: `HTTP ${response.status} from ${url}` };
  } catch {
    return { ok: false, detail: `no answer from ${url}` };
  }
}
