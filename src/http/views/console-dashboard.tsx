// The dashboard's figures: last logins per service as server-rendered SVG bar charts (24 hours,
// 7 days) with the numbers in a table for screen readers; for superadmins refused logins and bans
// placed in the same charts, current bans, the last sync run and
// the health of MySQL, Redis and the IdP.
import type { Dashboard, Health, LoginSeries } from '../../admin/dashboard.js';

const COLORS = ['#2563eb', '#16a34a', '#d97706', '#9333ea', '#dc2626', '#0891b2', '#4b5563', '#db2777'];

export function DashboardFigures(props: { dashboard: Dashboard }) {
  const { dashboard: d } = props;
  return (
    <>
      <section aria-labelledby="logins-heading">
        <h2 id="logins-heading">Logins per service</h2>
        <p class="muted">
          From sasl_log: each service, client IP and user counts once, in the hour (or day) of its latest login.
        </p>
        <LoginChart id="logins-24h" title="Last 24 hours, by hour" series={d.day} />
        <LoginChart id="logins-7d" title="Last 7 days, by day" series={d.week} />
      </section>
      {d.health ? (
        <section aria-labelledby="refusals-heading">
          <h2 id="refusals-heading">Refused logins and bans</h2>
          <p class="muted">
            From postern's hourly counters in Redis (every replica's, every domain's; UTC): mail logins refused per
            service, and bans the brute-force limiter placed.
          </p>
          {d.refusals ? (
            <>
              <LoginChart
                id="refused-24h"
                title="Refused, last 24 hours, by hour"
                series={d.refusals.day}
                noun="refused logins"
              />
              <LoginChart
                id="refused-7d"
                title="Refused, last 7 days, by day"
                series={d.refusals.week}
                noun="refused logins"
              />
              <LoginChart
                id="bans-24h"
                title="Bans placed, last 24 hours, by hour"
                series={d.refusals.bansDay}
                noun="bans"
              />
              <LoginChart
                id="bans-7d"
                title="Bans placed, last 7 days, by day"
                series={d.refusals.bansWeek}
                noun="bans"
              />
            </>
          ) : (
            <p>Refused logins and bans: unavailable.</p>
          )}
        </section>
      ) : null}
      {d.health ? (
        <section aria-labelledby="health-heading">
          <h2 id="health-heading">Health</h2>
          <dl id="health">
            <HealthItem name="MySQL" health={d.health.mysql} />
            <HealthItem name="Redis" health={d.health.redis} />
            <HealthItem name="Identity provider" health={d.health.idp} />
          </dl>
        </section>
      ) : null}
      {d.bans !== undefined || d.health ? (
        <section aria-labelledby="dash-bans-heading">
          <h2 id="dash-bans-heading">Current bans</h2>
          {d.bans === undefined ? (
            <p>unavailable</p>
          ) : (
            <p id="dash-bans">
              {d.bans.length} ({d.bans.filter((b) => b.scope === 'ip').length} IP,{' '}
              {d.bans.filter((b) => b.scope === 'user').length} user) · <a href="/admin/bans">Bans</a>
            </p>
          )}
          <h2>Last sync run</h2>
          {d.lastRun === undefined ? (
            <p>unavailable</p>
          ) : d.lastRun === null ? (
            <p id="dash-last-run">No sync has run yet.</p>
          ) : (
            <p id="dash-last-run">
              <a href={`/admin/sync/runs/${d.lastRun.id}`}>#{d.lastRun.id}</a>
              {d.lastRun.dryRun ? ' (dry run)' : ''}: {d.lastRun.status}, started{' '}
              {d.lastRun.startedAt.toISOString().replace('T', ' ').slice(0, 16)} UTC by {d.lastRun.triggeredBy};{' '}
              {d.lastRun.counts.created ?? 0} created, {d.lastRun.counts.updated ?? 0} updated,{' '}
              {d.lastRun.counts.deactivated ?? 0} deactivated, {d.lastRun.counts.skipped ?? 0} skipped
            </p>
          )}
        </section>
      ) : null}
    </>
  );
}

function HealthItem(props: { name: string; health: Health }) {
  return (
    <>
      <dt>{props.name}</dt>
      <dd data-health={props.health.ok ? 'ok' : 'failing'}>
        <span class={props.health.ok ? 'badge' : 'badge off'}>{props.health.ok ? 'ok' : 'failing'}</span>{' '}
        {props.health.detail}
      </dd>
    </>
  );
}

function LoginChart(props: { id: string; title: string; series: LoginSeries | undefined; noun?: string }) {
  const { series } = props;
  const noun = props.noun ?? 'logins';
  if (!series) return <p>{props.title}: unavailable.</p>;
  const services = Object.keys(series.services).sort();
  const totals = series.buckets.map((_, i) => services.reduce((sum, s) => sum + (series.services[s]?.[i] ?? 0), 0));
  const max = Math.max(1, ...totals);
  const width = 720;
  const height = 160;
  const barWidth = width / series.buckets.length;
  return (
    <figure id={props.id}>
      <figcaption>{props.title}</figcaption>
      <svg
        viewBox={`0 0 ${width} ${height + 20}`}
        width="100%"
        role="img"
        aria-label={`${props.title}: ${totals.reduce((a, b) => a + b, 0)} ${noun}`}
      >
        {series.buckets.map((bucket, i) => {
          let y = height;
          return (
            <g>
              {services.map((service, s) => {
                const value = series.services[service]?.[i] ?? 0;
                const h = (value / max) * (height - 10);
                y -= h;
                return value > 0 ? (
                  <rect x={i * barWidth + 2} y={y} width={barWidth - 4} height={h} fill={COLORS[s % COLORS.length]}>
                    <title>{`${bucket} ${service}: ${value}`}</title>
                  </rect>
                ) : null;
              })}
              {i % Math.ceil(series.buckets.length / 8) === 0 ? (
                <text x={i * barWidth + 2} y={height + 14} font-size="10" fill="currentColor">
                  {bucket.length > 10 ? bucket.slice(11) : bucket.slice(5)}
                </text>
              ) : null}
            </g>
          );
        })}
        <line x1="0" y1={height} x2={width} y2={height} stroke="currentColor" stroke-width="1" />
      </svg>
      <p class="legend">
        {services.length === 0
          ? `No ${noun}.`
          : services.map((service, s) => (
              <span>
                <span style={`display:inline-block;width:.8em;height:.8em;background:${COLORS[s % COLORS.length]}`} />{' '}
                {service}: {series.services[service]?.reduce((a, b) => a + b, 0) ?? 0}{' '}
              </span>
            ))}
      </p>
    </figure>
  );
}
