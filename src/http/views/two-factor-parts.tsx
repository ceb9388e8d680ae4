// The pieces of two-factor sign-in that the admin and portal pages share: the error box, the
// code-after-password page, the TOTP enrolment block (QR code as SVG, the key, the confirmation
// form) and the recovery-code list. Each caller names its own form actions and wording.
import { raw } from 'hono/html';
import { Layout } from './layout.js';

export function Problem(props: { message?: string | undefined }) {
  return props.message ? (
    <div class="error" role="alert">
      {props.message}
    </div>
  ) : null;
}

/** The code asked after the password; `action` is where the form posts. */
export function TwoFactorCodePage(props: { action: string; csrfToken: string; error?: string | undefined }) {
  return (
    <Layout title="Two-factor sign-in">
      <h1>Two-factor sign-in</h1>
      <Problem message={props.error} />
      <section>
        <form method="post" action={props.action}>
          <input type="hidden" name="csrf" value={props.csrfToken} />
          <label for="code">Code from your authenticator app, or a recovery code</label>
          <input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required />
          <p>
            <button type="submit">Continue</button>
          </p>
        </form>
      </section>
    </Layout>
  );
}

/** The QR code, the key and the form that confirms the enrolment with a first code. */
export function TotpEnrolSection(props: {
  action: string;
  csrfToken: string;
  secret: string;
  qrSvg: string;
  submitLabel: string;
  submitId?: string;
}) {
  return (
    <section>
      <p>Scan this code with an authenticator app, or type the key by hand.</p>
      <div id="totp-qr">{raw(props.qrSvg)}</div>
      <p>
        Key:{' '}
        <span class="secret" id="totp-secret">
          {props.secret}
        </span>
      </p>
      <form method="post" action={props.action}>
        <input type="hidden" name="csrf" value={props.csrfToken} />
        <label for="code">The 6-digit code the app shows now</label>
        <input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required />
        <label for="name">Name of this authenticator (optional)</label>
        <input type="text" id="name" name="name" maxlength={64} />
        <p>
          <button type="submit" {...(props.submitId ? { id: props.submitId } : {})}>
            {props.submitLabel}
          </button>
        </p>
      </form>
    </section>
  );
}

export function RecoveryCodeList(props: { codes: readonly string[] }) {
  return (
    <ul id="recovery-codes">
      {props.codes.map((code) => (
        <li>
          <span class="secret">{code}</span>
        </li>
      ))}
    </ul>
  );
}
