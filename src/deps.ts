// Composition root: the only place that opens pools and clients and wires them together.
// Everything it opens is closed by the returned close(), in reverse order.
import { createAdminLoginLimiter } from './admin/admin-sign-in.js';
import { type AuditWriter, createAuditWriter } from './audit/audit-writer.js';
import { type BackgroundWork, createBackgroundWork } from './background.js';
import { keys } from './cache/keys.js';
import { createLoginStats, type LoginStats } from './cache/login-stats.js';
import { createRedis, type Redis, redisTargetOf } from './cache/redis.js';
import { loadSharedSecret } from './cache/shared-secret.js';
import { createCachingVerifier } from './cache/verified-credentials.js';
import type { Config } from './config/schema.js';
import type { Logger } from './log.js';
import { createCachedLoginData, createDirectLoginData, type LoginDataSource } from './login/login-data.js';
import type { WebmailSecretChecker } from './login/mail-login.js';
import { createPasswordLogin, createWebLoginLimiter, type PasswordLogin } from './login/password-login.js';
import { createPortalCodeLimiter } from './login/portal-two-factor.js';
import { KNOWN_SERVICES } from './login/services.js';
import { createSogoHandoff, type SogoHandoff } from './login/sogo-handoff.js';
import { createSogoSsoPasswordChecker, type SogoSsoPasswordChecker } from './login/sogo-sso-password.js';
import { createSsoLogin, type SsoLogin } from './login/sso-login.js';
import { createWebSessionRecords, type WebSessionRecords } from './login/web-sessions.js';
import { createWebmailSecretChecker } from './login/webmail-secret.js';
import { createMetrics, type Metrics } from './metrics.js';
import type { CredentialVerifier } from './passwords/credential-verifier.js';
import { createHashPool, type HashPool } from './passwords/hash-pool.js';
import { createPoolVerifier } from './passwords/pool-verifier.js';
import { type BanHook, createRateLimiter, limitsFromConfig, type RateLimiter } from './rate-limit/limiter.js';
import { closeIdpConnections } from './sources/idp-fetch.js';
import { createKeycloakPasswordSource } from './sources/keycloak.js';
import { createSourceRegistry, type SourceRegistry } from './sources/registry.js';
import { createSecretBox, type SecretBox } from './sources/secret-box.js';
import { recordAudit } from './storage/audit.js';
import { createChangeCounter, isChangeTrackingInstalled } from './storage/change-counter.js';
import { createDb, type Db } from './storage/db.js';
import { applyMigrations } from './storage/migrate.js';
import { createSaslLogWriter, type SaslLogWriter } from './storage/sasl-log.js';

export interface Deps {
  config: Config;
  log: Logger;
  db: Db;
  redis: Redis;
  hashPool: HashPool;
  verifier: CredentialVerifier;
  limiter: RateLimiter;
  loginData: LoginDataSource;
  saslLog: SaslLogWriter;
  /** Audit entries written off the request path (refused mail logins, bans, refused keys). */
  auditWriter: AuditWriter;
  /** Hourly counts of refused mail logins and bans in Redis, for the dashboard; never awaited. */
  loginStats: LoginStats;
  sources: SourceRegistry;
  secretBox: SecretBox;
  metrics: Metrics;
  /** Browser sign-in failures, counted apart from the passdb's (key space `…web:`). */
  webLoginLimiter: RateLimiter;
  /** Admin sign-in failures, counted apart from both (key space `…admin:`). */
  adminLoginLimiter: RateLimiter;
  /** Portal second-factor codes, counted apart from the portal password (key space `…web-tfa:`). */
  portalCodeLimiter: RateLimiter;
  /** Browser single sign-on (the OIDC flow and mailbox provisioning). */
  ssoLogin: SsoLogin;
  /** Portal sign-in with a mailcow mailbox password, through webLoginLimiter. */
  passwordLogin: PasswordLogin;
  /** A webmail session's IMAP secret as a mail password (from POSTERN_SOGO_NETWORKS only). */
  webmailSecrets: WebmailSecretChecker;
  /** mailcow's static SOGo SSO password, when POSTERN_SOGO_SSO_PASS_FILE opts in. */
  sogoSso?: SogoSsoPasswordChecker;
  /** The portal's session records (http/session.ts keeps their cookies). */
  webSessions: WebSessionRecords;
  /** Portal → webmail handoffs, webmail sessions and admins' webmail links. */
  sogoHandoff: SogoHandoff;
  /** Work that outlives its request; close() aborts it and waits for it first. */
  background: BackgroundWork;
  /**
   * Closes everything; with `timeoutMs`, gives up on background work and on pools that do not
   * close (a connection stuck in a query) when the time is up. Resolves false if it had to.
   */
  close(options?: { timeoutMs?: number }): Promise<boolean>;
}

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

