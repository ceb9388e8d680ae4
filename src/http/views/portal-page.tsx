// The user portal: the mailbox, the webmail link, and app-password management.
import type { AppPasswordSummary, ProtocolChoice } from '../../app-passwords/app-passwords.js';
import { PROTOCOL_CHOICES } from '../../app-passwords/app-passwords.js';
import type { PortalMailbox } from '../../storage/mailboxes.js';
import { Layout } from './layout.js';

const PROTOCOL_LABELS: Record<ProtocolChoice, string> = {
  imap: 'IMAP',
  pop3: 'POP3',
  smtp: 'SMTP',
  sieve: 'Sieve',
  dav: 'CalDAV/CardDAV',
  eas: 'ActiveSync',
};

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}

function authSourceLabel(source: string): string {
  switch (source) {
    case 'mailcow':
      return 'Mailbox password';
    case 'keycloak':
      return 'Single sign-on (Keycloak)';
    case 'generic-oidc':
      return 'Single sign-on (OpenID Connect)';
    case 'ldap':
      return 'Directory (LDAP)';
    default:
      return source;
  }
}

export interface PortalProps {
  mailbox: PortalMailbox;
  appPasswords: AppPasswordSummary[];
  csrfToken: string;
  problems?: string[];
  /** Values to re-show after a refused create. */
  draft?: { name: string; protocols: string[] };
  /** Set when an admin's webmail link opened this session: the page says so. */
  actingAdmin?: string;
  /** A local mailbox's own two-factor sign-in (absent when it is not offered: SSO, an admin acting). */
  twoFactor?: 'on' | 'off';
  /** An admin removed the mailbox's second factor since the owner last signed in. */
  twoFactorReset?: true;
}

export function PortalPage(props: PortalProps) {
  const { mailbox } = props;
  const draftProtocols = new Set(props.draft?.protocols ?? ['imap', 'smtp']);
  return (
    <Layout title="Your mailbox">
      {props.actingAdmin ? (
        <div class="error" role="status" id="acting-admin">
          An admin ({props.actingAdmin}) is acting for this mailbox: read-only, every step is audited.
        </div>
      ) : null}
      {props.twoFactorReset ? (
        <div class="error" role="status" id="tfa-reset-notice">
          An admin has reset your two-factor sign-in: your password alone signs you in and opens mail apps again. Set it
          up again below.
        </div>
      ) : null}
      <div class="topbar">
        <h1>{mailbox.name || mailbox.username}</h1>
        <form method="post" action="/logout">
          <input type="hidden" name="csrf" value={props.csrfToken} />
          <button type="submit" class="secondary" id="logout">
            Sign out
          </button>
        </form>
      </div>

      <section aria-labelledby="mailbox-heading">
        <h2 id="mailbox-heading">Mailbox</h2>
        <dl>
          <dt>Address</dt>
          <dd id="mailbox-address">{mailbox.username}</dd>
          <dt>Name</dt>
          <dd>{mailbox.name || '—'}</dd>
          <dt>Storage</dt>
          <dd>
            {formatBytes(mailbox.usedBytes)} used of{' '}
            {mailbox.quotaBytes > 0 ? formatBytes(mailbox.quotaBytes) : 'unlimited'}
          </dd>
          <dt>Signs in with</dt>
          <dd>{authSourceLabel(mailbox.authSource)}</dd>
          {props.twoFactor ? (
            <>
              <dt>Two-factor sign-in</dt>
              <dd id="two-factor">
                {props.twoFactor === 'on' ? (
                  'on: mail apps sign in with app passwords'
                ) : (
                  <a href="/tfa/enrol">set up</a>
                )}
              </dd>
            </>
          ) : null}
        </dl>
        <p>
          <a class="button" id="open-webmail" href={`/sogo-auth?login=${encodeURIComponent(mailbox.username)}`}>
            Open webmail
          </a>
        </p>
      </section>

      <section aria-labelledby="app-passwords-heading">
        <h2 id="app-passwords-heading">App passwords</h2>
        <p class="muted">
          Mail apps (phones, Thunderbird, Outlook) sign in with an app password instead of your main sign-in. Each one
          works only for the protocols you choose and can be revoked on its own.
        </p>
        {props.appPasswords.length === 0 ? (
          <p id="no-app-passwords">No app passwords yet.</p>
        ) : (
          <table id="app-passwords">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Protocols</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span class="muted">Action</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {props.appPasswords.map((appPassword) => (
                <tr data-app-password-id={String(appPassword.id)}>
                  <td>{appPassword.name}</td>
                  <td>{appPassword.protocols.map((p) => PROTOCOL_LABELS[p]).join(', ')}</td>
                  <td>{appPassword.created ? appPassword.created.toISOString().slice(0, 16).replace('T', ' ') : ''}</td>
                  <td>
                    <form method="post" action={`/app-passwords/${appPassword.id}/revoke`}>
                      <input type="hidden" name="csrf" value={props.csrfToken} />
                      <button type="submit" class="danger" aria-label={`Revoke ${appPassword.name}`}>
                        Revoke
                      </button>
                    </form>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}

        {mailbox.mayManageAppPasswords ? (
          <form method="post" action="/app-passwords">
            <h2>New app password</h2>
            {props.problems?.length ? (
              <div class="error" role="alert">
                {props.problems.map((problem) => (
                  <p>{problem}</p>
                ))}
              </div>
            ) : null}
            <input type="hidden" name="csrf" value={props.csrfToken} />
            <label for="app-password-name">Name</label>
            <input
              type="text"
              id="app-password-name"
              name="name"
              maxlength={255}
              required
              value={props.draft?.name ?? ''}
              placeholder="e.g. Phone"
            />
            <fieldset>
              <legend>Protocols</legend>
              {(Object.keys(PROTOCOL_CHOICES) as ProtocolChoice[]).map((protocol) => (
                <label>
                  <input type="checkbox" name="protocols" value={protocol} checked={draftProtocols.has(protocol)} />
                  {PROTOCOL_LABELS[protocol]}
                </label>
              ))}
            </fieldset>
            <button type="submit" id="create-app-password">
              Create app password
            </button>
          </form>
        ) : (
          <p class="muted">An admin has turned off app passwords for this mailbox.</p>
        )}
      </section>
    </Layout>
  );
}

export function AppPasswordCreatedPage(props: {
  name: string;
  secret: string;
  username: string;
  protocols: ProtocolChoice[];
}) {
  return (
    <Layout title="App password created">
      <section>
        <h1>App password created</h1>
        <p>
          Use this password for <strong>{props.name}</strong> (
          {props.protocols.map((p) => PROTOCOL_LABELS[p]).join(', ')}) with the user name{' '}
          <strong>{props.username}</strong>. It is shown only now: copy it into your app before you leave this page.
        </p>
        <p>
          <code class="secret" id="app-password-secret">
            {props.secret}
          </code>
        </p>
        <p>
          <a class="button secondary" href="/">
            Back to your mailbox
          </a>
        </p>
      </section>
    </Layout>
  );
}
