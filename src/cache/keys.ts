// Every Redis key family postern writes, with its lifetime, named once. Keys are built only
// through these functions so a grep for a family finds every use.

export interface KeySpace {
  readonly prefix: string;
}

export const keys = {
  /** Key of the rate limiter's password fingerprints, generated once per deployment. */
  fingerprintSecret: (ks: KeySpace) => `${ks.prefix}rl:secret`,
  /** HMAC secret for the verified-credential cache, generated once per deployment. */
  cacheSecret: (ks: KeySpace) => `${ks.prefix}cache:secret`,
  /** A verified credential: key = HMAC(user, candidate, stored hash); value = the scheme name only. */
  verifiedCredential: (ks: KeySpace, digest: string) => `${ks.prefix}cred:${digest}`,
  /** A web session (TTL = POSTERN_SESSION_TTL_SECONDS); keyed by a hash of the cookie's id, never the id. */
  webSession: (ks: KeySpace, idDigest: string) => `${ks.prefix}websession:${idDigest}`,
  /** An admin session (username, stage, times); keyed by a hash of the cookie's id; idle TTL, capped. */
  adminSession: (ks: KeySpace, idDigest: string) => `${ks.prefix}adminsession:${idDigest}`,
  /** A TOTP secret shown for enrolment, not yet confirmed with a code; 10 min. */
  totpEnrolment: (ks: KeySpace, username: string) => `${ks.prefix}totp:enrol:${username}`,
  /** A portal sign-in with the password done and the second factor pending; keyed by a hash of its cookie id; 5 min. */
  portalPendingSignIn: (ks: KeySpace, idDigest: string) => `${ks.prefix}portal:pending:${idDigest}`,
  /** The audit-retention job's lock across replicas: value = the holder's random token; PX = lock TTL. */
  auditPruneLock: (ks: KeySpace) => `${ks.prefix}audit:prune-lock`,
  /** A pending SSO login (PKCE verifier, nonce), keyed by a hash of its state; 10 min, single use. */
  ssoTransaction: (ks: KeySpace, stateDigest: string) => `${ks.prefix}sso:tx:${stateDigest}`,
  /**
   * Distinct failure fingerprints of a client IP (IPv6: its /64) or a username: sorted set,
   * member = truncated HMAC of (user, password), score = first seen (ms); expires with the window.
   */
  rateLimitFailures: (ks: KeySpace, scope: 'ip' | 'user', subject: string) => `${ks.prefix}rl:fail:${scope}:${subject}`,
  /** A ban: value = when it began (ms); its TTL is what remains of the ban. */
  rateLimitBan: (ks: KeySpace, scope: 'ip' | 'user', subject: string) => `${ks.prefix}rl:ban:${scope}:${subject}`,
  /** SCAN pattern over every rateLimitBan key (glob characters in the prefix escaped). */
  rateLimitBanPattern: (ks: KeySpace) => `${ks.prefix.replace(/[*?[\]\\]/g, '\\$&')}rl:ban:*`,
  /** This IP (IPv6: its /64) logged this user in recently; TTL = knownGoodIpSeconds. "|" never occurs in an IP. */
  rateLimitKnownGoodIp: (ks: KeySpace, user: string, ipSubject: string) => `${ks.prefix}rl:good:${ipSubject}|${user}`,
  /** The IdP sync lock across replicas: value = the holder's random token; PX = lock TTL, renewed while running. */
  syncLock: (ks: KeySpace) => `${ks.prefix}sync:lock`,
  /** A sync run's counts while it runs (JSON), for the console's live progress; TTL 1 h. */
  syncProgress: (ks: KeySpace, runId: number) => `${ks.prefix}sync:progress:${runId}`,
  /**
   * A secret the console shows once after a redirect (a new API key), sealed under a random
   * ticket that only the admin's cookie holds; keyed by a hash of the ticket; 5 min, GETDEL once.
   */
  consoleShownOnce: (ks: KeySpace, ticketDigest: string) => `${ks.prefix}console:once:${ticketDigest}`,
  /** A SOGo handoff (username + portal session ref), keyed by a hash of its secret; TTL <= 60 s, GETDEL once. */
  sogoHandoff: (ks: KeySpace, secretDigest: string) => `${ks.prefix}sogo:handoff:${secretDigest}`,
  /** An admin's single-use link into a mailbox's webmail; keyed by a hash of the link's secret. */
  adminWebmailTicket: (ks: KeySpace, secretDigest: string) => `${ks.prefix}sogo:admin-ticket:${secretDigest}`,
  /** What became of a handoff ("issued" / "used"), for auditing replay vs expiry; 10 min, no secret. */
  sogoHandoffState: (ks: KeySpace, secretDigest: string) => `${ks.prefix}sogo:handoff-state:${secretDigest}`,
  /** A webmail session (user, portal session ref, IMAP secret digest), keyed by a hash of its cookie id; dies with the portal session. */
  sogoWebmailSession: (ks: KeySpace, idDigest: string) => `${ks.prefix}sogo:webmail:${idDigest}`,
  /** Index from a webmail session's IMAP secret (hashed) to that session's id digest; same TTL as the session. */
  sogoImapSecret: (ks: KeySpace, secretDigest: string) => `${ks.prefix}sogo:imap:${secretDigest}`,
  /** Refused mail logins of a service (a known one or `other`) in one UTC hour (`yyyymmddhh`): INCRBY; 8 days. */
  statsFailures: (ks: KeySpace, service: string, hour: string) => `${ks.prefix}stats:fail:${service}:${hour}`,
  /** Bans the limiter placed in one UTC hour (`yyyymmddhh`): INCRBY; 8 days. */
  statsBans: (ks: KeySpace, hour: string) => `${ks.prefix}stats:ban:${hour}`,
  /**
   * Pub/sub channel (not a key) of ban changes, so every replica mirrors the bans in process:
   * JSON `{op: 'ban' | 'lift', scope, subject, expiresAtMs, ttlMs?}`, published with the change.
   */
  rateLimitEvents: (ks: KeySpace) => `${ks.prefix}rl:events`,
};