/** How long shutdown waits for background work (a sync run ends at its next page). */
const BACKGROUND_STOP_MS = 10_000;

export async function createDeps(config: Config, log: Logger): Promise<Deps> {
  const closers: (() => Promise<unknown>)[] = [];
  const background = createBackgroundWork(log);
  const close = async ({ timeoutMs }: { timeoutMs?: number } = {}) => {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    let finished = await background.stop(timeoutMs ?? BACKGROUND_STOP_MS);
    for (const closer of closers.reverse()) {
      const closed = closer().then(
        () => true,
        () => true,
      );
      if (deadline === undefined) await closed;
      else if (!(await Promise.race([closed, sleep(Math.max(0, deadline - Date.now())).then(() => false)])))
        finished = false;
    }
    return finished;
  };
  try {
    const db = await createDb({ url: config.dbUrl, poolSize: config.dbPoolSize, createDatabase: true, log });
    closers.push(() => db.close());
    if (config.migrate === 'on') await applyMigrations(db, log);
    const loginData = await createLoginData(db, config, log);
    const saslLog = createSaslLogWriter(db, log);
    closers.push(() => saslLog.close());
    const auditWriter = createAuditWriter(db, log);
    closers.push(() => auditWriter.close());

    const redis = createRedis(redisTargetOf(config));
    // Log transitions only: a Redis outage must not flood the log with one line per retry.
    let redisDown = false;
    redis.on('error', (error: Error) => {
      if (!redisDown) log.warn({ err: error.message }, 'redis unavailable');
      redisDown = true;
    });
    redis.on('ready', () => {
      if (redisDown) log.info('redis available again');
      redisDown = false;
    });
    closers.push(async () => redis.disconnect());
    const loginStats = createLoginStats({ redis, prefix: config.redisPrefix, services: KNOWN_SERVICES, log });
    closers.push(() => loginStats.close());

    const hashPool = createHashPool({
      threads: config.hashThreads ?? 1,
      allowPlaintext: config.allowPlaintextHashes,
      bcryptCost: config.bcryptCost,
      bcryptImpl: config.bcryptImpl,
    });
    closers.push(() => hashPool.close());
    const secretBox = createSecretBox(config.secretKey);
    // The IdP's keep-alive connections (sign-in, sync, the test connection, the dashboard's check).
    closers.push(() => closeIdpConnections());
    const metrics = createMetrics({ hashQueueDepth: () => hashPool.queueDepth, hashThreads: hashPool.threads });
    const keySpace = { prefix: config.redisPrefix };
    // One lookup per login: the three label sets are resolved once, not hashed on every call.
    const cacheLookups = {
      local: metrics.credentialCache.labels({ layer: 'local' }),
      redis: metrics.credentialCache.labels({ layer: 'redis' }),
      miss: metrics.credentialCache.labels({ layer: 'miss' }),
    };

    const verifier = await createCachingVerifier(await createPoolVerifier(hashPool, config.passwordScheme), {
      redis,
      prefix: config.redisPrefix,
      secret: config.cacheKey,
      ttlSeconds: config.cacheTtlSeconds,
      localEntries: config.cacheLocalEntries,
      log,
      onLookup: (layer) => cacheLookups[layer].inc(),
    });
    closers.push(async () => verifier.close());

    // One fingerprint key for every limiter: replicas agree on it, so they count a password once.
    const fingerprintSecret = config.cacheKey ?? (await loadSharedSecret(redis, keys.fingerprintSecret(keySpace), log));
    // Every ban any limiter places is a security event in the audit trail, named by its limiter.
    const auditBan =
      (limiterName: 'mail' | 'web' | 'admin' | 'portal_code'): BanHook =>
      (scope, subject) =>
        auditWriter.record({
          actor: { kind: 'system', name: 'rate-limiter' },
          action: 'ban.place',
          ...(subject ? { target: subject } : {}),
          detail: { scope, ban_seconds: config.banSeconds, limiter: limiterName },
        });
    const auditMailBan = auditBan('mail');
    const limiter = createRateLimiter({
      redis,
      prefix: config.redisPrefix,
      ...limitsFromConfig(config),
      fingerprintSecret,
      log,
      onBan: (scope, subject) => {
        metrics.bans.inc({ scope });
        loginStats.recordBan();
        auditMailBan(scope, subject);
      },
    });
    closers.push(async () => limiter.close());
    // Each limiter mirrors bans through a Redis subscriber of its own: closed here, not by Redis going away.
    const webLoginLimiter = createWebLoginLimiter({ redis, config, log, onBan: auditBan('web') }, fingerprintSecret);
    closers.push(async () => webLoginLimiter.close());
    const adminLoginLimiter = createAdminLoginLimiter({ redis, config, log, onBan: auditBan('admin') });
    closers.push(async () => adminLoginLimiter.close());
    const portalCodeLimiter = createPortalCodeLimiter({ redis, config, log, onBan: auditBan('portal_code') });
    closers.push(async () => portalCodeLimiter.close());

    const webmailSecrets = createWebmailSecretChecker({ redis, config });
    const sogoSso = createSogoSso(db, config, log);
    const webSessions = createWebSessionRecords({ redis, config });
    const sogoHandoff = createSogoHandoff({ db, redis, log, config, webSessions });
    const ssoLogin = createSsoLogin({ config, db, redis, log, secretBox });
    const passwordLogin = createPasswordLogin({ db, log, verifier, limiter: webLoginLimiter });

    return {
      config,
      log,
      db,
      redis,
      hashPool,
      verifier,
      limiter,
      loginData,
      saslLog,
      auditWriter,
      loginStats,
      sources: createSourceRegistry({ keycloak: createKeycloakPasswordSource({ db, secretBox, config, log }) }),
      secretBox,
      metrics,
      webLoginLimiter,
      adminLoginLimiter,
      portalCodeLimiter,
      ssoLogin,
      passwordLogin,
      webmailSecrets,
      ...(sogoSso ? { sogoSso } : {}),
      webSessions,
      sogoHandoff,
      background,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function createLoginData(db: Db, config: Config, log: Logger): Promise<LoginDataSource> {
  if (config.loginCacheEntries === 0) return createDirectLoginData(db);
  if (!(await isChangeTrackingInstalled(db))) {
    // Without the triggers a copy could be stale: stay correct and query every login.
    log.warn('change-counter triggers missing (migrations off or no TRIGGER privilege): every login queries MySQL');
    return createDirectLoginData(db);
  }
  const counter = createChangeCounter(db, { maxAgeMs: config.loginCacheMaxAgeMs });
  return createCachedLoginData(db, counter, config.loginCacheEntries);
}

/** mailcow's static SOGo SSO password, when POSTERN_SOGO_SSO_PASS_FILE opts in. */
function createSogoSso(db: Db, config: Config, log: Logger): SogoSsoPasswordChecker | undefined {
  const path = config.sogoSsoPassFile;
  if (!path) return undefined;
  if (config.sogoNetworks.length === 0) {
    log.warn(
      'POSTERN_SOGO_SSO_PASS_FILE is set but POSTERN_SOGO_NETWORKS is empty: the SSO password is never accepted',
    );
  }
  return createSogoSsoPasswordChecker({
    path,
    sogoNetworks: config.sogoNetworks,
    log,
    audit: (entry) => recordAudit(db, entry),
  });
}
