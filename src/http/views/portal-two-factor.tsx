// Portal pages for a mailbox's two-factor sign-in: the code after the password, the TOTP
// enrolment (QR code as SVG, the warning that the bare password stops opening mail apps, an app
// password made right there), and the recovery codes shown once. Plain forms, no scripts.
import { PROTOCOL_CHOICES, type ProtocolChoice } from '../../app-passwords/app-passwords.js';
import { Layout } from './layout.js';
import { Problem, RecoveryCodeList, TotpEnrolSection, TwoFactorCodePage } from './two-factor-parts.js';

const PROTOCOL_LABELS: Record<ProtocolChoice, string> = {
  imap: 'IMAP',
  pop3: 'POP3',
  smtp: 'SMTP',
  sieve: 'Sieve',
  dav: 'CalDAV/CardDAV',
  eas: 'ActiveSync',
};

export function PortalSecondFactorPage(props: { csrfToken: string; error?: string }) {
  return <TwoFactorCodePage action="/login/second-factor" csrfToken={props.csrfToken} error={props.error} />;
}

export interface PortalEnrolProps {
  csrfToken: string;
  username: string;
  secret: string;
  qrSvg: string;
  /** The policy requires it: signing in continues only after enrolment. */
  isRequired: boolean;
  /** An admin reset the mailbox's second factor since the owner last signed in. */
  wasReset: boolean;
  mayManageAppPasswords: boolean;
  /** How many app passwords the mailbox has (so the page can say none would keep mail apps working). */
  appPasswordCount: number;
  /** An app password created on this page, shown once. */
  createdAppPassword?: { name: string; secret: string; protocols: ProtocolChoice[] };
  problems?: string[];
  error?: string;
}

export function PortalEnrolPage(props: PortalEnrolProps) {
  return (
    <Layout title="Set up two-factor sign-in">
      <h1>Set up two-factor sign-in</h1>
      {props.isRequired ? <p>Two-factor sign-in is required for your mailbox before you can continue.</p> : null}
      <Problem message={props.error} />
      <section aria-labelledby="mail-apps-heading" id="mail-apps-warning">
        <h2 id="mail-apps-heading">Before you confirm: mail apps need app passwords</h2>
        <p>
          Once two-factor sign-in is on, your mailbox password alone no longer works for mail apps: IMAP, POP3, SMTP,
          Sieve, CalDAV/CardDAV and ActiveSync refuse it. Only app passwords work there. Phones, Thunderbird or Outlook
          that use your mailbox password will stop receiving and sending mail until you give them an app password.
        </p>
        <p id="app-password-count">
          {props.appPasswordCount === 0
            ? 'You have no app passwords yet.'
            : `You have ${props.appPasswordCount} app password${props.appPasswordCount === 1 ? '' : 's'}.`}
        </p>
        {props.createdAppPassword ? (
          <div role="status" id="created-app-password">
            <p>
              App password for <strong>{props.createdAppPassword.name}</strong> (
              {props.createdAppPassword.protocols.map((p) => PROTOCOL_LABELS[p]).join(', ')}), user name{' '}
              <strong>{props.username}</strong>. It is shown only now: copy it into your app.
            </p>
            <p>
              <code class="secret" id="app-password-secret">
                {props.createdAppPassword.secret}
              </code>
            </p>
          </div>
        ) : null}
        {props.mayManageAppPasswords ? (
          <form method="post" action="/tfa/app-passwords">
            {props.problems?.length ? (
              <div class="error" role="alert">
                {props.problems.map((problem) => (
                  <p>{problem}</p>
                ))}
              </div>
            ) : null}
            <input type="hidden" name="csrf" value={props.csrfToken} />
            <label for="app-password-name">Name of a new app password</label>
            <input type="text" id="app-password-name" name="name" maxlength={255} required placeholder="e.g. Phone" />
            <fieldset>
              <legend>Protocols</legend>
              {(Object.keys(PROTOCOL_CHOICES) as ProtocolChoice[]).map((protocol) => (
                <label>
                  <input
                    type="checkbox"
                    name="protocols"
                    value={protocol}
                    checked={protocol === 'imap' || protocol === 'smtp'}
                  />
                  {PROTOCOL_LABELS[protocol]}
                </label>
              ))}
            </fieldset>
            <button type="submit" class="secondary" id="create-app-password">
              Create app password
            </button>
          </form>
        ) : (
          <p class="muted">An admin has turned off app passwords for this mailbox: ask them before you continue.</p>
        )}
      </section>
      <TotpEnrolSection
        action="/tfa/enrol"
        csrfToken={props.csrfToken}
        secret={props.secret}
        qrSvg={props.qrSvg}
        submitLabel="Turn on two-factor sign-in"
        submitId="confirm-totp"
      />
    </Layout>
  );
}

export function PortalRecoveryCodesPage(props: { codes: readonly string[] }) {
  return (
    <Layout title="Recovery codes">
      <h1>Two-factor sign-in is on</h1>
      <section>
        <p>
          Keep these recovery codes somewhere safe. Each one signs you in to this portal once if you lose your device.
          They are shown only now.
        </p>
        <RecoveryCodeList codes={props.codes} />
        <p>From now on mail apps sign in with app passwords only.</p>
        <p>
          <a class="button" href="/">
            Continue to your mailbox
          </a>
        </p>
      </section>
    </Layout>
  );
}
