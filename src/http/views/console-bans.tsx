// The bans page: current IP and user bans (why, until when) with a lift button each, and the
// thresholds in force.
import type { Ban } from '../../rate-limit/store.js';
import type { ConsoleView } from '../console/context.js';
import { CsrfForm } from './console-layout.js';

export interface Thresholds {
  ipThreshold: number;
  userThreshold: number;
  windowSeconds: number;
  banSeconds: number;
  exemptNetworks: readonly string[];
}

export function banReason(ban: Pick<Ban, 'scope'>, t: Thresholds): string {
  return ban.scope === 'ip'
    ? `${t.ipThreshold} distinct wrong passwords from this address (IPv6: its /64) within ${t.windowSeconds} s`
    : `${t.userThreshold} distinct wrong passwords for this username within ${t.windowSeconds} s`;
}

export function BansPage(props: { view: ConsoleView; bans: Ban[]; now: Date; thresholds: Thresholds }) {
  const { thresholds: t } = props;
  return (
    <>
      <section aria-labelledby="bans-heading">
        <h2 id="bans-heading">Current bans ({props.bans.length})</h2>
        {props.bans.length === 0 ? (
          <p id="no-bans">Nobody is banned right now.</p>
        ) : (
          <table id="bans">
            <thead>
              <tr>
                <th scope="col">Scope</th>
                <th scope="col">Address or user</th>
                <th scope="col">Reason</th>
                <th scope="col">Expires</th>
                <th scope="col">Action</th>
              </tr>
            </thead>
            <tbody>
              {props.bans.map((ban) => (
                <tr data-ban={`${ban.scope}:${ban.subject}`}>
                  <td>{ban.scope === 'ip' ? 'IP' : 'user'}</td>
                  <td>
                    <code>{ban.subject}</code>
                  </td>
                  <td>{banReason(ban, t)}</td>
                  <td>
                    <time datetime={new Date(props.now.getTime() + ban.expiresInSeconds * 1000).toISOString()}>
                      {new Date(props.now.getTime() + ban.expiresInSeconds * 1000)
                        .toISOString()
                        .replace('T', ' ')
                        .slice(0, 19)}{' '}
                      UTC
                    </time>{' '}
                    (in {Math.ceil(ban.expiresInSeconds / 60)} min)
                  </td>
                  <td>
                    <CsrfForm view={props.view} action="/admin/bans/lift" class="inline">
                      <input type="hidden" name="scope" value={ban.scope} />
                      <input type="hidden" name="subject" value={ban.subject} />
                      <button type="submit" class="secondary" aria-label={`Lift the ban on ${ban.subject}`}>
                        Lift
                      </button>
                    </CsrfForm>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-labelledby="thresholds-heading">
        <h2 id="thresholds-heading">Thresholds in force</h2>
        <dl id="thresholds">
          <dt>Client IP banned after</dt>
          <dd>
            {t.ipThreshold} distinct wrong passwords within {t.windowSeconds} s (POSTERN_BAN_IP_THRESHOLD)
          </dd>
          <dt>Username banned after</dt>
          <dd>
            {t.userThreshold} distinct wrong passwords within {t.windowSeconds} s (POSTERN_BAN_USER_THRESHOLD)
          </dd>
          <dt>Ban lasts</dt>
          <dd>{t.banSeconds} s (POSTERN_BAN_SECONDS)</dd>
          <dt>Never banned by IP</dt>
          <dd>{t.exemptNetworks.join(', ') || 'none'} (POSTERN_BAN_EXEMPT_NETWORKS)</dd>
        </dl>
      </section>
    </>
  );
}
