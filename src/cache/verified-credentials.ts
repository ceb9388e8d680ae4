// The verified-credential cache: a CredentialVerifier in front of another that remembers
// successes only, so a repeat login skips the slow hash. It must never deny or fail a login
// because of itself: any Redis problem falls back to the local layer and the inner verifier.
//
// Why this is safe enough (Mailu PR #1758, Authelia internal/authentication/cached.go): mail
// clients resend the password on every connection anyway; what we keep is an HMAC under a secret
// over (username, candidate, stored hash), never the password or an unkeyed hash of it. The stored
// hash is part of the key, so a password change or a different hash is a miss by construction.
// (In process the HMAC covers (username, candidate) and the entry lists the stored hashes it
// verified against: the same rule, with one HMAC for a mailbox of many app passwords.)
// Residual risk, stated plainly: whoever holds the secret AND a live entry AND the stored hash can
// test password guesses at HMAC speed for that user until the entry expires, and whoever holds the
// secret and can write to Redis can forge an entry (a login with any password). With the generated
// secret, Redis access is enough for both; set POSTERN_CACHE_KEY (kept outside Redis) to prevent it.
import { createHmac, createSecretKey, type KeyObject, randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { CredentialVerifier } from '../passwords/credential-verifier.js';
import { type KeySpace, keys } from './keys.js';
import type { Redis } from './redis.js';
import { createRedisHealth } from './redis-health.js';
import { fetchSharedSecret, waitUntilReady } from './shared-secret.js';

export interface VerifiedCredentialCacheOptions {
  redis: Redis;
  prefix: string;
  /** POSTERN_CACHE_KEY; unset = generated once and shared through Redis. */
  secret?: string;
  /** 0 disables the cache entirely (pure pass-through). */
  ttlSeconds: number;
  /** Bound of the in-process layer; 0 = Redis only. */
  localEntries: number;
  log: Logger;
  /** Milliseconds; injectable for tests. */
  now?: () => number;
  /** Metrics hook: which layer answered, or miss (the inner verifier ran). */
  onLookup?: (layer: 'local' | 'redis' | 'miss') => void;
}

export type CachingVerifier = CredentialVerifier & { close(): void };

type HashVerdict = Awaited<ReturnType<CredentialVerifier['verify']>>;
type SuccessVerdict = Extract<HashVerdict, { ok: true }>;

/** How long to wait at creation for a client that is still connecting (createRedis connects lazily). */
const CONNECT_WAIT_MS = 2000;
/** While the shared secret could not be loaded, retry at most this often. */
const SECRET_RETRY_MS = 5000;
const SECRET_BYTES = 32;

export async function createCachingVerifier(
  inner: CredentialVerifier,
  options: VerifiedCredentialCacheOptions,
): Promise<CachingVerifier> {
  if (options.ttlSeconds <= 0) {
    return {
      verify: (username, storedHash, candidate) => inner.verify(username, storedHash, candidate),
      findCached: async () => undefined,
      verifyDummy: (candidate) => inner.verifyDummy(candidate),
      close() {},
    };
  }

  const { redis, log, ttlSeconds } = options;
  const now = options.now ?? Date.now;
  const onLookup = options.onLookup ?? (() => undefined);
  const keySpace: KeySpace = { prefix: options.prefix };
  const local = new LocalLayer(options.localEntries);
  const inFlight = new Map<string, Promise<HashVerdict>>();

  // The secret. A configured one wins. Otherwise replicas share one generated secret through
  // Redis (SET NX, then GET: whoever wrote first wins). If Redis is down at creation we start with
  // a private random secret, use only the local layer (entries under a private secret are useless
  // to other replicas), and keep trying to load the shared one; once loaded, the local layer is
  // cleared because its digests were made under the old secret.
  // A KeyObject, made once per secret: createHmac with raw bytes would copy and check them per login.
  let secret: KeyObject;
  let isSecretShared: boolean;
  let nextSecretAttemptMs = 0;
  let secretAttempt: Promise<void> | undefined;
  if (options.secret !== undefined) {
    secret = createSecretKey(Buffer.from(options.secret, 'utf8'));
    isSecretShared = true;
  } else {
    try {
      if (!(await waitUntilReady(redis, CONNECT_WAIT_MS))) throw new Error(`redis is ${redis.status}`);
      secret = createSecretKey(Buffer.from(await fetchSharedSecret(redis, keys.cacheSecret(keySpace)), 'utf8'));
      isSecretShared = true;
    } catch (error) {
      secret = createSecretKey(randomBytes(SECRET_BYTES));
      isSecretShared = false;
      nextSecretAttemptMs = now() + SECRET_RETRY_MS;
      log.warn(
        { err: errorMessage(error) },
        'credential cache: shared secret not loadable from redis, using a private one until it is',
      );
    }
  }

  function retrySharedSecret(): void {
    if (isSecretShared || secretAttempt || now() < nextSecretAttemptMs || redis.status !== 'ready') return;
    nextSecretAttemptMs = now() + SECRET_RETRY_MS;
    secretAttempt = fetchSharedSecret(redis, keys.cacheSecret(keySpace))
      .then((shared) => {
        secret = createSecretKey(Buffer.from(shared, 'utf8'));
        isSecretShared = true;
        local.clear();
        log.info('credential cache: shared secret loaded from redis');
      })
      .catch(() => undefined)
      .finally(() => {
        secretAttempt = undefined;
      });
  }

  const health = createRedisHealth(redis, log, 'credential cache', 'using the local layer and the hash', now);
  // Entries under a private secret are useless to other replicas: stay local until it is shared.
  const isRedisUsable = () => isSecretShared && health.isUsable();
  const noteRedisUp = health.noteUp;
  const noteRedisDown = health.noteDown;

  async function lookUpRedis(key: string): Promise<{ verdict: SuccessVerdict; expiresAtMs: number } | undefined> {
    if (!isRedisUsable()) return undefined;
    try {
      // One round trip answers both "is it there" and "for how long", so the local copy never
      // outlives the shared entry.
      const replies = await redis.pipeline().get(key).pttl(key).exec();
      const [getReply, ttlReply] = replies ?? [];
      if (!getReply || !ttlReply) throw new Error('pipeline returned no replies');
      if (getReply[0]) throw getReply[0];
      if (ttlReply[0]) throw ttlReply[0];
      noteRedisUp();
      const [, value] = getReply;
      const [, remainingMs] = ttlReply;
      if (typeof value !== 'string' || typeof remainingMs !== 'number' || remainingMs === -2) return undefined;
      const lifetimeMs = remainingMs > 0 ? Math.min(remainingMs, ttlSeconds * 1000) : ttlSeconds * 1000;
      return { verdict: successVerdict(value), expiresAtMs: now() + lifetimeMs };
    } catch (error) {
      noteRedisDown(error);
      return undefined;
    }
  }

  async function storeRedis(key: string, verdict: SuccessVerdict): Promise<void> {
    if (!isRedisUsable()) return;
    try {
      await redis.set(key, verdict.scheme, 'EX', ttlSeconds);
      noteRedisUp();
    } catch (error) {
      noteRedisDown(error);
    }
  }

  async function verifyThroughLayers(
    digest: string,
    localDigest: string,
    username: string,
    storedHash: string,
    candidate: string,
  ): Promise<HashVerdict> {
    const key = keys.verifiedCredential(keySpace, digest);
    const shared = await lookUpRedis(key);
    if (shared) {
      local.set(localDigest, storedHash, shared.verdict, shared.expiresAtMs);
      onLookup('redis');
      return shared.verdict;
    }
    onLookup('miss');
    const verdict = await inner.verify(username, storedHash, candidate);
    // Failures are never cached: a wrong password must always reach the hash (and the limiter).
    if (verdict.ok) {
      local.set(localDigest, storedHash, verdict, now() + ttlSeconds * 1000);
      await storeRedis(key, verdict);
    }
    return verdict;
  }

  return {
    async verify(username, storedHash, candidate) {
      retrySharedSecret();
      const localDigest = digestOf(secret, [username, candidate]);
      const remembered = local.get(localDigest, storedHash, now());
      if (remembered) {
        onLookup('local');
        return remembered;
      }
      const digest = digestOf(secret, [username, candidate, storedHash]);
      // Singleflight: a client opening ten IMAP connections at once pays for one hash, not ten.
      const pending = inFlight.get(digest);
      if (pending) return pending;
      const flight = verifyThroughLayers(digest, localDigest, username, storedHash, candidate).finally(() => {
        inFlight.delete(digest);
      });
      inFlight.set(digest, flight);
      return flight;
    },
    async findCached(username, candidate, storedHashes) {
      const localDigest = digestOf(secret, [username, candidate]);
      const nowMs = now();
      for (const [index, storedHash] of storedHashes.entries()) {
        const verdict = local.get(localDigest, storedHash, nowMs);
        if (verdict) return { index, verdict };
      }
      // Nothing in process: the shared entries, all asked at once; the first in order wins.
      const shared = await Promise.all(
        storedHashes.map((storedHash) =>
          lookUpRedis(keys.verifiedCredential(keySpace, digestOf(secret, [username, candidate, storedHash]))),
        ),
      );
      const index = shared.findIndex((found) => found !== undefined);
      const found = shared[index];
      if (!found) return undefined;
      local.set(localDigest, storedHashes[index] as string, found.verdict, found.expiresAtMs);
      return { index, verdict: found.verdict };
    },
    verifyDummy: (candidate) => inner.verifyDummy(candidate),
    close() {
      local.clear();
    },
  };
}

/**
 * HMAC-SHA256 over length-prefixed fields, so ("ab","c") and ("a","bc") differ. The Redis key
 * covers (username, candidate, stored hash); the in-process layer is keyed by (username,
 * candidate) and keeps the stored hashes that candidate verified against, so a mailbox with many
 * app passwords costs one HMAC, not one per app password. Bytes are bytes: nothing is trimmed
 * or case-folded (DESIGN §2.6).
 */
function digestOf(secret: KeyObject, fields: readonly string[]): string {
  // One buffer for all fields: this runs on every login.
  let size = 0;
  for (const field of fields) size += 4 + Buffer.byteLength(field);
  const message = Buffer.allocUnsafe(size);
  let offset = 0;
  for (const field of fields) {
    offset = message.writeUInt32BE(Buffer.byteLength(field), offset);
    offset += message.write(field, offset, 'utf8');
  }
  return createHmac('sha256', secret).update(message).digest('base64url');
}

/**
 * The Redis value is the scheme name alone, rebuilt into a verdict on a hit: should a success
 * verdict ever carry something derived from the password (a re-hash), it still never reaches Redis.
 * A change of HashVerdict's success shape shows up here as a type error.
 */
function successVerdict(scheme: string): SuccessVerdict {
  return { ok: true, scheme };
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Stored hashes remembered per (username, candidate); more than a mailbox's app passwords. */
const MAX_HASHES_PER_ENTRY = 32;

/**
 * In-process LRU of (username, candidate) digests, each with the stored hashes that candidate
 * verified against and their expiry. Map iteration order is insertion order, oldest first.
 */
class LocalLayer {
  private readonly entries = new Map<string, Map<string, { verdict: SuccessVerdict; expiresAtMs: number }>>();

  constructor(private readonly capacity: number) {}

  get(digest: string, storedHash: string, nowMs: number): SuccessVerdict | undefined {
    const hashes = this.entries.get(digest);
    const entry = hashes?.get(storedHash);
    if (!hashes || !entry) return undefined;
    if (entry.expiresAtMs <= nowMs) {
      hashes.delete(storedHash);
      if (hashes.size === 0) this.entries.delete(digest);
      return undefined;
    }
    this.entries.delete(digest);
    this.entries.set(digest, hashes);
    return entry.verdict;
  }

  set(digest: string, storedHash: string, verdict: SuccessVerdict, expiresAtMs: number): void {
    if (this.capacity <= 0) return;
    const hashes = this.entries.get(digest) ?? new Map();
    this.entries.delete(digest);
    this.entries.set(digest, hashes);
    hashes.delete(storedHash);
    hashes.set(storedHash, { verdict, expiresAtMs });
    if (hashes.size > MAX_HASHES_PER_ENTRY) hashes.delete(hashes.keys().next().value as string);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}
