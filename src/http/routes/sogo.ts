// The SOGo handoff over HTTP. Web listener: GET /sogo-auth?login=<user> mints the handoff cookie
// and sends the browser to SOGo. Internal listener: GET /sogo/verify answers nginx's auth_request
// with the identity SOGo trusts. Decisions live in login/sogo-handoff.ts (deps.sogoHandoff) and,
// for DAV/EAS, in the passdb's checkMailLogin (mail-login-check.ts); this file only moves cookies
// and headers, and never logs either.
import { isIP } from 'node:net';
import { type Context, Hono } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import type { Deps } from '../../deps.js';
import { HANDOFF_COOKIE, WEBMAIL_COOKIE, WEBMAIL_COOKIE_PATH } from '../../login/sogo-handoff.js';
import { clientIp } from '../client-ip.js';
import { checkObservedMailLogin, type ObservedMailLoginDeps } from '../mail-login-check.js';
import { renderRefusal } from '../refusal-page.js';
import { pageArea } from '../render-error.js';
import { getWebSession, getWebSessionRef, isCookieSecure, startWebSession } from '../session.js';

/**
 * Response headers of /sogo/verify. nginx copies them with auth_request_set into the request to
 * SOGo. X-User / X-Auth / X-Auth-Type are the names mailcow's sogo-auth.php answers with, so
 * mailcow's own nginx template works unchanged; X-Webobjects-Remote-User is the header SOGo reads.
 */
export const VERIFY_HEADERS = {
  remoteUser: 'X-Webobjects-Remote-User',
  user: 'X-User',
  auth: 'X-Auth',
  authType: 'X-Auth-Type',
  /** A complete Set-Cookie value (set or expire postern_webmail) for nginx to add to the response. */
  webmailCookie: 'X-Postern-Webmail-Cookie',
  /** A complete Set-Cookie value expiring the handoff cookie. */
  handoffCookie: 'X-Postern-Handoff-Cookie',
  /** On a refused DAV/EAS request: the WWW-Authenticate value nginx answers with (a 401, not a redirect). */
  challenge: 'X-Postern-Challenge',
} as const;

/**
 * The identity headers for SOGo. Header values are bytes, and SOGo (SOPE's WOSimpleHTTPParser.m)
 * turns them into strings with GNUstep's default C-string encoding: Debian's sogod 5.8 read them as
 * Latin-1 in test/e2e/sogo-non-latin.test.ts (UTF-8 bytes of a name got 403), so a name beyond
 * U+00FF cannot be written there at all (Node refuses it: "Cannot convert argument to a
 * ByteString"), and a Latin-1 one depends on that encoding. The Basic
 * pair of Authorization, though, is base64 and decoded as UTF-8 whatever the locale
 * (NGHttpHeaderFields.m, NGConcreteHttpBasicCredentials; NGBase64Coding.m), and without an
 * x-webobjects-remote-user header SOPE takes the user from that pair (WOHttpTransaction.m; nginx
 * passes no header for an empty value). So a name that is not printable ASCII is carried only in
 * Authorization, and Authorization always names the canonical mailbox: SOGoProxyAuthenticator.m
 * takes the password only when the pair starts with "<x-webobjects-remote-user>:".
 */
function setSogoIdentity(c: Context, username: string, password: string): void {
  if (/^[\x21-\x7e]+$/.test(username)) {
    c.header(VERIFY_HEADERS.remoteUser, username);
    c.header(VERIFY_HEADERS.user, username);
  }
  c.header(VERIFY_HEADERS.auth, `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`);
  c.header(VERIFY_HEADERS.authType, 'Basic');
}

/** The client's own Authorization header, which nginx passes under this name (its own is the token). */
const ORIGINAL_AUTHORIZATION = 'x-original-authorization';
const BASIC_CHALLENGE = 'Basic realm="SOGo", charset="UTF-8"';

