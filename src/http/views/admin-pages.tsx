// Admin sign-in pages: password, second factor, TOTP enrolment (QR code rendered here as SVG),
// recovery codes shown once. Plain forms, no scripts. The signed-in landing page is the console's
// (src/http/console/home.tsx).
import { raw } from 'hono/html';
import { Layout } from './layout.js';

function Problem(props: { message?: string | undefined }) {
  return props.message ? (
    <div class="error" role="alert">
      {props.message}
    </div>
  ) : null;
}

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
  return (
    <Layout title="Two-factor sign-in">
      <h1>Two-factor sign-in</h1>
      <Problem message={props.error} />
      <section>
        <form method="post" action="/admin/login/second-factor">
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
      <section>
        <p>Scan this code with an authenticator app, or type the key by hand.</p>
        <div id="totp-qr">{raw(props.qrSvg)}</div>
        <p>
          Key:{' '}
          <span class="secret" id="totp-secret">
            {props.secret}
          </span>
        </p>
        <form method="post" action="/admin/tfa/enrol">
          <input type="hidden" name="csrf" value={props.csrfToken} />
          <label for="code">The 6-digit code the app shows now</label>
          <input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required />
          <label for="name">Name of this authenticator (optional)</label>
          <input type="text" id="name" name="name" maxlength={64} />
          <p>
            <button type="submit">Confirm</button>
          </p>
        </form>
      </section>
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
        <ul id="recovery-codes">
          {props.codes.map((code) => (
            <li>
              <span class="secret">{code}</span>
            </li>
          ))}
        </ul>
        <p>
          <a class="button" href="/admin">
            Continue
          </a>
        </p>
      </section>
    </Layout>
  );
}
