// Admin sign-in on the web listener: GET/POST /admin/login (password), /admin/login/second-factor
// (TOTP or recovery code), /admin/tfa/enrol (set up TOTP; required first when enforced),
// POST /admin/logout. The console behind it (GET /admin and below) lives in src/http/console/. Decisions live in src/admin/; this file moves forms and cookies.
import { type Context, Hono } from 'hono';
import { checkAdminPassword, completeAdminSignIn } from '../../admin/admin-sign-in.js';
import { checkSecondFactor, confirmTotpEnrolment, startTotpEnrolment } from '../../admin/two-factor.js';
import { acknowledgeTwoFactorReset } from '../../admin/two-factor-reset.js';
import type { Deps } from '../../deps.js';
import type { RateLimiter } from '../../rate-limit/limiter.js';
import { findAdmin } from '../../storage/admins.js';
import { recordAudit } from '../../storage/audit.js';
import { adminAuditActor } from '../../storage/audit-actors.js';
import { type AdminSession, type AdminSessionStore, isValidAdminCsrf } from '../admin-session.js';
import { clientIp } from '../client-ip.js';
import { CROSS_SITE_REFUSAL, renderRefusal } from '../refusal-page.js';
import { pageArea } from '../render-error.js';
import { isSameOrigin } from '../session.js';
import { AdminLoginPage, EnrolPage, RecoveryCodesPage, SecondFactorPage } from '../views/admin-pages.js';

