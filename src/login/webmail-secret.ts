// The passdb side of webmail: a webmail session's IMAP secret logs its own user in, from
// POSTERN_SOGO_NETWORKS only, while the webmail session and its portal session live. Every
// passdb login passes through here, so this file stays small and imports nothing heavy.
import { foldAddress } from '../address.js';
import type { Redis } from '../cache/redis.js';
import type { Config } from '../config/schema.js';
import { toBackendFault } from '../errors.js';
import { createNetworkList, parseClientAddress } from '../rate-limit/client-address.js';
import type { WebmailSecretChecker } from './mail-login.js';
import { peekWebSession } from './web-sessions.js';
import { isWebmailToken } from './webmail-access.js';
import { findWebmailSessionByImapSecret } from './webmail-sessions.js';

/** Logins from anywhere but a SOGo network never touch Redis. */
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
      // The cheap tests (any SOGo configured, the secret's shape, a SOGo address) answer without a promise.
      if (!hasSogoNetworks || !isWebmailToken(password)) return false;
      const address = parseClientAddress(realRip);
      if (!address || !isSogoAddress(address)) return false;
      return isLiveWebmailSecret(username, password);
    },
  };

  async function isLiveWebmailSecret(username: string, password: string): Promise<boolean> {
    try {
      const record = await findWebmailSessionByImapSecret(deps.redis, ks, password);
      if (!record || record.username !== foldAddress(username)) return false;
      const portal = await peekWebSession(deps.redis, ks, record.portalRef);
      return portal?.session.username === record.username;
    } catch (error) {
      throw toBackendFault('Redis', error);
    }
  }
}
