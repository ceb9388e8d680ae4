// Brute-force protection for logins: counts denials (never faults) per client IP (IPv6: per /64)
// and per username, bans past a threshold, and answers "blocked?" before any hash work. It never
// sees a stored hash and never keeps a password: only a keyed, truncated fingerprint of one.
//
// Why one file of ~380 lines: createRateLimiter is one closure over state every operation shares
// (the Redis and in-process stores, the ban mirror, the known-good write memo, Redis health);
// the parts that stand alone already live beside it (store.ts, redis-store.ts, memory-store.ts,
// ban-mirror.ts, client-address.ts). Cutting the closure would hand that state around as
// parameters on the passdb hot path without making any one step easier to read.
import { createHash, createHmac } from 'node:crypto';
import { type KeySpace, keys } from '../cache/keys.js';
import type { Redis } from '../cache/redis.js';
import { createRedisHealth } from '../cache/redis-health.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { createBanMirror } from './ban-mirror.js';
import { createNetworkList, parseClientAddress } from './client-address.js';
import { createMemoryStore } from './memory-store.js';
import { createRedisStore } from './redis-store.js';
import type { Ban, LimiterStore, Scope, StoreSnapshot, Subjects } from './store.js';

export type { Ban } from './store.js';

export interface LimiterOptions {
  redis: Redis;
  prefix: string;
  /** Distinct (user, wrong password) pairs from one IP (IPv6: /64) within the window before an IP ban. */
  ipThreshold: number;
  /** Distinct wrong passwords for one username within the window before a user ban. */
  userThreshold: number;
  windowSeconds: number;
  banSeconds: number;
  /** CIDR networks never counted or banned by IP (webmail, relays); their users are still counted. */
  exemptNetworks: string[];
  knownGoodIpSeconds: number;
  /** Keys the password fingerprints; shared by replicas so they count the same password once. */
  fingerprintSecret: string;
  log: Logger;
  /** Milliseconds; injectable for tests. */
  now?: () => number;
  /** A ban this process imposed, with what it bans (an IP, an IPv6 /64, or a username). */
  onBan?: BanHook;
}

/**
 * When not blocked, knownGoodIp is authoritative only if the user is banned (when it matters);
 * for a subject under no ban it reports what this process knows, without asking Redis.
 */
/** The thresholds and windows every limiter of a deployment takes from its configuration. */
export function limitsFromConfig(
  config: Pick<
    Config,
    | 'banIpThreshold'
    | 'banUserThreshold'
    | 'banWindowSeconds'
    | 'banSeconds'
    | 'banExemptNetworks'
    | 'knownGoodIpSeconds'
  >,
): Pick<
  LimiterOptions,
  'ipThreshold' | 'userThreshold' | 'windowSeconds' | 'banSeconds' | 'exemptNetworks' | 'knownGoodIpSeconds'
> {
  return {
    ipThreshold: config.banIpThreshold,
    userThreshold: config.banUserThreshold,
    windowSeconds: config.banWindowSeconds,
    banSeconds: config.banSeconds,
    exemptNetworks: config.banExemptNetworks,
    knownGoodIpSeconds: config.knownGoodIpSeconds,
  };
}

/** Called once per ban placed: its scope, and the IP or username banned. */
export type BanHook = (scope: Scope, subject: string | undefined) => void;

export type LimitDecision =
  | { blocked: false; knownGoodIp: boolean }
  | { blocked: true; scope: Scope; retryAfterSeconds: number };

export interface RateLimiter {
  /**
   * Before any hash work. A per-user ban does not block an IP that recently logged this user in.
   * No Redis round trip unless the ban mirror (or the in-process store) knows of a ban on the IP
   * or the user; a ban made on another replica is seen within milliseconds (pub/sub).
   */
  check(attempt: { ip: string; username: string }): Promise<LimitDecision>;
  /**
   * A denial (wrong password). Each distinct (user, password fingerprint) counts once per window,
   * so Dovecot's chained passdbs and client retries re-sending the same wrong password count once.
   */
  recordFailure(attempt: { ip: string; username: string; password: string }): Promise<{ bannedNow: Scope[] }>;
  /**
   * A success: remember ip as known-good for the user. It does not clear the user's failure count
   * (an attacker interleaving with the real user's successes would guess for ever). No Redis round
   * trip when this process marked the same pair less than a quarter of knownGoodIpSeconds ago.
   */
  recordSuccess(attempt: { ip: string; username: string }): Promise<void>;
  listBans(): Promise<Ban[]>;
  liftBan(scope: Scope, subject: string): Promise<boolean>;
  /** Closes the ban-event subscriber; also happens by itself when the Redis client ends. */
  close(): void;
}

