// The one typed description of postern's configuration: every POSTERN_* variable, its type,
// default and meaning. Loading (env, *_FILE secrets, error collection) lives in load.ts; this
// file must stay free of side effects so the README reference can be generated from it.
//
// Why one file of ~420 lines: it is the one table of every POSTERN_* variable, read top to bottom
// by whoever configures postern and by scripts/config-reference.ts, which generates the README's
// reference from it. Split by area, the one list would become several to read and to generate from.
import { isIP } from 'node:net';
import { z } from 'zod';

/** `host:port` for a listener; IPv6 hosts in brackets (`[::1]:9082`). */
const listenAddress = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:9082')
  .transform((value) => {
    const cut = value.lastIndexOf(':');
    const host = value.slice(0, cut).replace(/^\[|\]$/g, '');
    const port = Number(value.slice(cut + 1));
    return { host, port };
  })
  .refine(({ port }) => port >= 0 && port < 65536, 'port must be 0-65535 (0 = any free port)');

/** Comma-separated `host:port` entries (IPv6 hosts in brackets), at least one; ports 1-65535. */
const hostPortList = z.string().transform((value, ctx) => {
  const entries: { host: string; port: number }[] = [];
  const parts = value.split(',').map((part) => part.trim());
  for (const part of parts) {
    const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(part);
    const port = Number(match?.[3]);
    const host = match?.[1] ?? match?.[2];
    if (!match || !host || port < 1 || port > 65535 || (match[1] !== undefined && isIP(host) !== 6)) {
      ctx.addIssue({ code: 'custom', message: `"${part}" is not host:port, e.g. 10.0.0.5:26379,[fd00::5]:26379` });
      continue;
    }
    if (entries.some((entry) => entry.host === host && entry.port === port)) {
      ctx.addIssue({ code: 'custom', message: `"${part}" is listed twice` });
      continue;
    }
    entries.push({ host, port });
  }
  return entries;
});

const boolean = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'])
  .transform((v) => v === '1' || v === 'true' || v === 'yes' || v === 'on');

const positiveInt = z.coerce.number().int().positive();

/** Comma-separated IPv4/IPv6 addresses or CIDR networks; a bare address becomes a /32 or /128. */
const networkList = z.string().transform((value, ctx) => {
  const networks: string[] = [];
  for (const entry of value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const [address = '', bits, extra] = entry.split('/');
    const family = isIP(address);
    const width = family === 4 ? 32 : 128;
    const isValidBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= width);
    if (family === 0 || !isValidBits || extra !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `"${entry}" is not an IP address or CIDR network, e.g. 10.0.0.0/8,fd00::/8`,
      });
      continue;
    }
    networks.push(bits === undefined ? `${address}/${width}` : entry);
  }
  return networks;
});

