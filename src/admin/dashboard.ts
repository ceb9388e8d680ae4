// The console dashboard's figures: last logins per service over 24 hours (by hour) and 7 days
// (by day) from mailcow's sasl_log (a domain admin: its domains only), and for superadmins the
// current bans, the last sync run and the health of MySQL, Redis and the IdP. Faults of one
// source become "unavailable" for that figure; they never fail the page.
import type { Redis } from '../cache/redis.js';
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
  bans?: Ban[] | undefined;
  lastRun?: SyncRunSummary | null | undefined;
  health?: { mysql: Health; redis: Health; idp: Health };
}

export interface DashboardDeps {
  db: Db;
  redis: Redis;
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
  const [bans, runs, mysql, redis, idp] = await Promise.all([
    deps.limiter.listBans().catch(() => undefined),
    listSyncRuns(deps.db, 1).catch(() => undefined),
    check(() => deps.db.ping(), 'answers'),
    check(async () => {
      await deps.redis.ping();
    }, 'answers'),
    idpHealth(deps),
  ]);
  return { day, week, bans, lastRun: runs ? (runs[0] ?? null) : undefined, health: { mysql, redis, idp } };
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
