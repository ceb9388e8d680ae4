// The sign-in page: single sign-on (when configured) and the mailbox-password form.
import { Layout } from './layout.js';

/** `next`: a local path (already checked with safeNextPath) to continue to after sign-in. */
export function LoginPage(props: { hasSso: boolean; error?: string; username?: string; next?: string }) {
  const ssoHref = props.next ? `/login/sso?next=${encodeURIComponent(props.next)}` : '/login/sso';
  return (
    <Layout title="Sign in">
      <h1>Sign in to your mailbox</h1>
      {props.error ? (
        <div class="error" role="alert">
          {props.error}
        </div>
      ) : null}
      {props.hasSso ? (
        <section>
          <h2>Single sign-on</h2>
          <a class="button" id="sso-login" href={ssoHref}>
            Sign in with single sign-on
          </a>
        </section>
      ) : null}
      <section>
        <h2>Mailbox password</h2>
        <form method="post" action="/login">
          {props.next ? <input type="hidden" name="next" value={props.next} /> : null}
          <label for="username">Email address</label>
          <input
            type="email"
            id="username"
            name="username"
            autocomplete="username"
            required
            value={props.username ?? ''}
          />
          <label for="password">Password</label>
          <input type="password" id="password" name="password" autocomplete="current-password" required />
          <p>
            <button type="submit" id="password-login">
              Sign in
            </button>
          </p>
        </form>
      </section>
    </Layout>
  );
}
