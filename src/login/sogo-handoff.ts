// The SOGo handoff (DESIGN §3.5): a signed-in portal user gets a single-use handoff of at most
// 60 s, nginx's auth_request redeems it into a webmail session, and that session lends SOGo a
// per-session IMAP secret. Plain functions over deps: never imports hono; secrets are never
// stored, logged or audited in clear (Redis holds only SHA-256 digests).

import { createHash, createHmac, randomBytes } from 'node:crypto';
import { foldAddress } from '../address.js';
import { keys } from '../cache/keys.js';
import type { Redis } from '../cache/redis.js';
import type { Config } from '../config/schema.js';
import { toBackendFault } from '../errors.js';
import type { Logger } from '../log.js';
import { createNetworkList, parseClientAddress } from '../rate-limit/client-address.js';
import type { Db } from '../storage/db.js';
import { findLoginMailbox } from '../storage/mailboxes.js';
import { recordSaslLogin } from '../storage/sasl-log.js';
import type { WebmailSecretChecker } from './mail-login.js';
import { isServiceAllowedForMailbox } from './services.js';
import { sessionLimitsOf, slidingLifetimeMs } from './session-lifetime.js';
import { recordWebAudit } from './web-login.js';

/** The handoff travels only from /sogo-auth to the first webmail request. */
export const HANDOFF_COOKIE = 'postern_sogo_handoff';
/** The webmail session, sent with every request under the webmail path. */
export const WEBMAIL_COOKIE = 'postern_webmail';
/** Both cookies are scoped to SOGo's path: the portal never sees them, SOGo's nginx location always does. */
export const WEBMAIL_COOKIE_PATH = '/SOGo';
export const MAX_HANDOFF_TTL_SECONDS = 60;
/** How long we remember that a handoff was issued or used, to tell replay from expiry in the audit. */
const HANDOFF_STATE_TTL_SECONDS = 600;

/** Handoff secrets and webmail ids: 32 random bytes, base64url (43 characters, 256 bits). */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;
const newToken = () => randomBytes(32).toString('base64url');
const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/**
 * The IMAP secret is derived from the webmail session's cookie id, never stored: Redis keeps only
 * its digest (for the passdb), so neither a Redis dump nor the audit yields a usable secret, and
 * verify can hand SOGo the same secret on every request without keeping it anywhere.
 */
const imapSecretOf = (webmailId: string) =>
  createHmac('sha256', webmailId).update('postern sogo imap secret v1').digest('base64url');

/**
 * Reference to a portal session: the SHA-256 hex of its cookie id, which is exactly how
 * http/session.ts names the session in Redis (keys.webSession). Binding to it means a portal
 * logout (or a new portal login, which rotates the id) ends the webmail session too.
 */
export function portalSessionRefOf(sessionCookieId: string): string {
  return sha256(sessionCookieId);
}

export interface SogoHandoffDeps {
  db: Db;
  redis: Redis;
  log: Logger;
  config: Pick<Config, 'redisPrefix' | 'sogoNetworks' | 'sessionTtlSeconds' | 'sessionMaxSeconds'>;
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

/** An admin's link into a mailbox's webmail (POSTERN_ADMIN_WEBMAIL): minted by the API, used once. */
export type AdminTicketOutcome =
  | { ok: true; ticket: string; ttlSeconds: number }
  | { ok: false; reason: 'mailbox_unavailable' | 'sogo_access_off'; message: string };

export type AdminTicketRedemption =
  | { ok: true; username: string; actingAdmin: string }
  | { ok: false; reason: 'ticket_malformed' | 'ticket_unknown' | 'mailbox_unavailable' | 'sogo_access_off' };

interface AdminTicketRecord {
  username: string;
  actingAdmin: string;
}

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

interface WebmailRecord {
  username: string;
  portalRef: string;
  imapSecretDigest: string;
  createdAt: number;
}

const REFUSALS = {
  other_user: {
    title: 'Not your mailbox',
    message:
      'You can only open the webmail of the mailbox you are signed in with. Admins open a mailbox through its webmail link from the admin API.',
  },
  mailbox_unavailable: {
    title: 'Mailbox unavailable',
    message: 'Your mailbox or its domain is disabled, so webmail cannot be opened. Ask an admin.',
  },
  sogo_access_off: {
    title: 'Webmail is off for this mailbox',
    message: 'An admin has turned off webmail (SOGo) access for this mailbox. Your mail apps still work.',
  },
} as const;

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

function parseJson<T>(text: string | null, isValid: (value: Partial<T>) => boolean): T | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as Partial<T>;
    return value && typeof value === 'object' && isValid(value) ? (value as T) : undefined;
  } catch {
    return undefined;
  }
}

