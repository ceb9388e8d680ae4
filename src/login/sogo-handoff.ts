// The SOGo handoff (DESIGN §3.5): a signed-in portal user gets a single-use handoff of at most
// 60 s, nginx's auth_request redeems it into a webmail session (webmail-sessions.ts), and that
// session lends SOGo a per-session IMAP secret (checked by the passdb in webmail-secret.ts).
// Admins' webmail links are admin-webmail-ticket.ts. Plain functions over deps: never imports
// hono; secrets are never stored, logged or audited in clear (Redis holds only SHA-256 digests).
// A little over 300 lines: verifyWebmailRequest is one decision over both cookies, kept whole.
import { foldAddress } from '../address.js';
import { keys } from '../cache/keys.js';
import type { Redis } from '../cache/redis.js';
import type { Config } from '../config/schema.js';
import { sha256Hex } from '../digest.js';
import { parseJsonRecord } from '../json-record.js';
import type { Logger } from '../log.js';
import { type AuditEntry, mailboxActor, recordAudit } from '../storage/audit.js';
import { callerAuditActor } from '../storage/audit-actors.js';
import type { Db } from '../storage/db.js';
import { recordSaslLogin } from '../storage/sasl-log.js';
import {
  type AdminTicketOutcome,
  type AdminTicketRedemption,
  createAdminWebmailTickets,
} from './admin-webmail-ticket.js';
import type { WebSessionRecords } from './web-sessions.js';
import {
  checkWebmailAccess,
  handoffTtlOf,
  inRedis,
  isWebmailToken,
  newWebmailToken,
  WEBMAIL_REFUSALS,
} from './webmail-access.js';
import { createWebmailSessions, imapSecretOf, type WebmailRecord } from './webmail-sessions.js';

export type { AdminTicketOutcome, AdminTicketRedemption } from './admin-webmail-ticket.js';
export { MAX_HANDOFF_TTL_SECONDS } from './webmail-access.js';

/** The handoff travels only from /sogo-auth to the first webmail request. */
export const HANDOFF_COOKIE = 'postern_sogo_handoff';
/** The webmail session, sent with every request under the webmail path. */
export const WEBMAIL_COOKIE = 'postern_webmail';
/** Both cookies are scoped to SOGo's path: the portal never sees them, SOGo's nginx location always does. */
export const WEBMAIL_COOKIE_PATH = '/SOGo';
/** How long we remember that a handoff was issued or used, to tell replay from expiry in the audit. */
const HANDOFF_STATE_TTL_SECONDS = 600;

export interface SogoHandoffDeps {
  db: Db;
  redis: Redis;
  log: Logger;
  config: Pick<Config, 'redisPrefix' | 'sessionTtlSeconds' | 'sessionMaxSeconds'>;
  /** The portal's sessions: a webmail session lives (and slides) with its portal session. */
  webSessions: Pick<WebSessionRecords, 'peek' | 'extend'>;
}

export interface SogoHandoffOptions {
  /** 1..60 s; default 60. Tests shorten it. */
  handoffTtlSeconds?: number;
  /** Milliseconds; injectable for tests. */
  now?: () => number;
}

/** A refusal shown to the browser as a page; `reason` goes to the audit. */
export interface HandoffRefusal {
  ok: false;
  status: 403;
  reason: 'other_user' | 'mailbox_unavailable' | 'sogo_access_off';
  title: string;
  message: string;
}

export type HandoffOutcome = { ok: true; username: string; secret: string; ttlSeconds: number } | HandoffRefusal;

export type WebmailRefusalReason =
  | 'handoff_malformed'
  | 'handoff_replayed'
  | 'handoff_expired'
  | 'handoff_unknown'
  | 'mailbox_unavailable'
  | 'sogo_access_off'
  | 'portal_session_ended'
  | 'webmail_session_malformed'
  | 'webmail_session_unknown'
  | 'no_credentials';

/** What nginx's verify subrequest gets: the identity for SOGo, and which cookies to set or clear. */
export type WebmailVerdict = (
  | { ok: true; username: string; imapSecret: string; newSession?: { id: string; maxAgeSeconds: number } }
  | { ok: false; reason: WebmailRefusalReason }
) & {
  /** A handoff cookie came with the request: expire it (used or not, it is never good twice). */
  clearHandoff: boolean;
  /** The webmail cookie names no live session: expire it. */
  clearWebmail: boolean;
};

interface HandoffRecord {
  username: string;
  portalRef: string;
}

const isHandoffRecord = (v: Partial<HandoffRecord>) =>
  typeof v.username === 'string' && typeof v.portalRef === 'string';

// GETDEL and the "used" marker in one step: of two concurrent redemptions exactly one wins, and
// the loser is audited as a replay rather than an expiry.
const REDEEM_SCRIPT = `
local value = redis.call('GETDEL', KEYS[1])
if value then
  redis.call('SET', KEYS[2], 'used', 'EX', ARGV[1])
  return {'ok', value}
end
local state = redis.call('GET', KEYS[2])
return {'gone', state or ''}`;

