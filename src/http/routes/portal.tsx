// The user portal: GET / (the signed-in mailbox and its app passwords), POST /app-passwords
// (create; the secret is rendered once, never stored in clear or put in a URL) and
// POST /app-passwords/:id/revoke. Every POST is same-origin checked and carries the session's token.
import { type Context, Hono } from 'hono';
import {
  type AppPasswordSummary,
  createAppPassword,
  listOwnAppPasswords,
  revokeAppPassword,
} from '../../app-passwords/app-passwords.js';
import type { Deps } from '../../deps.js';
import { mailboxActor, recordAudit } from '../../storage/audit.js';
import { findPortalMailbox, type PortalMailbox } from '../../storage/mailboxes.js';
import { clientIp } from '../client-ip.js';
import { CROSS_SITE_REFUSAL, renderRefusal } from '../refusal-page.js';
import { pageArea } from '../render-error.js';
import { destroyWebSession, getWebSession, isSameOrigin, isValidCsrfToken, type WebSession } from '../session.js';
import { AppPasswordCreatedPage, PortalPage, type PortalProps } from '../views/portal-page.js';
import { portalTwoFactorState } from './portal-two-factor.js';

const GONE = {
  status: 403,
  title: 'Mailbox unavailable',
  message: 'Your mailbox or its domain is disabled or no longer exists, so you have been signed out. Ask an admin.',
} as const;

export function createPortalRoutes(deps: Deps) {
  const app = new Hono();

  /** The session and its (still usable) mailbox, or the response to send instead. */
  async function signedIn(c: Context): Promise<{ session: WebSession; mailbox: PortalMailbox } | Response> {
    const session = await getWebSession(c);
    if (!session) return c.redirect('/login', 303);
    const mailbox = await findPortalMailbox(deps.db, session.username);
    if (!mailbox) {
      await destroyWebSession(c);
      return renderRefusal(c, GONE);
    }
    return { session, mailbox };
  }

  /** A POST from our own page, by the signed-in user; otherwise the refusal to send. */
  async function signedInPost(c: Context, form: Record<string, unknown>) {
    if (!isSameOrigin(c, deps.config.publicUrl)) return renderRefusal(c, CROSS_SITE_REFUSAL);
    const current = await signedIn(c);
    if (current instanceof Response) return current;
    if (!isValidCsrfToken(current.session, form.csrf)) return renderRefusal(c, CROSS_SITE_REFUSAL);
    // An admin acting for the mailbox may look and open webmail, not create or revoke credentials.
    if (current.session.via === 'admin') {
      return renderRefusal(
        c,
        {
          status: 403,
          title: 'Read-only',
          message: 'An admin acting for this mailbox cannot change its app passwords.',
        },
        { href: '/', label: 'Back' },
      );
    }
    return current;
  }

  const renderPortal = (c: Context, props: PortalProps, status: 200 | 400 = 200) => {
    c.header('cache-control', 'no-store');
    return c.html(<PortalPage {...props} />, status);
  };

  app.get('/', async (c) => {
    const current = await signedIn(c);
    if (current instanceof Response) return current;
    const appPasswords: AppPasswordSummary[] = await listOwnAppPasswords(deps.db, current.mailbox.username);
    return renderPortal(c, {
      mailbox: current.mailbox,
      appPasswords,
      csrfToken: current.session.csrfToken,
      ...(current.session.actingAdmin ? { actingAdmin: current.session.actingAdmin } : {}),
      ...(await portalTwoFactorState(deps, c, current.mailbox, current.session)),
    });
  });

  app.post('/app-passwords', async (c) => {
    const form = await c.req.parseBody({ all: true });
    const current = await signedInPost(c, form);
    if (current instanceof Response) return current;
    const { mailbox, session } = current;
    if (!mailbox.mayManageAppPasswords) {
      return renderRefusal(
        c,
        {
          status: 403,
          title: 'App passwords are off',
          message: 'An admin has turned off app passwords for this mailbox.',
        },
        { href: '/', label: 'Back' },
      );
    }
    const outcome = await createAppPassword(
      { db: deps.db, hashPool: deps.hashPool, passwordScheme: deps.config.passwordScheme },
      { mailbox: mailbox.username, name: form.name, protocols: form.protocols },
    );
    if (!outcome.ok) {
      const appPasswords = await listOwnAppPasswords(deps.db, mailbox.username);
      const protocols = ([] as unknown[])
        .concat(form.protocols ?? [])
        .filter((p): p is string => typeof p === 'string');
      return renderPortal(
        c,
        {
          mailbox,
          appPasswords,
          csrfToken: session.csrfToken,
          problems: outcome.problems,
          draft: { name: typeof form.name === 'string' ? form.name : '', protocols },
        },
        400,
      );
    }
    const ip = clientIp(c);
    await recordAudit(deps.db, {
      actor: mailboxActor(session.username),
      action: 'app_password.create',
      target: session.username,
      detail: { id: outcome.id, name: outcome.name, protocols: outcome.protocols },
      ...(ip ? { ip } : {}),
    });
    c.header('cache-control', 'no-store');
    return c.html(
      <AppPasswordCreatedPage
        name={outcome.name}
        secret={outcome.secret}
        username={mailbox.username}
        protocols={outcome.protocols}
      />,
    );
  });

  app.post('/app-passwords/:id/revoke', async (c) => {
    const form = await c.req.parseBody();
    const current = await signedInPost(c, form);
    if (current instanceof Response) return current;
    const id = Number(c.req.param('id'));
    const revoked = await revokeAppPassword(deps.db, current.mailbox.username, id);
    if (!revoked) {
      return renderRefusal(
        c,
        { status: 404, title: 'No such app password', message: 'This app password does not exist or is not yours.' },
        { href: '/', label: 'Back' },
      );
    }
    const ip = clientIp(c);
    await recordAudit(deps.db, {
      actor: mailboxActor(current.session.username),
      action: 'app_password.revoke',
      target: current.session.username,
      detail: { id },
      ...(ip ? { ip } : {}),
    });
    return c.redirect('/', 303);
  });

  return pageArea(app);
}