/**
 * 32 bits of HMAC: plenty to tell a user's wrong passwords apart (a collision merely undercounts
 * one), too few to confirm a guess of the password offline should Redis and the secret both leak
 * (wrong passwords are often near-misses of the real one).
 */
const FINGERPRINT_HEX_CHARS = 8;
/** Longer usernames (no mail address is) are hashed, so a hostile one cannot bloat keys. */
const MAX_USERNAME_CHARS = 320;
/** Parsed client addresses kept; past this the memo starts again (a flood of new addresses). */
const MAX_REMEMBERED_ADDRESSES = 10_000;
/** (user, IP) pairs this process remembers marking known-good in Redis. */
const MAX_RECENT_KNOWN_GOOD = 50_000;
/** A known-good mark is rewritten once this fraction of its lifetime has passed, not on every login. */
const KNOWN_GOOD_REFRESH_FRACTION = 1 / 4;

export function createRateLimiter(options: LimiterOptions): RateLimiter {
  const { redis, log } = options;
  const now = options.now ?? Date.now;
  const isExempt = createNetworkList(options.exemptNetworks);
  const limits = {
    ipThreshold: options.ipThreshold,
    userThreshold: options.userThreshold,
    windowMs: options.windowSeconds * 1000,
    banMs: options.banSeconds * 1000,
    knownGoodIpMs: options.knownGoodIpSeconds * 1000,
  };
  const keySpace: KeySpace = { prefix: options.prefix };
  const redisStore = createRedisStore(redis, keySpace, limits);
  // The fallback while Redis is away. Bans and known-good IPs it learns during an outage are still
  // consulted after Redis returns, until they expire, so an outage never forgives an attacker.
  // It also records every success, so it knows this process's known-good pairs without Redis.
  const memoryStore = createMemoryStore(limits);
  const mirror = createBanMirror({
    redis,
    channel: keys.rateLimitEvents(keySpace),
    scanBans: () => redisStore.scanBans(),
    now,
    log,
  });
  /** (ip|user) → when this process last wrote its known-good mark to Redis (ms). */
  const knownGoodWrites = new RecentWrites(MAX_RECENT_KNOWN_GOOD);
  const knownGoodRefreshMs = limits.knownGoodIpMs * KNOWN_GOOD_REFRESH_FRACTION;

  const health = createRedisHealth(redis, log, 'rate limiter', 'counting and banning in process', now);
  const isRedisUsable = health.isUsable;
  const noteRedisUp = health.noteUp;
  const noteRedisDown = health.noteDown;
  /** Runs op on Redis when it is usable, else (or when it fails) on the in-process store. */
  async function onStore<T>(op: (store: LimiterStore) => Promise<T>): Promise<T> {
    if (isRedisUsable()) {
      try {
        const result = await op(redisStore);
        noteRedisUp();
        return result;
      } catch (error) {
        noteRedisDown(error);
      }
    }
    return op(memoryStore);
  }
  /** Runs op on the in-process store and, when usable, on Redis too; a Redis failure only degrades. */
  async function onBothStores<T>(op: (store: LimiterStore) => Promise<T>): Promise<T[]> {
    const results = [await op(memoryStore)];
    if (isRedisUsable()) {
      try {
        results.push(await op(redisStore));
        noteRedisUp();
      } catch (error) {
        noteRedisDown(error);
      }
    }
    return results;
  }

  // Clients come back from the same few addresses; parsing and matching each one once is enough.
  const ipSubjects = new Map<string, string | undefined>();
  function ipSubjectOf(raw: string): string | undefined {
    if (ipSubjects.has(raw)) return ipSubjects.get(raw);
    const address = parseClientAddress(raw);
    // Exempt or unparseable addresses are not counted by IP; the username still is.
    const subject = address && !isExempt(address) ? address.subject : undefined;
    if (ipSubjects.size >= MAX_REMEMBERED_ADDRESSES) ipSubjects.clear();
    ipSubjects.set(raw, subject);
    return subject;
  }

  function subjectsOf(attempt: { ip: string; username: string }): Subjects {
    return { user: userSubject(attempt.username), ip: ipSubjectOf(attempt.ip) };
  }

  function fingerprintOf(user: string, password: string): string {
    const userBytes = Buffer.from(user, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(userBytes.length);
    return createHmac('sha256', options.fingerprintSecret)
      .update(length)
      .update(userBytes)
      .update(password, 'utf8')
      .digest('hex')
      .slice(0, FINGERPRINT_HEX_CHARS);
  }

  /**
   * Redis's view of the subjects, correcting the mirror with it; undefined when Redis is unusable.
   * Only called when a ban is suspected, or the mirror cannot be trusted to say there is none.
   */
  async function redisSnapshot(subjects: Subjects, nowMs: number): Promise<StoreSnapshot | undefined> {
    if (!isRedisUsable()) return undefined;
    const userBefore = mirror.entry('user', subjects.user, nowMs);
    const ipBefore = subjects.ip === undefined ? undefined : mirror.entry('ip', subjects.ip, nowMs);
    let snapshot: StoreSnapshot;
    try {
      snapshot = await redisStore.snapshot(subjects, nowMs);
      noteRedisUp();
    } catch (error) {
      noteRedisDown(error);
      return undefined;
    }
    const afterMs = now();
    mirror.reconcile('user', subjects.user, userBefore, snapshot.userBanMs, afterMs);
    if (subjects.ip !== undefined) mirror.reconcile('ip', subjects.ip, ipBefore, snapshot.ipBanMs, afterMs);
    return snapshot;
  }

  /** Whether Redis may hold a ban on these subjects, by the mirror (no round trip). */
  function mayBeBannedInRedis(subjects: Subjects, nowMs: number): boolean {
    if (!mirror.isSynced()) return true;
    if (mirror.entry('user', subjects.user, nowMs)) return true;
    return subjects.ip !== undefined && mirror.entry('ip', subjects.ip, nowMs) !== undefined;
  }

  /** The mirror's bans as a snapshot, for when Redis cannot be asked (no known-good knowledge). */
  function mirroredSnapshot(subjects: Subjects, nowMs: number): StoreSnapshot {
    return {
      userBanMs: mirror.banInForceMs('user', subjects.user, nowMs),
      ipBanMs: subjects.ip === undefined ? 0 : mirror.banInForceMs('ip', subjects.ip, nowMs),
      isKnownGoodIp: false,
    };
  }

  return {
    async check(attempt) {
      const subjects = subjectsOf(attempt);
      const nowMs = now();
      const local = memoryStore.snapshotNow(subjects, nowMs);
      const banKnownLocally = local.ipBanMs > 0 || local.userBanMs > 0;
      const remote =
        (banKnownLocally || mayBeBannedInRedis(subjects, nowMs)) && isRedisUsable()
          ? await redisSnapshot(subjects, nowMs)
          : undefined;
      // Without Redis's answer (unusable, or it just failed) the bans mirrored from Redis before
      // stay in force: an outage must not forgive a ban. With the mirror synced and no entry this
      // adds nothing, which is the common case of Redis up and the subject under no ban.
      const snapshot = mergeSnapshots([local, remote ?? mirroredSnapshot(subjects, nowMs)]);
      // Known-good never lifts an IP ban: it exists so an attacker cannot lock out the real user,
      // not so a user's address can shelter an attack on others.
      if (snapshot.ipBanMs > 0) return { blocked: true, scope: 'ip', retryAfterSeconds: seconds(snapshot.ipBanMs) };
      if (snapshot.userBanMs > 0 && !snapshot.isKnownGoodIp) {
        return { blocked: true, scope: 'user', retryAfterSeconds: seconds(snapshot.userBanMs) };
      }
      return { blocked: false, knownGoodIp: snapshot.isKnownGoodIp };
    },

    async recordFailure(attempt) {
      const subjects = subjectsOf(attempt);
      const fingerprint = fingerprintOf(subjects.user, attempt.password);
      const nowMs = now();
      const bannedNow = await onStore(async (store) => {
        const banned = await store.recordFailure(subjects, fingerprint, nowMs);
        // Redis published the ban to every replica; this one need not wait for its own echo.
        if (store === redisStore) {
          for (const scope of banned) {
            const subject = scope === 'ip' ? subjects.ip : subjects.user;
            if (subject !== undefined) mirror.noteBan(scope, subject, nowMs + limits.banMs, now());
          }
        }
        return banned;
      });
      for (const scope of bannedNow) {
        const subject = scope === 'ip' ? subjects.ip : subjects.user;
        log.warn({ scope, subject, banSeconds: options.banSeconds }, 'rate limiter: ban imposed');
        options.onBan?.(scope, subject);
      }
      return { bannedNow };
    },

    async recordSuccess(attempt) {
      const subjects = subjectsOf(attempt);
      // Nothing to mark for an exempt or unparseable address (and a success clears no count).
      if (subjects.ip === undefined) return;
      const nowMs = now();
      const pair = `${subjects.ip}|${subjects.user}`;
      const writtenAtMs = knownGoodWrites.get(pair);
      const isFresh = writtenAtMs !== undefined && nowMs - writtenAtMs < knownGoodRefreshMs;
      // The in-process store answers for known-good IPs while Redis is away; a mark written within
      // the refresh time in both stores needs no rewrite.
      if (isFresh) return;
      await memoryStore.recordSuccess(subjects, nowMs);
      if (!isRedisUsable()) return;
      try {
        await redisStore.recordSuccess(subjects, nowMs);
        noteRedisUp();
        // Only a write Redis acknowledged is remembered, so a mark missed in an outage is retried.
        knownGoodWrites.set(pair, nowMs);
      } catch (error) {
        noteRedisDown(error);
      }
    },

    async listBans() {
      const nowMs = now();
      const byKey = new Map<string, Ban>();
      const lists = await onBothStores((store) => store.listBans(nowMs));
      // Redis did not answer: the bans mirrored from it are still in force (see check()).
      if (lists.length === 1) {
        lists.push(
          mirror.bansInForce(nowMs).map(({ scope, subject, remainingMs: ms }) => ({
            scope,
            subject,
            expiresInSeconds: seconds(ms),
          })),
        );
      }
      for (const bans of lists) {
        for (const ban of bans) {
          const key = `${ban.scope}:${ban.subject}`;
          const known = byKey.get(key);
          if (!known || known.expiresInSeconds < ban.expiresInSeconds) byKey.set(key, ban);
        }
      }
      return [...byKey.values()].sort((a, b) => a.scope.localeCompare(b.scope) || a.subject.localeCompare(b.subject));
    },

    async liftBan(scope, subject) {
      const normalised = scope === 'user' ? userSubject(subject) : (parseClientAddress(subject)?.subject ?? subject);
      const lifted = await onBothStores((store) => store.liftBan(scope, normalised));
      // The mirror's entry goes too; when Redis did not answer, that is the lift on this replica
      // (Redis's own copy of the ban is found again by the SCAN once Redis is back).
      const forgotten = mirror.forget(scope, normalised);
      if (lifted.length === 1) lifted.push(forgotten);
      if (lifted.some(Boolean)) log.info({ scope, subject: normalised }, 'rate limiter: ban lifted');
      return lifted.some(Boolean);
    },

    close() {
      mirror.close();
    },
  };
}

/** A bounded map of write times; insertion order is write order, so the oldest write goes first. */
class RecentWrites {
  private readonly writes = new Map<string, number>();

  constructor(private readonly maxEntries: number) {}

  get(key: string): number | undefined {
    return this.writes.get(key);
  }

  set(key: string, atMs: number): void {
    this.writes.delete(key);
    if (this.writes.size >= this.maxEntries) {
      const oldest = this.writes.keys().next();
      if (!oldest.done) this.writes.delete(oldest.value);
    }
    this.writes.set(key, atMs);
  }
}

/** Usernames are counted case-insensitively (Dovecot lowercases them too); never trimmed. */
function userSubject(username: string): string {
  const lower = username.toLowerCase();
  if (lower.length <= MAX_USERNAME_CHARS) return lower;
  return `sha256:${createHash('sha256').update(lower, 'utf8').digest('hex')}`;
}

function mergeSnapshots(snapshots: StoreSnapshot[]): StoreSnapshot {
  return {
    ipBanMs: Math.max(0, ...snapshots.map((snapshot) => snapshot.ipBanMs)),
    userBanMs: Math.max(0, ...snapshots.map((snapshot) => snapshot.userBanMs)),
    isKnownGoodIp: snapshots.some((snapshot) => snapshot.isKnownGoodIp),
  };
}

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