export interface SogoHandoff {
  /** /sogo-auth: may this portal user open webmail as `login`? If so, mint the handoff. */
  openWebmail(input: {
    sessionUser: string;
    login: string;
    portalRef: string;
    ip?: string;
    /** The admin acting for the session's mailbox (a session opened by an admin link): the audit's actor. */
    actingAdmin?: string;
  }): Promise<HandoffOutcome>;
  /** Audit a /sogo-auth without a portal session (the browser is sent to the login). */
  recordNoSession(input: { login: string; ip?: string }): Promise<void>;
  /** nginx auth_request: redeem the handoff or check the webmail session. */
  verifyWebmailRequest(input: {
    handoffSecret?: string;
    webmailId?: string;
    ip?: string;
    uri?: string;
  }): Promise<WebmailVerdict>;
  /** Admin API: a single-use link that opens `username`'s webmail, valid as long as a handoff. */
  mintAdminTicket(input: { username: string; actingAdmin: string; ip?: string }): Promise<AdminTicketOutcome>;
  /** The link opened in a browser: consumed whatever the outcome, audited either way. */
  redeemAdminTicket(input: { ticket: string; ip?: string }): Promise<AdminTicketRedemption>;
  readonly handoffTtlSeconds: number;
}

export function createSogoHandoff(deps: SogoHandoffDeps, options: SogoHandoffOptions = {}): SogoHandoff {
  const ks = { prefix: deps.config.redisPrefix };
  const handoffTtlSeconds = handoffTtlOf(options.handoffTtlSeconds);
  const webmail = createWebmailSessions({ ...deps, ...(options.now ? { now: options.now } : {}) });
  const tickets = createAdminWebmailTickets(deps, handoffTtlSeconds);
  const audit = (entry: AuditEntry) => recordAudit(deps.db, entry);

  async function refuseWebmail(
    reason: WebmailRefusalReason,
    flags: { clearHandoff: boolean; clearWebmail: boolean },
    context: { username?: string; ip?: string; uri?: string },
  ): Promise<WebmailVerdict> {
    deps.log.info({ event: 'sogo', result: 'refused', reason, user: context.username }, 'webmail request refused');
    await audit({
      actor: mailboxActor(context.username ?? 'anonymous'),
      action: 'sogo.webmail.refused',
      ...(context.username ? { target: context.username } : {}),
      detail: { reason, ...(context.uri ? { uri: context.uri.slice(0, 200) } : {}) },
      ...(context.ip ? { ip: context.ip } : {}),
    });
    return { ok: false, reason, ...flags };
  }

  return {
    handoffTtlSeconds,

    async openWebmail({ sessionUser, login, portalRef, ip, actingAdmin }) {
      const username = foldAddress(sessionUser);
      // The admin or key acting through an admin link is the actor, with its role; otherwise the mailbox user.
      const actor = actingAdmin ? await callerAuditActor(deps.db, actingAdmin) : mailboxActor(username);
      const requested = foldAddress(login.trim()) || username;
      let reason: HandoffRefusal['reason'] | undefined;
      if (requested !== username) reason = 'other_user';
      else reason = await checkWebmailAccess(deps.db, username);
      if (reason) {
        deps.log.info({ event: 'sogo', result: 'refused', reason, user: username }, 'webmail handoff refused');
        await audit({
          actor,
          action: 'sogo.handoff.refused',
          target: requested.slice(0, 255),
          detail: { reason },
          ...(ip ? { ip } : {}),
        });
        return { ok: false, status: 403, reason, ...WEBMAIL_REFUSALS[reason] };
      }

      const secret = newWebmailToken();
      const digest = sha256Hex(secret);
      const record: HandoffRecord = { username, portalRef };
      await inRedis(() =>
        deps.redis
          .multi()
          .set(keys.sogoHandoff(ks, digest), JSON.stringify(record), 'EX', handoffTtlSeconds)
          .set(keys.sogoHandoffState(ks, digest), 'issued', 'EX', HANDOFF_STATE_TTL_SECONDS)
          .exec(),
      );
      // mailcow writes sasl_log service SSO when its handoff is used; the portal shows it as a login.
      recordSaslLogin(deps.db, { username, realRip: ip ?? '', service: 'SSO', appPasswordId: 0 }).catch(
        (error: unknown) => deps.log.warn({ err: error, user: username }, 'sasl_log write failed'),
      );
      await audit({ actor, action: 'sogo.handoff', target: username, ...(ip ? { ip } : {}) });
      deps.log.info({ event: 'sogo', result: 'handoff', user: username }, 'webmail handoff minted');
      return { ok: true, username, secret, ttlSeconds: handoffTtlSeconds };
    },

    mintAdminTicket: (input) => tickets.mint(input),
    redeemAdminTicket: (input) => tickets.redeem(input),

    async recordNoSession({ login, ip }) {
      await audit({
        actor: mailboxActor('anonymous'),
        action: 'sogo.handoff.refused',
        ...(login ? { target: login.slice(0, 255) } : {}),
        detail: { reason: 'no_session' },
        ...(ip ? { ip } : {}),
      });
    },

    async verifyWebmailRequest({ handoffSecret, webmailId, ip, uri }) {
      const context = { ...(ip ? { ip } : {}), ...(uri ? { uri } : {}) };
      const clearHandoff = handoffSecret !== undefined;
      let clearWebmail = false;
      let handoffReason: WebmailRefusalReason | undefined;

      if (handoffSecret !== undefined) {
        if (!isWebmailToken(handoffSecret)) {
          handoffReason = 'handoff_malformed';
          await refuseWebmail(handoffReason, { clearHandoff, clearWebmail }, context);
        } else {
          const digest = sha256Hex(handoffSecret);
          const [status, payload] = (await inRedis(() =>
            deps.redis.eval(
              REDEEM_SCRIPT,
              2,
              keys.sogoHandoff(ks, digest),
              keys.sogoHandoffState(ks, digest),
              String(HANDOFF_STATE_TTL_SECONDS),
            ),
          )) as [string, string];
          const record = status === 'ok' ? parseJsonRecord<HandoffRecord>(payload, isHandoffRecord) : undefined;
          if (!record) {
            handoffReason =
              payload === 'used' ? 'handoff_replayed' : payload === 'issued' ? 'handoff_expired' : 'handoff_unknown';
            await refuseWebmail(handoffReason, { clearHandoff, clearWebmail }, context);
          } else {
            const who = { ...context, username: record.username };
            // sogo_access or the mailbox may have been switched off since the handoff was minted.
            const mailboxRefusal = await checkWebmailAccess(deps.db, record.username);
            const portalMs = mailboxRefusal ? 0 : (await webmail.portalLife(record.portalRef, record.username)).ms;
            if (mailboxRefusal || portalMs <= 0) {
              return refuseWebmail(
                mailboxRefusal ?? 'portal_session_ended',
                { clearHandoff, clearWebmail: false },
                who,
              );
            }
            // A fresh handoff replaces whatever webmail session this browser had.
            if (webmailId !== undefined && isWebmailToken(webmailId)) {
              const oldDigest = sha256Hex(webmailId);
              await webmail.end(oldDigest, await webmail.load(oldDigest));
            }
            const session = await webmail.start(record, portalMs);
            await audit({
              actor: mailboxActor(record.username),
              action: 'sogo.webmail.start',
              target: record.username,
              ...(ip ? { ip } : {}),
            });
            deps.log.info(
              { event: 'sogo', result: 'webmail_session', user: record.username },
              'webmail session started',
            );
            return {
              ok: true,
              username: record.username,
              imapSecret: session.imapSecret,
              newSession: { id: session.id, maxAgeSeconds: session.maxAgeSeconds },
              clearHandoff,
              clearWebmail: false,
            };
          }
        }
        // A stale handoff cookie next to a live webmail session must not lock the user out.
      }

      if (webmailId === undefined) {
        // Nothing was presented (e.g. a bookmark to /SOGo): not worth an audit row per request.
        if (!handoffReason)
          deps.log.debug({ event: 'sogo', result: 'refused', reason: 'no_credentials' }, 'webmail request refused');
        return { ok: false, reason: handoffReason ?? 'no_credentials', clearHandoff, clearWebmail };
      }
      if (!isWebmailToken(webmailId)) {
        clearWebmail = true;
        return refuseWebmail('webmail_session_malformed', { clearHandoff, clearWebmail }, context);
      }
      const idDigest = sha256Hex(webmailId);
      const record: WebmailRecord | undefined = await webmail.load(idDigest);
      if (!record) {
        clearWebmail = true;
        return refuseWebmail('webmail_session_unknown', { clearHandoff, clearWebmail }, context);
      }
      const portal = await webmail.portalLife(record.portalRef, record.username);
      const lifetimeMs = portal.ms > 0 ? await webmail.slideWithPortal(record, idDigest, portal) : 0;
      if (lifetimeMs === 0) {
        await webmail.end(idDigest, record);
        clearWebmail = true;
        return refuseWebmail(
          'portal_session_ended',
          { clearHandoff, clearWebmail },
          { ...context, username: record.username },
        );
      }
      return {
        ok: true,
        username: record.username,
        imapSecret: imapSecretOf(webmailId),
        // Extended: the browser's cookie gets the new lifetime too.
        ...(lifetimeMs !== undefined
          ? { newSession: { id: webmailId, maxAgeSeconds: Math.max(1, Math.floor(lifetimeMs / 1000)) } }
          : {}),
        clearHandoff,
        clearWebmail,
      };
    },
  };
}