export function createAdminLoginRoutes(
  deps: Deps,
  options: { sessions: AdminSessionStore; limiter: RateLimiter; now?: () => number },
) {
  const app = new Hono();
  const { sessions, limiter } = options;
  const signInDeps = { db: deps.db, verifier: deps.verifier, limiter, log: deps.log };
  const factorDeps = {
    db: deps.db,
    redis: deps.redis,
    limiter,
    log: deps.log,
    redisPrefix: deps.config.redisPrefix,
    ...(options.now ? { now: options.now } : {}),
  };

  const page = (c: Context, body: Parameters<Context['html']>[0], status: 200 | 400 | 401 | 403 | 429 = 200) => {
    c.header('cache-control', 'no-store');
    return c.html(body, status);
  };
  const ipOf = (c: Context) => {
    const ip = clientIp(c);
    return ip ? { ip } : {};
  };

  /** A form post from our own page, carrying the session's token; otherwise undefined. */
  async function postedSession(c: Context, form: Record<string, unknown>, stages: AdminSession['stage'][]) {
    if (!isSameOrigin(c, deps.config.publicUrl)) return undefined;
    const session = await sessions.read(c);
    if (!session || !stages.includes(session.stage) || !isValidAdminCsrf(session, form.csrf)) return undefined;
    return session;
  }

  /** The account behind a session, if it still exists and is active (a disabled admin is signed out). */
  async function liveAccount(c: Context, session: AdminSession) {
    const account = await findAdmin(deps.db, session.username);
    if (!account?.active) {
      await sessions.destroy(c);
      return undefined;
    }
    return account;
  }

  async function finish(c: Context, username: string, secondFactor: 'totp' | 'recovery_code' | 'none') {
    await sessions.start(c, { username, stage: 'full', secondFactor });
    await completeAdminSignIn(signInDeps, { username, secondFactor, ...ipOf(c) });
  }

  app.get('/admin/login', async (c) => {
    const session = await sessions.read(c);
    if (session?.stage === 'full') return c.redirect('/admin', 303);
    return page(c, <AdminLoginPage />);
  });

  app.post('/admin/login', async (c) => {
    if (!isSameOrigin(c, deps.config.publicUrl)) return renderRefusal(c, CROSS_SITE_REFUSAL);
    const form = await c.req.parseBody();
    const username = typeof form.username === 'string' ? form.username.slice(0, 255) : '';
    const password = typeof form.password === 'string' ? form.password : '';
    const outcome = await checkAdminPassword(signInDeps, { username, password, ...ipOf(c) });
    if (!outcome.ok) return page(c, <AdminLoginPage error={outcome.message} username={username} />, outcome.status);
    if (outcome.next === 'full') {
      await finish(c, outcome.username, 'none');
      return c.redirect('/admin', 303);
    }
    await sessions.start(c, { username: outcome.username, stage: outcome.next });
    return c.redirect(outcome.next === 'second_factor' ? '/admin/login/second-factor' : '/admin/tfa/enrol', 303);
  });

  app.get('/admin/login/second-factor', async (c) => {
    const session = await sessions.read(c);
    if (session?.stage !== 'second_factor') return c.redirect('/admin/login', 303);
    return page(c, <SecondFactorPage csrfToken={session.csrfToken} />);
  });

  app.post('/admin/login/second-factor', async (c) => {
    const form = await c.req.parseBody();
    const session = await postedSession(c, form, ['second_factor']);
    if (!session) return renderRefusal(c, CROSS_SITE_REFUSAL, { href: '/admin/login', label: 'Sign in again' });
    const code = typeof form.code === 'string' ? form.code : '';
    const outcome = await checkSecondFactor(factorDeps, { username: session.username, code, ...ipOf(c) });
    if (!outcome.ok) {
      return page(c, <SecondFactorPage csrfToken={session.csrfToken} error={outcome.message} />, outcome.status);
    }
    if (!(await liveAccount(c, session))) return c.redirect('/admin/login', 303);
    await finish(c, session.username, outcome.factor);
    return c.redirect('/admin', 303);
  });

  /**
   * The one TOTP enrolment page (shown again, with the problem, after a wrong code). A pending
   * "your second factor was reset" notice is shown here and then counts as told.
   */
  async function enrolPage(c: Context, session: AdminSession, problem?: { message: string; status: 400 | 401 | 429 }) {
    const pending = await startTotpEnrolment(factorDeps, session.username);
    const wasReset = await acknowledgeTwoFactorReset(deps.db, { username: session.username, ...ipOf(c) });
    return page(
      c,
      <EnrolPage
        csrfToken={session.csrfToken}
        secret={pending.secret}
        qrSvg={pending.qrSvg}
        isRequired={session.stage === 'enrol'}
        wasReset={wasReset}
        {...(problem ? { error: problem.message } : {})}
      />,
      problem?.status ?? 200,
    );
  }

  app.get('/admin/tfa/enrol', async (c) => {
    const session = await sessions.read(c);
    if (session?.stage !== 'enrol' && session?.stage !== 'full') return c.redirect('/admin/login', 303);
    if (!(await liveAccount(c, session))) return c.redirect('/admin/login', 303);
    return enrolPage(c, session);
  });

  app.post('/admin/tfa/enrol', async (c) => {
    const form = await c.req.parseBody();
    const session = await postedSession(c, form, ['enrol', 'full']);
    if (!session) return renderRefusal(c, CROSS_SITE_REFUSAL, { href: '/admin/login', label: 'Sign in again' });
    if (!(await liveAccount(c, session))) return c.redirect('/admin/login', 303);
    const outcome = await confirmTotpEnrolment(factorDeps, {
      username: session.username,
      code: typeof form.code === 'string' ? form.code : '',
      ...(typeof form.name === 'string' ? { name: form.name } : {}),
      ...(session.stage === 'enrol' ? { signingIn: true } : {}),
      ...ipOf(c),
    });
    if (!outcome.ok) return enrolPage(c, session, outcome);
    // An enforced enrolment was the last step of signing in.
    if (session.stage === 'enrol') await finish(c, session.username, 'totp');
    return page(c, <RecoveryCodesPage codes={outcome.recoveryCodes} />);
  });

  app.post('/admin/logout', async (c) => {
    const form = await c.req.parseBody();
    const session = await postedSession(c, form, ['second_factor', 'enrol', 'full']);
    if (!session) return renderRefusal(c, CROSS_SITE_REFUSAL, { href: '/admin', label: 'Back' });
    await sessions.destroy(c);
    await recordAudit(deps.db, {
      actor: await adminAuditActor(deps.db, session.username),
      action: 'admin.logout',
      target: session.username,
      ...ipOf(c),
    });
    return c.redirect('/admin/login', 303);
  });

  return pageArea(app);
}
