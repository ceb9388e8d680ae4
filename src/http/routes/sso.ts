// Browser sign-in: GET /login (page), POST /login (mailbox password), GET /login/sso → IdP,
// GET /login/sso/callback, POST /logout. Decisions live in login/sso-login.ts and
// login/password-login.ts (built once in deps.ts); this file only moves cookies, forms and pages.
import { Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { Deps } from '../../deps.js';
import { SSO_TRANSACTION_TTL_SECONDS } from '../../login/sso-login.js';
import { loadIdpSettings } from '../../sources/idp-settings.js';
import { mailboxActor, recordAudit } from '../../storage/audit.js';
import { clientIp } from '../client-ip.js';
import { safeNextPath } from '../next-path.js';
import { CROSS_SITE_REFUSAL, renderRefusal } from '../refusal-page.js';
import { pageArea } from '../render-error.js';
import {
  destroyWebSession,
  getWebSession,
  isCookieSecure,
  isSameOrigin,
  isValidCsrfToken,
  startWebSession,
} from '../session.js';
import { LoginPage } from '../views/login-page.js';
import { continuePortalSignIn } from './portal-two-factor.js';

/** Binds an SSO transaction to the browser that started it; lives only during the round trip. */
const PRELOGIN_COOKIE = 'postern_sso';
const PRELOGIN_PATH = '/login/sso';
/** Where an SSO sign-in continues to (a local path, checked again when used); same scope as above. */
const NEXT_COOKIE = 'postern_sso_next';

export function createSsoRoutes(deps: Deps) {
  const app = new Hono();
  const secure = isCookieSecure(deps.config);

  app.get('/login', async (c) => {
    const next = safeNextPath(c.req.query('next'));
    if (await getWebSession(c)) return c.redirect(next ?? '/', 303);
    const loaded = await loadIdpSettings(deps.db, deps.secretBox);
    c.header('cache-control', 'no-store');
    return c.html(LoginPage({ hasSso: loaded.state !== 'none', ...(next ? { next } : {}) }));
  });

  app.post('/login', async (c) => {
    if (!isSameOrigin(c, deps.config.publicUrl)) return renderRefusal(c, CROSS_SITE_REFUSAL);
    const form = await c.req.parseBody();
    const username = typeof form.username === 'string' ? form.username : '';
    const password = typeof form.password === 'string' ? form.password : '';
    const next = safeNextPath(form.next);
    const ip = clientIp(c);
    // Behind a trusted proxy this is the browser's address (POSTERN_TRUSTED_PROXIES); clients in
    // POSTERN_BAN_EXEMPT_NETWORKS are counted per user only.
    const outcome = await deps.passwordLogin.checkPassword({ username, password, ...(ip ? { ip } : {}) });
    if (!outcome.ok) {
      if (outcome.status === 401 || outcome.status === 429) {
        const loaded = await loadIdpSettings(deps.db, deps.secretBox);
        c.header('cache-control', 'no-store');
        return c.html(
          LoginPage({ hasSso: loaded.state !== 'none', error: outcome.message, username, ...(next ? { next } : {}) }),
          outcome.status,
        );
      }
      return renderRefusal(c, outcome);
    }
    // Signed in now, or (TOTP, or enrolment the two-factor policy enforces) sent on to the second step.
    return continuePortalSignIn(c, deps, { username: outcome.username, next });
  });

  app.get('/login/sso', async (c) => {
    const outcome = await deps.ssoLogin.beginSso();
    if (!outcome.ok) return renderRefusal(c, outcome);
    const prelogin = {
      httpOnly: true,
      // Lax: the IdP sends the browser back with a top-level GET, which carries Lax cookies.
      sameSite: 'Lax',
      secure,
      path: PRELOGIN_PATH,
      maxAge: SSO_TRANSACTION_TTL_SECONDS,
    } as const;
    setCookie(c, PRELOGIN_COOKIE, outcome.binding, prelogin);
    const next = safeNextPath(c.req.query('next'));
    if (next) setCookie(c, NEXT_COOKIE, next, prelogin);
    else deleteCookie(c, NEXT_COOKIE, prelogin);
    c.header('cache-control', 'no-store');
    return c.redirect(outcome.authorizationUrl, 302);
  });

  app.get('/login/sso/callback', async (c) => {
    const binding = getCookie(c, PRELOGIN_COOKIE);
    const next = safeNextPath(getCookie(c, NEXT_COOKIE));
    for (const name of [PRELOGIN_COOKIE, NEXT_COOKIE]) {
      deleteCookie(c, name, { path: PRELOGIN_PATH, secure, httpOnly: true, sameSite: 'Lax' });
    }
    const ip = clientIp(c);
    const outcome = await deps.ssoLogin.completeSso({
      callbackUrl: new URL(c.req.url),
      binding,
      ...(ip ? { ip } : {}),
    });
    if (!outcome.ok) return renderRefusal(c, outcome);
    await startWebSession(c, { username: outcome.username, via: 'sso' });
    return c.redirect(next ?? '/', 303);
  });

  app.post('/logout', async (c) => {
    if (!isSameOrigin(c, deps.config.publicUrl)) return renderRefusal(c, CROSS_SITE_REFUSAL);
    const session = await getWebSession(c);
    if (session) {
      const form = await c.req.parseBody();
      if (!isValidCsrfToken(session, form.csrf)) return renderRefusal(c, CROSS_SITE_REFUSAL);
      const ip = clientIp(c);
      await recordAudit(deps.db, {
        actor: mailboxActor(session.username),
        action: 'web.logout',
        target: session.username,
        ...(ip ? { ip } : {}),
      });
    }
    await destroyWebSession(c);
    return c.redirect('/login', 303);
  });

  return pageArea(app);
}
