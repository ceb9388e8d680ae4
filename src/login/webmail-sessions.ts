// Webmail sessions (DESIGN §3.5): what a redeemed SOGo handoff becomes. A random id in the
// postern_webmail cookie; in Redis, under the id's digest, the user, the portal session it
// lives with and the digest of its IMAP secret, plus an index from that digest back to the
// session (for the passdb). The IMAP secret itself is derived from the id, never stored.
import { createHmac } from 'node:crypto';
import { keys } from '../cache/keys.js';
import type { Redis } from '../cache/redis.js';
import type { Config } from '../config/schema.js';
import { sha256Hex } from '../digest.js';
import { parseJsonRecord } from '../json-record.js';
import { type SessionLimits, sessionLimitsOf, slidingLifetimeMs } from './session-lifetime.js';
import type { WebSessionRecords } from './web-sessions.js';
import { inRedis, newWebmailToken } from './webmail-access.js';

/** What a webmail session keeps in Redis. */
export interface WebmailRecord {
  username: string;
  /** The portal session's reference (login/web-sessions.ts): webmail ends with it. */
  portalRef: string;
  imapSecretDigest: string;
  createdAt: number;
}

export const isWebmailRecord = (v: Partial<WebmailRecord>) =>
  typeof v.username === 'string' && typeof v.portalRef === 'string' && typeof v.imapSecretDigest === 'string';

/**
 * The IMAP secret is derived from the webmail session's cookie id, never stored: Redis keeps only
 * its digest (for the passdb), so neither a Redis dump nor the audit yields a usable secret, and
 * verify can hand SOGo the same secret on every request without keeping it anywhere.
 */
export const imapSecretOf = (webmailId: string) =>
  createHmac('sha256', webmailId).update('postern sogo imap secret v1').digest('base64url');

/** The portal session a webmail session lives with: remaining ms (0 = gone or someone else's) and its start. */
export interface PortalLife {
  ms: number;
  createdAt: number;
}

export interface WebmailSessions {
  /** A new webmail session for the handoff's user, living as long as the portal session (`portalMs`). */
  start(
    record: Pick<WebmailRecord, 'username' | 'portalRef'>,
    portalMs: number,
  ): Promise<{ id: string; imapSecret: string; maxAgeSeconds: number }>;
  load(idDigest: string): Promise<WebmailRecord | undefined>;
  end(idDigest: string, record?: WebmailRecord): Promise<void>;
  /** How long the portal session behind `portalRef` has left, if it is `username`'s. */
  portalLife(portalRef: string, username: string): Promise<PortalLife>;
  /**
   * Webmail in use keeps the portal session alive as the portal itself does (http/session.ts),
   * and the webmail session and its IMAP secret with it; the new lifetime when extended, 0 when
   * past the cap, undefined when nothing needed doing.
   */
  slideWithPortal(record: WebmailRecord, idDigest: string, portal: PortalLife): Promise<number | undefined>;
}

export interface WebmailSessionsDeps {
  redis: Redis;
  config: Pick<Config, 'redisPrefix' | 'sessionTtlSeconds' | 'sessionMaxSeconds'>;
  webSessions: Pick<WebSessionRecords, 'peek' | 'extend'>;
  /** Milliseconds; injectable for tests. */
  now?: () => number;
}

export function createWebmailSessions(deps: WebmailSessionsDeps): WebmailSessions {
  const ks = { prefix: deps.config.redisPrefix };
  const limits: SessionLimits = sessionLimitsOf(deps.config);
  const now = deps.now ?? Date.now;

  return {
    async start(record, portalMs) {
      const id = newWebmailToken();
      const imapSecret = imapSecretOf(id);
      const imapSecretDigest = sha256Hex(imapSecret);
      const idDigest = sha256Hex(id);
      const value: WebmailRecord = {
        username: record.username,
        portalRef: record.portalRef,
        imapSecretDigest,
        createdAt: now(),
      };
      await inRedis(() =>
        deps.redis
          .multi()
          .set(keys.sogoWebmailSession(ks, idDigest), JSON.stringify(value), 'PX', portalMs)
          .set(keys.sogoImapSecret(ks, imapSecretDigest), idDigest, 'PX', portalMs)
          .exec(),
      );
      return { id, imapSecret, maxAgeSeconds: Math.max(1, Math.floor(portalMs / 1000)) };
    },

    async load(idDigest) {
      const text = await inRedis(() => deps.redis.get(keys.sogoWebmailSession(ks, idDigest)));
      return parseJsonRecord<WebmailRecord>(text, isWebmailRecord);
    },

    async end(idDigest, record) {
      const toDelete = [keys.sogoWebmailSession(ks, idDigest)];
      if (record) toDelete.push(keys.sogoImapSecret(ks, record.imapSecretDigest));
      await inRedis(() => deps.redis.del(...toDelete));
    },

    async portalLife(portalRef, username) {
      const found = await inRedis(() => deps.webSessions.peek(portalRef));
      if (!found || found.session.username !== username) return { ms: 0, createdAt: 0 };
      // -1 = no expiry (not how web-sessions.ts writes it); treat as alive, capped by the cookie's own lifetime.
      return {
        ms: found.remainingMs === -1 ? 3_600_000 : Math.max(0, found.remainingMs),
        createdAt: found.session.createdAt,
      };
    },

    async slideWithPortal(record, idDigest, portal) {
      const lifetimeMs = slidingLifetimeMs(limits, portal.createdAt, portal.ms, now());
      if (!lifetimeMs) return lifetimeMs;
      await inRedis(() =>
        Promise.all([
          deps.webSessions.extend(record.portalRef, lifetimeMs),
          deps.redis
            .multi()
            .pexpire(keys.sogoWebmailSession(ks, idDigest), lifetimeMs)
            .pexpire(keys.sogoImapSecret(ks, record.imapSecretDigest), lifetimeMs)
            .exec(),
        ]),
      );
      return lifetimeMs;
    },
  };
}

/**
 * The webmail session whose IMAP secret this is, if any (two reads, no write). Needs only Redis
 * and the prefix: the passdb's webmail check (webmail-secret.ts) calls it on the hot path.
 */
export async function findWebmailSessionByImapSecret(
  redis: Redis,
  ks: { prefix: string },
  imapSecret: string,
): Promise<WebmailRecord | undefined> {
  const imapSecretDigest = sha256Hex(imapSecret);
  const idDigest = await redis.get(keys.sogoImapSecret(ks, imapSecretDigest));
  if (!idDigest) return undefined;
  const record = parseJsonRecord<WebmailRecord>(
    await redis.get(keys.sogoWebmailSession(ks, idDigest)),
    isWebmailRecord,
  );
  return record?.imapSecretDigest === imapSecretDigest ? record : undefined;
}