const url = (protocols: string[]) =>
  z.string().refine(
    (v) => {
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    `expected a ${protocols.map((p) => p.replace(':', '')).join(' or ')} URL`,
  );

export interface VariableSpec {
  /** The POSTERN_* environment variable name. */
  env: string;
  schema: z.ZodType;
  /** Default as the string a user would write; undefined = unset. */
  defaultValue?: string;
  /** Secrets may also be given as <env>_FILE and are never logged. */
  isSecret?: boolean;
  description: string;
}

/**
 * Every variable, keyed by its config property. Order is the README order.
 * Keep names stable: Dovecot configs, monitors and deploy files rely on them.
 */
export const variables = {
  dbUrl: {
    env: 'POSTERN_DB_URL',
    schema: url(['mysql:']),
    defaultValue: 'mysql://root@127.0.0.1:3306/postern',
    isSecret: true,
    description: 'MySQL/MariaDB connection URL (a mailcow database works). The database is created if missing.',
  },
  dbPoolSize: {
    env: 'POSTERN_DB_POOL_SIZE',
    schema: positiveInt.max(200),
    defaultValue: '10',
    description: 'Connections in the MySQL pool.',
  },
  redisUrl: {
    env: 'POSTERN_REDIS_URL',
    schema: url(['redis:', 'rediss:']),
    defaultValue: 'redis://127.0.0.1:6379',
    isSecret: true,
    description: 'Redis URL (sessions, rate limits, credential cache, sync lock).',
  },
  redisPrefix: {
    env: 'POSTERN_REDIS_PREFIX',
    schema: z.string().regex(/^[A-Za-z0-9:_-]*$/, 'letters, digits, : _ - only'),
    defaultValue: 'postern:',
    description: "Prefix of every Redis key postern writes (mailcow's own keys such as CRON_LOG excepted).",
  },
  redisSentinels: {
    env: 'POSTERN_REDIS_SENTINELS',
    schema: hostPortList,
    description:
      "Redis Sentinels, comma-separated `host:port` (unset = the one server of POSTERN_REDIS_URL). postern asks them for the master of POSTERN_REDIS_SENTINEL_NAME and follows failovers; POSTERN_REDIS_URL then gives only the master's password (and user), the database number and `rediss:` for TLS, not its host. Redis Cluster is not supported (README, Scale-out).",
  },
  redisSentinelName: {
    env: 'POSTERN_REDIS_SENTINEL_NAME',
    schema: z.string().regex(/^[A-Za-z0-9._-]{1,200}$/, 'letters, digits, . _ - only'),
    defaultValue: 'mymaster',
    description: 'The master group the Sentinels monitor (`sentinel monitor <name> ...` in their config).',
  },
  redisSentinelPassword: {
    env: 'POSTERN_REDIS_SENTINEL_PASSWORD',
    schema: z.string().min(1),
    isSecret: true,
    description:
      "The Sentinels' own password (their `requirepass`; unset = they ask for none). The master's is in POSTERN_REDIS_URL.",
  },
  internalListen: {
    env: 'POSTERN_INTERNAL_LISTEN',
    schema: listenAddress,
    defaultValue: '127.0.0.1:9082',
    description: 'Internal listener: Dovecot passdb, SOGo auth_request verify, health, metrics.',
  },
  internalTlsListen: {
    env: 'POSTERN_INTERNAL_TLS_LISTEN',
    schema: listenAddress,
    description:
      "A second internal listener speaking HTTPS, with the same endpoints and token rule (unset = none), for callers that only speak TLS such as mailcow's passwd-verify.lua. Needs POSTERN_INTERNAL_TLS_CERT_FILE and POSTERN_INTERNAL_TLS_KEY_FILE.",
  },
  internalTlsCertFile: {
    env: 'POSTERN_INTERNAL_TLS_CERT_FILE',
    schema: z.string().min(1),
    description: "PEM certificate (chain) of the internal TLS listener, e.g. mailcow's `data/assets/ssl/cert.pem`.",
  },
  internalTlsKeyFile: {
    env: 'POSTERN_INTERNAL_TLS_KEY_FILE',
    schema: z.string().min(1),
    description: "PEM private key of the internal TLS listener, e.g. mailcow's `data/assets/ssl/key.pem`.",
  },
  webListen: {
    env: 'POSTERN_WEB_LISTEN',
    schema: listenAddress,
    defaultValue: '127.0.0.1:8080',
    description: 'Web listener: SSO login, user portal, webmail handoff, admin API. Put TLS in front.',
  },
  internalToken: {
    env: 'POSTERN_INTERNAL_TOKEN',
    schema: z.string().min(16, 'must be at least 16 characters'),
    isSecret: true,
    description:
      'Shared secret the internal listener requires as `Authorization: Bearer <token>` (unset = no token required, and lifting bans there is refused). Our Lua sends it.',
  },
  logLevel: {
    env: 'POSTERN_LOG_LEVEL',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    defaultValue: 'info',
    description: 'pino log level.',
  },
  migrate: {
    env: 'POSTERN_MIGRATE',
    schema: z.enum(['on', 'off']),
    defaultValue: 'on',
    description: 'Apply pending schema migrations at start-up (`off` for read-only or externally managed schemas).',
  },
  hashThreads: {
    env: 'POSTERN_HASH_THREADS',
    schema: positiveInt.max(64),
    description: 'Worker threads for password hashing (default: number of CPUs).',
  },
  bcryptImpl: {
    env: 'POSTERN_BCRYPT_IMPL',
    schema: z.enum(['native', 'js']),
    defaultValue: 'native',
    description: 'bcrypt implementation in the hash workers: `native` (@node-rs/bcrypt) or `js` (bcryptjs).',
  },
  passwordScheme: {
    env: 'POSTERN_PASSWORD_SCHEME',
    schema: z.enum(['BLF-CRYPT', 'SHA512-CRYPT', 'SHA256-CRYPT', 'ARGON2ID', 'SSHA512', 'SSHA256']),
    defaultValue: 'BLF-CRYPT',
    description: "Scheme for new hashes (app passwords, local passwords); mailcow's default is BLF-CRYPT.",
  },
  bcryptCost: {
    env: 'POSTERN_BCRYPT_COST',
    schema: z.coerce.number().int().min(4).max(16),
    defaultValue: '10',
    description: 'bcrypt cost for new BLF-CRYPT hashes (mailcow writes 10).',
  },
  allowPlaintextHashes: {
    env: 'POSTERN_ALLOW_PLAINTEXT_HASHES',
    schema: boolean,
    defaultValue: 'false',
    description: 'Accept stored {PLAIN}/{CLEAR}/{CLEARTEXT}/{PLAIN-TRUNC} passwords. Off: such rows never log in.',
  },
  cacheKey: {
    env: 'POSTERN_CACHE_KEY',
    schema: z.string().min(32, 'must be at least 32 characters'),
    isSecret: true,
    description:
      'HMAC key of the verified-credential cache (unset: generated once and kept in Redis, shared by replicas).',
  },
  cacheTtlSeconds: {
    env: 'POSTERN_CACHE_TTL_SECONDS',
    schema: z.coerce.number().int().min(0).max(86_400),
    defaultValue: '900',
    description: 'How long a verified credential skips the hash (0 disables the cache).',
  },
  cacheLocalEntries: {
    env: 'POSTERN_CACHE_LOCAL_ENTRIES',
    schema: z.coerce.number().int().min(0).max(1_000_000),
    defaultValue: '10000',
    description: 'Size of the in-process layer in front of the Redis credential cache.',
  },
  loginCacheEntries: {
    env: 'POSTERN_LOGIN_CACHE_ENTRIES',
    schema: z.coerce.number().int().min(0).max(10_000_000),
    defaultValue: '50000',
    description:
      'Login names whose mailbox and app-password rows are kept in process, used only while the change counter (kept by triggers) shows no change; 0 = query every login.',
  },
  loginCacheMaxAgeMs: {
    env: 'POSTERN_LOGIN_CACHE_MAX_AGE_MS',
    schema: z.coerce.number().int().min(0).max(10_000),
    defaultValue: '0',
    description:
      'How old (ms) a read of the change counter may be and still confirm the in-process login rows: 0 = every login waits for a read that began after it arrived (a change committed before a login is seen by it); N = a change committed more than N ms before a login is seen, and the counter is read about 1000/N times a second under load instead of about once per two logins. The compose stack sets 250 (Dovecot there caches logins for 60 s anyway).',
  },
  loginHashFloor: {
    env: 'POSTERN_LOGIN_HASH_FLOOR',
    schema: positiveInt.max(32),
    defaultValue: '4',
    description:
      'Hash verifications every passdb login not settled by the credential cache spends at least (dummy ones fill up), so a wrong password costs the same for an unknown user and a mailbox with up to this many candidates (mailbox password + app passwords for the service); 1 = one hash per candidate, timing then shows their number.',
  },
  banIpThreshold: {
    env: 'POSTERN_BAN_IP_THRESHOLD',
    schema: positiveInt.max(100_000),
    defaultValue: '20',
    description: 'Distinct wrong passwords from one client IP (IPv6: per /64) within the window before it is banned.',
  },
  banUserThreshold: {
    env: 'POSTERN_BAN_USER_THRESHOLD',
    schema: positiveInt.max(100_000),
    defaultValue: '10',
    description:
      'Distinct wrong passwords for one username within the window before it is banned (known-good IPs exempt).',
  },
  banWindowSeconds: {
    env: 'POSTERN_BAN_WINDOW_SECONDS',
    schema: positiveInt.max(86_400),
    defaultValue: '600',
    description: 'Window in which failures are counted.',
  },
  banSeconds: {
    env: 'POSTERN_BAN_SECONDS',
    schema: positiveInt.max(30 * 86_400),
    defaultValue: '1800',
    description: 'How long a ban lasts.',
  },
  banExemptNetworks: {
    env: 'POSTERN_BAN_EXEMPT_NETWORKS',
    schema: networkList,
    defaultValue: '127.0.0.0/8,::1/128',
    description:
      'Client networks never counted or banned by IP (webmail, trusted relays). Per-user limits still apply.',
  },
  trustedProxies: {
    env: 'POSTERN_TRUSTED_PROXIES',
    // `none` because an empty value means "the default" to the loader.
    schema: z
      .string()
      .transform((value) => (value.trim().toLowerCase() === 'none' ? '' : value))
      .pipe(networkList),
    defaultValue: '127.0.0.0/8,::1/128',
    description:
      'Reverse proxies in front of the web listener (the shipped nginx runs on the same host). From these peers only, the client is the right-most X-Forwarded-For address that is not a trusted proxy (X-Real-IP when there is no X-Forwarded-For); the proxy must append to X-Forwarded-For or overwrite it. `none` = use the TCP peer.',
  },
  knownGoodIpSeconds: {
    env: 'POSTERN_KNOWN_GOOD_IP_SECONDS',
    schema: positiveInt.max(365 * 86_400),
    defaultValue: '2592000',
    description: "How long an IP that logged a user in successfully stays exempt from that user's ban.",
  },
  secretKey: {
    env: 'POSTERN_SECRET_KEY',
    schema: z.string().min(32, 'must be at least 32 characters (e.g. `openssl rand -base64 32`)'),
    isSecret: true,
    description:
      'Key that encrypts IdP client secrets at rest (AES-256-GCM). Required before an IdP with a client secret can be saved.',
  },
  apiKey: {
    env: 'POSTERN_API_KEY',
    schema: z.string().min(32, 'must be at least 32 characters'),
    isSecret: true,
    description:
      "Bootstrap admin API key (`X-API-Key`, acts as superadmin); retire it once admin accounts and API keys (POST /api/v1/api-keys) exist. Keys in mailcow's `api` table (active, rw/ro, allow_from) are accepted too.",
  },
  publicUrl: {
    env: 'POSTERN_PUBLIC_URL',
    schema: url(['http:', 'https:']).transform((value) => value.replace(/\/+$/, '')),
    defaultValue: 'http://127.0.0.1:8080',
    description:
      'External base URL of the web listener (behind TLS in production); redirects and links are built from it.',
  },
  cookieSecure: {
    env: 'POSTERN_COOKIE_SECURE',
    schema: z.enum(['auto', 'true', 'false']),
    defaultValue: 'auto',
    description: '`Secure` flag of session cookies; `auto` = on when POSTERN_PUBLIC_URL is https.',
  },
  sessionTtlSeconds: {
    env: 'POSTERN_SESSION_TTL_SECONDS',
    schema: positiveInt.max(30 * 86_400),
    defaultValue: '10800',
    description:
      "A web session ends after this long unused (mailcow's is 3 h); using the portal or webmail extends it, up to POSTERN_SESSION_MAX_SECONDS.",
  },
  sessionMaxSeconds: {
    env: 'POSTERN_SESSION_MAX_SECONDS',
    schema: positiveInt.max(90 * 86_400),
    defaultValue: '86400',
    description:
      'Longest a web session lives however much it is used, counted from sign-in; at least POSTERN_SESSION_TTL_SECONDS.',
  },
  auditRetentionDays: {
    env: 'POSTERN_AUDIT_RETENTION_DAYS',
    schema: positiveInt.max(36_500),
    defaultValue: '180',
    description:
      'Audit entries (`postern_audit`) older than this many days are deleted, hourly, by one replica at a time.',
  },
  adminSessionIdleSeconds: {
    env: 'POSTERN_ADMIN_SESSION_IDLE_SECONDS',
    schema: positiveInt.max(86_400),
    defaultValue: '1800',
    description:
      'An admin session (`/admin/login`) ends after this long unused; use extends it, up to POSTERN_ADMIN_SESSION_MAX_SECONDS.',
  },
  adminSessionMaxSeconds: {
    env: 'POSTERN_ADMIN_SESSION_MAX_SECONDS',
    schema: positiveInt.max(7 * 86_400),
    defaultValue: '28800',
    description: 'Longest an admin session lives however much it is used, counted from sign-in.',
  },
  adminWebmail: {
    env: 'POSTERN_ADMIN_WEBMAIL',
    schema: z.enum(['off', 'on']),
    defaultValue: 'off',
    description:
      "`on`: a read-write API key may open a mailbox's webmail (POST /api/v1/mailboxes/:username/webmail-link), audited; mailcow's ALLOW_ADMIN_EMAIL_LOGIN.",
  },
  idpTimeoutMs: {
    env: 'POSTERN_IDP_TIMEOUT_MS',
    schema: positiveInt.max(120_000),
    defaultValue: '7000',
    description: 'Timeout of each call to the identity provider (discovery, token, userinfo, admin API).',
  },
  sogoNetworks: {
    env: 'POSTERN_SOGO_NETWORKS',
    schema: networkList,
    defaultValue: '',
    description:
      "Addresses SOGo connects to Dovecot from; only logins from there may use a webmail session's IMAP secret (empty = handoff IMAP logins disabled).",
  },
  sogoSsoPassFile: {
    env: 'POSTERN_SOGO_SSO_PASS_FILE',
    schema: z.string().min(1),
    description:
      "Opt-in mailcow compatibility (unset = off): the path of mailcow's `sogo-sso.pass`, the static password mailcow's SOGo logs into IMAP with for any user. Accepted only from POSTERN_SOGO_NETWORKS, compared in constant time, audited; the file is read again on every such login (mailcow writes a new one whenever its Dovecot container starts).",
  },
  webmailUrl: {
    env: 'POSTERN_WEBMAIL_URL',
    schema: z.string().regex(/^(\/|https?:\/\/)/, 'expected a path or an http(s) URL'),
    defaultValue: '/SOGo/so/',
    description: 'Where /sogo-auth sends the browser after minting the handoff (SOGo behind the same nginx).',
  },
  maxBodyBytes: {
    env: 'POSTERN_MAX_BODY_BYTES',
    schema: positiveInt.max(1_048_576),
    defaultValue: '16384',
    description: 'Largest request body the passdb endpoint reads; larger bodies get 400.',
  },
  shutdownTimeoutMs: {
    env: 'POSTERN_SHUTDOWN_TIMEOUT_MS',
    schema: positiveInt.max(600_000),
    defaultValue: '8000',
    description:
      "On SIGTERM: how long requests in flight and a running sync (it stops at its next page) may take before postern cuts them and exits 1. Keep it below the orchestrator's grace (Docker and Podman: 10 s, compose `stop_grace_period`).",
  },
} satisfies Record<string, VariableSpec>;

export type VariableKey = keyof typeof variables;

type Output<K extends VariableKey> = z.output<(typeof variables)[K]['schema']>;
type HasDefault<K extends VariableKey> = (typeof variables)[K] extends { defaultValue: string } ? K : never;

/** The parsed configuration; variables without a default and unset are `undefined`. */
export type Config = {
  readonly [K in VariableKey as HasDefault<K>]: Output<K>;
} & {
  readonly [K in Exclude<VariableKey, HasDefault<VariableKey>>]: Output<K> | undefined;
};