/**
 * CalDAV/CardDAV and ActiveSync clients sign in with HTTP Basic on every request, as with
 * mailcow's sogo-auth.php; the browser's webmail uses the handoff. By the original URI.
 */
function basicAuthServiceOf(uri: string | undefined): 'DAV' | 'EAS' | undefined {
  if (!uri) return undefined;
  if (/^(\/SOGo)?\/dav(\/|\?|$)/i.test(uri)) return 'DAV';
  if (/^(\/SOGo)?\/Microsoft-Server-ActiveSync(\/|\?|$)/i.test(uri)) return 'EAS';
  return undefined;
}

/** user and password of a `Basic` header (UTF-8, split at the first colon), or undefined. */
function basicCredentials(header: string | undefined): { username: string; password: string } | undefined {
  const match = header ? /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header) : null;
  if (!match) return undefined;
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function cookieLine(name: string, value: string, maxAgeSeconds: number, secure: boolean): string {
  // Path=/SOGo: only the webmail location sees these cookies; HttpOnly: SOGo's scripts cannot read
  // them; Lax: the top-level redirect from /sogo-auth carries them, cross-site subrequests do not.
  return `${name}=${value}; Max-Age=${maxAgeSeconds}; Path=${WEBMAIL_COOKIE_PATH}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

/** GET /sogo-auth on the web listener (mount after webSessions). */
export function createSogoRoutes(deps: Deps) {
  const app = new Hono();
  const handoff = deps.sogoHandoff;
  const secure = isCookieSecure(deps.config);

  if (deps.config.sogoNetworks.length === 0) {
    deps.log.warn('POSTERN_SOGO_NETWORKS is empty: webmail handoffs work, but SOGo cannot log into IMAP with them');
  }
  if (
    /^https?:/.test(deps.config.webmailUrl) &&
    new URL(deps.config.webmailUrl).origin !== new URL(deps.config.publicUrl).origin
  ) {
    deps.log.warn(
      'POSTERN_WEBMAIL_URL is on another origin than POSTERN_PUBLIC_URL: the handoff cookie will not reach SOGo',
    );
  }

  // An admin's webmail link (POST /api/v1/mailboxes/:username/webmail-link): a read-only portal
  // session for the mailbox, marked as the admin's, then the usual handoff.
  app.get('/sogo-auth/admin/:ticket', async (c) => {
    c.header('cache-control', 'no-store');
    if (deps.config.adminWebmail !== 'on') {
      return renderRefusal(c, { status: 404, title: 'Not available', message: 'Admin webmail links are off.' });
    }
    const ip = clientIp(c);
    const redeemed = await handoff.redeemAdminTicket({ ticket: c.req.param('ticket'), ...(ip ? { ip } : {}) });
    if (!redeemed.ok) {
      return renderRefusal(c, {
        status: 403,
        title: 'Link not valid',
        message: 'This webmail link is unknown, expired or was already used, or the mailbox cannot open webmail now.',
      });
    }
    await startWebSession(c, { username: redeemed.username, via: 'admin', actingAdmin: redeemed.actingAdmin });
    return c.redirect(`/sogo-auth?login=${encodeURIComponent(redeemed.username)}`, 303);
  });

  app.get('/sogo-auth', async (c) => {
    const login = c.req.query('login') ?? '';
    const ip = clientIp(c);
    const session = await getWebSession(c);
    const portalRef = getWebSessionRef(c);
    if (!session || !portalRef) {
      await handoff.recordNoSession({ login, ...(ip ? { ip } : {}) });
      const back = `/sogo-auth${login ? `?login=${encodeURIComponent(login)}` : ''}`;
      c.header('cache-control', 'no-store');
      return c.redirect(`/login?next=${encodeURIComponent(back)}`, 303);
    }
    const outcome = await handoff.openWebmail({
      sessionUser: session.username,
      login,
      portalRef,
      ...(ip ? { ip } : {}),
      ...(session.actingAdmin ? { actingAdmin: session.actingAdmin } : {}),
    });
    if (!outcome.ok) return renderRefusal(c, outcome, { href: '/', label: 'Back to the portal' });
    setCookie(c, HANDOFF_COOKIE, outcome.secret, {
      path: WEBMAIL_COOKIE_PATH,
      httpOnly: true,
      sameSite: 'Lax',
      secure,
      maxAge: outcome.ttlSeconds,
    });
    c.header('cache-control', 'no-store');
    return c.redirect(deps.config.webmailUrl, 303);
  });

  return pageArea(app);
}

/** The client as nginx saw it: X-Real-IP from our own nginx (this listener is token-guarded), else the peer. */
function originalClientIp(c: Context): string | undefined {
  const forwarded = c.req.header('x-real-ip')?.trim();
  if (forwarded && isIP(forwarded)) return forwarded;
  return clientIp(c);
}

/** GET /sogo/verify on the internal listener (mount behind requireInternalToken). */
export function createSogoVerifyRoutes(deps: Deps, mailLogin: ObservedMailLoginDeps) {
  const app = new Hono();
  const handoff = deps.sogoHandoff;
  const secure = isCookieSecure(deps.config);

  app.get('/sogo/verify', async (c) => {
    const ip = originalClientIp(c);
    const uri = c.req.header('x-original-uri');
    c.header('cache-control', 'no-store');

    const basicService = basicAuthServiceOf(uri);
    if (basicService) {
      // The same decision as Dovecot's passdb (access flags dav_access / eas_access, app passwords,
      // brute-force limits on the client's address, the same deps and metrics as the passdb's);
      // SOGo gets the client's own credentials.
      const authorization = c.req.header(ORIGINAL_AUTHORIZATION);
      const credentials = basicCredentials(authorization);
      const outcome =
        credentials && ip && credentials.username.length <= 255 && credentials.password.length <= 4096
          ? await checkObservedMailLogin(mailLogin, {
              ...credentials,
              realRip: ip,
              service: basicService,
              // SOGo is handed the canonical name below (X-Webobjects-Remote-User).
              resolveAliasDomains: true,
            })
          : undefined;
      if (outcome?.result !== 'ok') {
        if (outcome) {
          deps.log.info(
            { event: 'sogo', result: outcome.result, service: basicService, user: credentials?.username, rip: ip },
            'DAV/EAS request refused',
          );
        }
        c.header(VERIFY_HEADERS.challenge, BASIC_CHALLENGE);
        return c.body(null, 401);
      }
      // The checked password under the canonical name (the client may have typed another spelling).
      setSogoIdentity(c, outcome.username, (credentials as { password: string }).password);
      return c.body(null, 200);
    }

    const handoffSecret = getCookie(c, HANDOFF_COOKIE);
    const webmailId = getCookie(c, WEBMAIL_COOKIE);
    const verdict = await handoff.verifyWebmailRequest({
      ...(handoffSecret !== undefined ? { handoffSecret } : {}),
      ...(webmailId !== undefined ? { webmailId } : {}),
      ...(ip ? { ip } : {}),
      ...(uri ? { uri } : {}),
    });
    if (verdict.clearHandoff) c.header(VERIFY_HEADERS.handoffCookie, cookieLine(HANDOFF_COOKIE, '', 0, secure));
    if (verdict.ok && verdict.newSession) {
      c.header(
        VERIFY_HEADERS.webmailCookie,
        cookieLine(WEBMAIL_COOKIE, verdict.newSession.id, verdict.newSession.maxAgeSeconds, secure),
      );
    } else if (verdict.clearWebmail) {
      c.header(VERIFY_HEADERS.webmailCookie, cookieLine(WEBMAIL_COOKIE, '', 0, secure));
    }
    if (!verdict.ok) return c.body(null, 401);
    setSogoIdentity(c, verdict.username, verdict.imapSecret);
    return c.body(null, 200);
  });

  return app;
}
