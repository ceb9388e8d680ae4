// The portal's two-factor sign-in for local mailboxes: GET/POST /login/second-factor (the code
// after the password), GET/POST /tfa/enrol (set up TOTP: voluntarily when signed in, or first
// thing when the policy enforces it), POST /tfa/app-passwords (an app password made on the
// enrolment page, before the bare password stops opening mail apps). A sign-in that is half done
// lives in its own short-lived cookie; the portal session starts only once it is complete.
// Decisions live in src/login/portal-two-factor.ts and src/admin/two-factor.ts.
// Long (~330 lines) because the half-done sign-in cookie ties these routes together; each
// route is thin and the decisions live in the two files named above.
import { timingSafeEqual } from 'node:crypto';
import { type Context, Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { checkSecondFactor, confirmTotpEnrolment, startTotpEnrolment } from '../../admin/two-factor.js';
import { acknowledgeMailboxTwoFactorReset } from '../../admin/two-factor-reset.js';
import { createAppPassword, listOwnAppPasswords, type ProtocolChoice } from '../../app-passwords/app-passwords.js';
import type { Deps } from '../../deps.js';
import { recordPortalFirstFactor, recordPortalSignIn } from '../../login/password-login.js';
import {
  createPendingSignIns,
  PENDING_SIGN_IN_SECONDS,
  type PendingSignIn,
  portalStepAfterPassword,
} from '../../login/portal-two-factor.js';
import { recordAudit } from '../../storage/audit.js';
import { findPortalMailbox, type PortalMailbox } from '../../storage/mailboxes.js';
import { findActiveTotp } from '../../storage/two-factor.js';
import { clientIp } from '../client-ip.js';
import { CROSS_SITE_REFUSAL, renderRefusal } from '../refusal-page.js';
import { pageArea } from '../render-error.js';
import {
  getWebSession,
  isCookieSecure,
  isSameOrigin,
  isValidCsrfToken,
  startWebSession,
  type WebSession,
} from '../session.js';
import { PortalEnrolPage, PortalRecoveryCodesPage, PortalSecondFactorPage } from '../views/portal-two-factor.js';

export const PENDING_COOKIE = 'postern_pending';

type PendingDeps = Pick<Deps, 'db' | 'redis' | 'config'>;

/** Constant-time comparison of a submitted form token with the pending sign-in's. */
function isPendingCsrf(record: PendingSignIn, submitted: unknown): boolean {
  if (typeof submitted !== 'string') return false;
  const a = Buffer.from(submitted);
  const b = Buffer.from(record.csrfToken);
  return a.length === b.length && timingSafeEqual(a, b);
}

const cookieOptions = (deps: PendingDeps) =>
  ({ httpOnly: true, sameSite: 'Strict', secure: isCookieSecure(deps.config), path: '/' }) as const;

/**
 * Called by the password sign-in once the password is right: the portal session starts now when
 * nothing else is needed; when a second factor (or its enforced enrolment) must follow, the
 * half-done sign-in is recorded and the browser sent on to it.
 */
export async function continuePortalSignIn(
  c: Context,
  deps: PendingDeps,
  input: { username: string; next?: string | undefined },
): Promise<Response> {
  const step = await portalStepAfterPassword(deps.db, input.username);
  const ip = clientIp(c);
  if (step === 'none') {
    await startWebSession(c, { username: input.username, via: 'password' });
    await recordPortalSignIn(deps.db, { username: input.username, secondFactor: 'none', ...(ip ? { ip } : {}) });
    return c.redirect(input.next ?? '/', 303);
  }
  if (step === 'unsupported') {
    await recordAudit(deps.db, {
      actor: { kind: 'mailbox', name: input.username },
      action: 'web.refused',
      target: input.username,
      detail: { reason: 'unsupported_second_factor' },
      ...(ip ? { ip } : {}),
    });
    return renderRefusal(c, UNSUPPORTED_SECOND_FACTOR);
  }
  await recordPortalFirstFactor(deps.db, { username: input.username, next: step, ...(ip ? { ip } : {}) });
  const pending = createPendingSignIns({ redis: deps.redis, redisPrefix: deps.config.redisPrefix });
  const { id } = await pending.create(
    { username: input.username, stage: step, ...(input.next ? { next: input.next } : {}) },
    getCookie(c, PENDING_COOKIE),
  );
  setCookie(c, PENDING_COOKIE, id, { ...cookieOptions(deps), maxAge: PENDING_SIGN_IN_SECONDS });
  c.header('cache-control', 'no-store');
  return c.redirect(step === 'second_factor' ? '/login/second-factor' : '/tfa/enrol', 303);
}

/**
 * What the portal page says about the mailbox's own second factor (nothing when not offered), and
 * whether an admin reset it since the last visit (told once: the notice then counts as given).
 */
export async function portalTwoFactorState(
  deps: Pick<Deps, 'db'>,
  c: Context,
  mailbox: Pick<PortalMailbox, 'username' | 'authSource'>,
  session: Pick<WebSession, 'via'>,
): Promise<{ twoFactor?: 'on' | 'off'; twoFactorReset?: true }> {
  if (mailbox.authSource !== 'mailcow' || session.via === 'admin') return {};
  const ip = clientIp(c);
  const wasReset = await acknowledgeMailboxTwoFactorReset(deps.db, {
    username: mailbox.username,
    ...(ip ? { ip } : {}),
  });
  return {
    twoFactor: (await findActiveTotp(deps.db, mailbox.username)).length > 0 ? 'on' : 'off',
    ...(wasReset ? { twoFactorReset: true as const } : {}),
  };
}

const UNSUPPORTED_SECOND_FACTOR = {
  status: 403,
  title: 'Second factor not supported here',
  message:
    'Your mailbox uses a kind of two-factor sign-in (such as a security key) that this portal cannot check, so your password alone does not open it. Ask an admin to reset your two-factor sign-in.',
} as const;

const LOCAL_ONLY = {
  status: 403,
  title: 'Not available',
  message:
    'Two-factor sign-in here is for mailboxes that sign in with their own password. Mailboxes that use single sign-on get it from their identity provider.',
} as const;

const READ_ONLY = {
  status: 403,
  title: 'Read-only',
  message: 'An admin acting for this mailbox cannot change its sign-in.',
} as const;

/** Whoever is enrolling: a signed-in local mailbox, or a sign-in the policy holds at enrolment. */
interface Enrolee {
  mailbox: PortalMailbox;
  csrfToken: string;
  /** Set when enrolment is the last step of signing in (the pending record's cookie id). */
  pendingId?: string;
  next?: string;
}

export function createPortalTwoFactorRoutes(deps: Deps, options: { now?: () => number } = {}) {
  const app = new Hono();
  const limiter = deps.portalCodeLimiter;
  const pending = createPendingSignIns({
    redis: deps.redis,
    redisPrefix: deps.config.redisPrefix,
    ...(options.now ? { now: options.now } : {}),
  });
  const factorDeps = {
    db: deps.db,
    redis: deps.redis,
    limiter,
    log: deps.log,
    redisPrefix: deps.config.redisPrefix,
    subject: 'mailbox' as const,
    ...(options.now ? { now: options.now } : {}),
  };
  const appPasswordDeps = { db: deps.db, hashPool: deps.hashPool, passwordScheme: deps.config.passwordScheme };

  const ipOf = (c: Context) => {
    const ip = clientIp(c);
    return ip ? { ip } : {};
  };

  async function pendingOf(c: Context, stage: PendingSignIn['stage']) {
    const id = getCookie(c, PENDING_COOKIE);
    const record = id ? await pending.read(id) : undefined;
    return id && record?.stage === stage ? { id, record } : undefined;
  }

  async function endPending(c: Context, id: string) {
    await pending.destroy(id);
    deleteCookie(c, PENDING_COOKIE, cookieOptions(deps));
  }

  /** The second factor is done (or enrolled): the portal session starts, and only now is it a sign-in. */
  async function completeSignIn(c: Context, username: string, factor: 'totp' | 'recovery_code') {
    await startWebSession(c, { username, via: 'password' });
    await limiter.recordSuccess({ ip: clientIp(c) ?? '', username });
    await recordPortalSignIn(deps.db, { username, secondFactor: factor, ...ipOf(c) });
  }

  const page = (c: Context, body: Parameters<Context['html']>[0], status: 200 | 400 | 401 | 429 = 200) => {
    c.header('cache-control', 'no-store');
    return c.html(body, status);
  };

  app.get('/login/second-factor', async (c) => {
    const current = await pendingOf(c, 'second_factor');
    if (!current) return c.redirect('/login', 303);
    return page(c, <PortalSecondFactorPage csrfToken={current.record.csrfToken} />);
  });

  app.post('/login/second-factor', async (c) => {
    if (!isSameOrigin(c, deps.config.publicUrl)) return renderRefusal(c, CROSS_SITE_REFUSAL);
    const form = await c.req.parseBody();
    const current = await pendingOf(c, 'second_factor');
    if (!current || !isPendingCsrf(current.record, form.csrf)) {
      return renderRefusal(c, CROSS_SITE_REFUSAL, { href: '/login', label: 'Sign in again' });
    }
    const { record } = current;
    const code = typeof form.code === 'string' ? form.code : '';
    const outcome = await checkSecondFactor(factorDeps, { username: record.username, code, ...ipOf(c) });
    if (!outcome.ok) {
      return page(c, <PortalSecondFactorPage csrfToken={record.csrfToken} error={outcome.message} />, outcome.status);
    }
    await endPending(c, current.id);
    // Disabled while the code was being typed: no session.
    if (!(await findPortalMailbox(deps.db, record.username))) return c.redirect('/login', 303);
    await completeSignIn(c, record.username, outcome.factor);
    return c.redirect(record.next ?? '/', 303);
  });

  /** The enrolee behind this request, or the response to send instead. */
  async function enroleeOf(c: Context, form?: Record<string, unknown>): Promise<Enrolee | Response> {
    if (form && !isSameOrigin(c, deps.config.publicUrl)) return renderRefusal(c, CROSS_SITE_REFUSAL);
    const held = await pendingOf(c, 'enrol');
    if (held) {
      if (form && !isPendingCsrf(held.record, form.csrf)) return renderRefusal(c, CROSS_SITE_REFUSAL);
      const mailbox = await findPortalMailbox(deps.db, held.record.username);
      if (!mailbox) {
        await endPending(c, held.id);
        return c.redirect('/login', 303);
      }
      return {
        mailbox,
        csrfToken: held.record.csrfToken,
        pendingId: held.id,
        ...(held.record.next ? { next: held.record.next } : {}),
      };
    }
    const session = await getWebSession(c);
    if (!session) return c.redirect('/login', 303);
    if (form && !isValidCsrfToken(session, form.csrf)) return renderRefusal(c, CROSS_SITE_REFUSAL);
    if (session.via === 'admin') return renderRefusal(c, READ_ONLY, { href: '/', label: 'Back' });
    const mailbox = await findPortalMailbox(deps.db, session.username);
    if (!mailbox) return c.redirect('/login', 303);
    if (mailbox.authSource !== 'mailcow') return renderRefusal(c, LOCAL_ONLY, { href: '/', label: 'Back' });
    return { mailbox, csrfToken: session.csrfToken };
  }

  async function enrolPage(
    c: Context,
    who: Enrolee,
    extra: {
      error?: string;
      status?: 200 | 400 | 401 | 429;
      createdAppPassword?: { name: string; secret: string; protocols: ProtocolChoice[] };
      problems?: string[];
    } = {},
  ) {
    const enrolment = await startTotpEnrolment(factorDeps, who.mailbox.username);
    const wasReset = await acknowledgeMailboxTwoFactorReset(deps.db, { username: who.mailbox.username, ...ipOf(c) });
    const appPasswords = await listOwnAppPasswords(deps.db, who.mailbox.username);
    return page(
      c,
      <PortalEnrolPage
        csrfToken={who.csrfToken}
        username={who.mailbox.username}
        secret={enrolment.secret}
        qrSvg={enrolment.qrSvg}
        isRequired={who.pendingId !== undefined}
        wasReset={wasReset}
        mayManageAppPasswords={who.mailbox.mayManageAppPasswords}
        appPasswordCount={appPasswords.length}
        {...(extra.createdAppPassword ? { createdAppPassword: extra.createdAppPassword } : {})}
        {...(extra.problems ? { problems: extra.problems } : {})}
        {...(extra.error ? { error: extra.error } : {})}
      />,
      extra.status ?? 200,
    );
  }

  app.get('/tfa/enrol', async (c) => {
    const who = await enroleeOf(c);
    if (who instanceof Response) return who;
    return enrolPage(c, who);
  });

  app.post('/tfa/enrol', async (c) => {
    const form = await c.req.parseBody();
    const who = await enroleeOf(c, form);
    if (who instanceof Response) return who;
    const outcome = await confirmTotpEnrolment(factorDeps, {
      username: who.mailbox.username,
      code: typeof form.code === 'string' ? form.code : '',
      ...(typeof form.name === 'string' ? { name: form.name } : {}),
      ...(who.pendingId ? { signingIn: true } : {}),
      ...ipOf(c),
    });
    if (!outcome.ok) return enrolPage(c, who, { error: outcome.message, status: outcome.status });
    // An enforced enrolment was the last step of signing in.
    if (who.pendingId) {
      await endPending(c, who.pendingId);
      await completeSignIn(c, who.mailbox.username, 'totp');
    }
    return page(c, <PortalRecoveryCodesPage codes={outcome.recoveryCodes} />);
  });

  app.post('/tfa/app-passwords', async (c) => {
    const form = await c.req.parseBody({ all: true });
    const who = await enroleeOf(c, form);
    if (who instanceof Response) return who;
    if (!who.mailbox.mayManageAppPasswords) {
      return enrolPage(c, who, { error: 'An admin has turned off app passwords for this mailbox.', status: 400 });
    }
    const outcome = await createAppPassword(appPasswordDeps, {
      mailbox: who.mailbox.username,
      name: form.name,
      protocols: form.protocols,
    });
    if (!outcome.ok) return enrolPage(c, who, { problems: outcome.problems, status: 400 });
    await recordAudit(deps.db, {
      actor: { kind: 'mailbox', name: who.mailbox.username },
      action: 'app_password.create',
      target: who.mailbox.username,
      detail: { id: outcome.id, name: outcome.name, protocols: outcome.protocols, during: 'tfa_enrolment' },
      ...ipOf(c),
    });
    return enrolPage(c, who, {
      createdAppPassword: { name: outcome.name, secret: outcome.secret, protocols: outcome.protocols },
    });
  });

  return pageArea(app);
}
