// Admin sign-in pages: password, second factor, TOTP enrolment (QR code rendered here as SVG),
// recovery codes shown once. Plain forms, no scripts. The signed-in landing page is the console's
// (src/http/console/home.tsx).
import { Layout } from './layout.js';
import { Problem, RecoveryCodeList, TotpEnrolSection, TwoFactorCodePage } from './two-factor-parts.js';

export function AdminLoginPage(props: { error?: string; username?: string }) {
  return (
    <Layout title="Admin sign-in">
      <h1>Admin sign-in</h1>
      <Problem message={props.error} />
      <section>
        <form method="post" action="/admin/login">
          <label for="username">Username</label>
          <input
            type="text"
            id="username"
            name="username"
            autocomplete="username"
            required
            value={props.username ?? ''}
          />
          <label for="password">Password</label>
          <input type="password" id="password" name="password" autocomplete="current-password" required />
          <p>
            <button type="submit">Sign in</button>
          </p>
        </form>
      </section>
    </Layout>
  );
}

export function SecondFactorPage(props: { csrfToken: string; error?: string }) {
  return <TwoFactorCodePage action="/admin/login/second-factor" csrfToken={props.csrfToken} error={props.error} />;
}

export function EnrolPage(props: {
  csrfToken: string;
  secret: string;
  qrSvg: string;
  isRequired: boolean;
  wasReset: boolean;
  error?: string;
}) {
  return (
    <Layout title="Set up two-factor sign-in">
      <h1>Set up two-factor sign-in</h1>
      {props.wasReset ? (
        <div class="error" role="status" id="tfa-reset-notice">
          A superadmin has reset your two-factor sign-in. Set it up again.
        </div>
      ) : null}
      {props.isRequired ? <p>Two-factor sign-in is required for your account before you can continue.</p> : null}
      <Problem message={props.error} />
      <TotpEnrolSection
        action="/admin/tfa/enrol"
        csrfToken={props.csrfToken}
        secret={props.secret}
        qrSvg={props.qrSvg}
        submitLabel="Confirm"
      />
    </Layout>
  );
}

export function RecoveryCodesPage(props: { codes: readonly string[] }) {
  return (
    <Layout title="Recovery codes">
      <h1>Two-factor sign-in is set up</h1>
      <section>
        <p>
          Keep these recovery codes somewhere safe. Each one signs you in once if you lose your device. They are shown
          only now.
        </p>
        <RecoveryCodeList codes={props.codes} />
        <p>
          <a class="button" href="/admin">
            Continue
          </a>
        </p>
      </section>
    </Layout>
  );
}