const isHandoffRecord = (v: Partial<HandoffRecord>) =>
  typeof v.username === 'string' && typeof v.portalRef === 'string';
const isWebmailRecord = (v: Partial<WebmailRecord>) =>
  typeof v.username === 'string' && typeof v.portalRef === 'string' && typeof v.imapSecretDigest === 'string';

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
  const now = options.now ?? Date.now;
  const sessionLimits = sessionLimitsOf(deps.config);
  const ks = { prefix: deps.config.redisPrefix };
  const handoffTtlSeconds = Math.min(
    Math.max(1, Math.floor(options.handoffTtlSeconds ?? MAX_HANDOFF_TTL_SECONDS)),
    MAX_HANDOFF_TTL_SECONDS,
  );
  const redis = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      throw toBackendFault('Redis', error);
    }
  };
  const audit = (entry: {
    actor: string;
    action: string;
    target?: string;
    detail?: Record<string, unknown>;
    ip?: string;
  }) => recordWebAudit(deps.db, entry);

  async function checkMailbox(username: string): Promise<'mailbox_unavailable' | 'sogo_access_off' | undefined> {
    const mailbox = await findLoginMailbox(deps.db, username);
    // The direct row must be the session's own mailbox, not an alias-domain twin.
    if (!mailbox || mailbox.username !== username || mailbox.active !== 1 || !mailbox.domainActive) {
      return 'mailbox_unavailable';
    }
    if (!isServiceAllowedForMailbox('SOGO', mailbox.attributes)) return 'sogo_access_off';
    return undefined;
  }

  /** The portal session's remaining lifetime in ms (0 when it is gone or someone else's), and its start. */
  async function portalSession(portalRef: string, username: string): Promise<{ ms: number; createdAt: number }> {
    const key = keys.webSession(ks, portalRef);
    const [text, pttl] = await redis(async () => {
      const results = await deps.redis.multi().get(key).pttl(key).exec();
      return [results?.[0]?.[1] as string | null, Number(results?.[1]?.[1] ?? -2)] as const;
    });
    const session = parseJson<{ username: string; createdAt?: unknown }>(text, (v) => typeof v.username === 'string');
    if (!session || session.username !== username) return { ms: 0, createdAt: 0 };
    const createdAt = typeof session.createdAt === 'number' ? session.createdAt : 0;
    // -1 = no expiry (not how session.ts writes it); treat as alive, capped by the cookie's own lifetime.
    return { ms: pttl === -1 ? 3_600_000 : Math.max(0, pttl), createdAt };
  }

  /**
   * Webmail in use keeps the portal session alive as the portal itself does (session.ts), and
   * the webmail session and its IMAP secret with it; returns the new lifetime when extended.
   */
  async function slideWithPortal(record: WebmailRecord, idDigest: string, portal: { ms: number; createdAt: number }) {
    const lifetimeMs = slidingLifetimeMs(sessionLimits, portal.createdAt, portal.ms, now());
    if (!lifetimeMs) return lifetimeMs;
    await redis(() =>
      deps.redis
        .multi()
        .pexpire(keys.webSession(ks, record.portalRef), lifetimeMs)
        .pexpire(keys.sogoWebmailSession(ks, idDigest), lifetimeMs)
        .pexpire(keys.sogoImapSecret(ks, record.imapSecretDigest), lifetimeMs)
        .exec(),
    );
    return lifetimeMs;
  }

  async function refuseWebmail(
    reason: WebmailRefusalReason,
    flags: { clearHandoff: boolean; clearWebmail: boolean },
    context: { username?: string; ip?: string; uri?: string },
  ): Promise<WebmailVerdict> {
    deps.log.info({ event: 'sogo', result: 'refused', reason, user: context.username }, 'webmail request refused');
    await audit({
      actor: context.username ?? 'anonymous',
      action: 'sogo.webmail.refused',
      ...(context.username ? { target: context.username } : {}),
      detail: { reason, ...(context.uri ? { uri: context.uri.slice(0, 200) } : {}) },
      ...(context.ip ? { ip: context.ip } : {}),
    });
    return { ok: false, reason, ...flags };
  }

  async function startWebmailSession(record: HandoffRecord, portalMs: number) {
    const id = newToken();
    const imapSecret = imapSecretOf(id);
    const imapSecretDigest = sha256(imapSecret);
    const idDigest = sha256(id);
    const value: WebmailRecord = {
      username: record.username,
      portalRef: record.portalRef,
      imapSecretDigest,
      createdAt: now(),
    };
    await redis(() =>
      deps.redis
        .multi()
        .set(keys.sogoWebmailSession(ks, idDigest), JSON.stringify(value), 'PX', portalMs)
        .set(keys.sogoImapSecret(ks, imapSecretDigest), idDigest, 'PX', portalMs)
        .exec(),
    );
    return { id, imapSecret, maxAgeSeconds: Math.max(1, Math.floor(portalMs / 1000)) };
  }

  async function endWebmailSession(idDigest: string, record?: WebmailRecord): Promise<void> {
    const toDelete = [keys.sogoWebmailSession(ks, idDigest)];
    if (record) toDelete.push(keys.sogoImapSecret(ks, record.imapSecretDigest));
    await redis(() => deps.redis.del(...toDelete));
  }

  async function loadWebmailSession(idDigest: string): Promise<WebmailRecord | undefined> {
    const text = await redis(() => deps.redis.get(keys.sogoWebmailSession(ks, idDigest)));
    return parseJson<WebmailRecord>(text, isWebmailRecord);
  }

  return {
    handoffTtlSeconds,

    async openWebmail({ sessionUser, login, portalRef, ip, actingAdmin }) {
      const username = foldAddress(sessionUser);
      const actor = actingAdmin ?? username;
      const requested = foldAddress(login.trim()) || username;
      let reason: HandoffRefusal['reason'] | undefined;
      if (requested !== username) reason = 'other_user';
      else reason = await checkMailbox(username);
      if (reason) {
        deps.log.info({ event: 'sogo', result: 'refused', reason, user: username }, 'webmail handoff refused');
        await audit({
          actor,
          action: 'sogo.handoff.refused',
          target: requested.slice(0, 255),
          detail: { reason },
          ...(ip ? { ip } : {}),
        });
        return { ok: false, status: 403, reason, ...REFUSALS[reason] };
      }

      const secret = newToken();
      const digest = sha256(secret);
      const record: HandoffRecord = { username, portalRef };
      await redis(() =>
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

    async mintAdminTicket({ username, actingAdmin, ip }) {
      const target = foldAddress(username);
      const reason = await checkMailbox(target);
      if (reason) {
        await audit({
          actor: actingAdmin,
          action: 'sogo.admin_link.refused',
          target,
          detail: { reason },
          ...(ip ? { ip } : {}),
        });
        return { ok: false, reason, message: REFUSALS[reason].message };
      }
      const ticket = newToken();
      const record: AdminTicketRecord = { username: target, actingAdmin };
      await redis(() =>
        deps.redis.set(keys.adminWebmailTicket(ks, sha256(ticket)), JSON.stringify(record), 'EX', handoffTtlSeconds),
      );
      await audit({ actor: actingAdmin, action: 'sogo.admin_link', target, ...(ip ? { ip } : {}) });
      return { ok: true, ticket, ttlSeconds: handoffTtlSeconds };
    },

    async redeemAdminTicket({ ticket, ip }) {
      const refuse = async (reason: Exclude<AdminTicketRedemption, { ok: true }>['reason'], actor = 'anonymous') => {
        await audit({ actor, action: 'sogo.admin_login.refused', detail: { reason }, ...(ip ? { ip } : {}) });
        return { ok: false, reason } as const;
      };
      if (!TOKEN.test(ticket)) return refuse('ticket_malformed');
      const text = await redis(() => deps.redis.getdel(keys.adminWebmailTicket(ks, sha256(ticket))));
      const record = parseJson<AdminTicketRecord>(
        text,
        (v) => typeof v.username === 'string' && typeof v.actingAdmin === 'string',
      );
      if (!record) return refuse('ticket_unknown');
      // The mailbox may have been switched off between the link and its use.
      const reason = await checkMailbox(record.username);
      if (reason) return refuse(reason, record.actingAdmin);
      await audit({
        actor: record.actingAdmin,
        action: 'sogo.admin_login',
        target: record.username,
        ...(ip ? { ip } : {}),
      });
      deps.log.info(
        { event: 'sogo', result: 'admin_login', user: record.username, admin: record.actingAdmin },
        'admin opened a mailbox',
      );
      return { ok: true, username: record.username, actingAdmin: record.actingAdmin };
    },

    async recordNoSession({ login, ip }) {
      await audit({
        actor: 'anonymous',
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
        if (!TOKEN.test(handoffSecret)) {
          handoffReason = 'handoff_malformed';
          await refuseWebmail(handoffReason, { clearHandoff, clearWebmail }, context);
        } else {
          const digest = sha256(handoffSecret);
          const [status, payload] = (await redis(() =>
            deps.redis.eval(
              REDEEM_SCRIPT,
              2,
              keys.sogoHandoff(ks, digest),
              keys.sogoHandoffState(ks, digest),
              String(HANDOFF_STATE_TTL_SECONDS),
            ),
          )) as [string, string];
          const record = status === 'ok' ? parseJson<HandoffRecord>(payload, isHandoffRecord) : undefined;
          if (!record) {
            handoffReason =
              payload === 'used' ? 'handoff_replayed' : payload === 'issued' ? 'handoff_expired' : 'handoff_unknown';
            await refuseWebmail(handoffReason, { clearHandoff, clearWebmail }, context);
          } else {
            const who = { ...context, username: record.username };
            // sogo_access or the mailbox may have been switched off since the handoff was minted.
            const mailboxRefusal = await checkMailbox(record.username);
            const portalMs = mailboxRefusal ? 0 : (await portalSession(record.portalRef, record.username)).ms;
            if (mailboxRefusal || portalMs <= 0) {
              return refuseWebmail(
                mailboxRefusal ?? 'portal_session_ended',
                { clearHandoff, clearWebmail: false },
                who,
              );
            }
            // A fresh handoff replaces whatever webmail session this browser had.
            if (webmailId !== undefined && TOKEN.test(webmailId)) {
              const oldDigest = sha256(webmailId);
              await endWebmailSession(oldDigest, await loadWebmailSession(oldDigest));
            }
            const session = await startWebmailSession(record, portalMs);
            await audit({
              actor: record.username,
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
      if (!TOKEN.test(webmailId)) {
        clearWebmail = true;
        return refuseWebmail('webmail_session_malformed', { clearHandoff, clearWebmail }, context);
      }
      const idDigest = sha256(webmailId);
      const record = await loadWebmailSession(idDigest);
      if (!record) {
        clearWebmail = true;
        return refuseWebmail('webmail_session_unknown', { clearHandoff, clearWebmail }, context);
      }
      const portal = await portalSession(record.portalRef, record.username);
      const lifetimeMs = portal.ms > 0 ? await slideWithPortal(record, idDigest, portal) : 0;
      if (lifetimeMs === 0) {
        await endWebmailSession(idDigest, record);
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

/**
 * The passdb side: a webmail session's IMAP secret logs its own user in, from POSTERN_SOGO_NETWORKS
 * only, while the webmail session and its portal session live. Logins from anywhere else never
 * touch Redis.
 */
export function createWebmailSecretChecker(deps: {
  redis: Redis;
  config: Pick<Config, 'redisPrefix' | 'sogoNetworks'>;
}): WebmailSecretChecker {
  const ks = { prefix: deps.config.redisPrefix };
  // The configuration has validated the networks and made bare addresses /32 or /128.
  const isSogoAddress = createNetworkList(deps.config.sogoNetworks);
  const hasSogoNetworks = deps.config.sogoNetworks.length > 0;
  return {
    isWebmailSecret(username, password, realRip) {
      // Every passdb login passes here: the cheap tests (any SOGo configured, the secret's shape,
      // a SOGo address) answer without a promise.
      if (!hasSogoNetworks || !TOKEN.test(password)) return false;
      const address = parseClientAddress(realRip);
      if (!address || !isSogoAddress(address)) return false;
      return isLiveWebmailSecret(username, password);
    },
  };

  async function isLiveWebmailSecret(username: string, password: string): Promise<boolean> {
    const imapSecretDigest = sha256(password);
    try {
      const idDigest = await deps.redis.get(keys.sogoImapSecret(ks, imapSecretDigest));
      if (!idDigest) return false;
      const record = parseJson<WebmailRecord>(
        await deps.redis.get(keys.sogoWebmailSession(ks, idDigest)),
        isWebmailRecord,
      );
      if (!record || record.imapSecretDigest !== imapSecretDigest || record.username !== foldAddress(username))
        return false;
      const portal = parseJson<{ username: string }>(
        await deps.redis.get(keys.webSession(ks, record.portalRef)),
        (v) => typeof v.username === 'string',
      );
      return portal?.username === record.username;
    } catch (error) {
      throw toBackendFault('Redis', error);
    }
  }
}
