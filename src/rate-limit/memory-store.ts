// The in-process limiter backend, used while Redis is unreachable. Same semantics as the Redis
// scripts, bounded memory: every map is capped and sheds expired entries first, then the oldest.
import type { Ban, LimiterStore, Scope, StoreLimits, StoreSnapshot, Subjects } from './store.js';

/** Per map. Under a flood the oldest entries go first; bans are a separate map, so failures cannot push them out. */
const MAX_ENTRIES = 100_000;

export interface MemoryStore extends LimiterStore {
  /** snapshot() without the promise: the limiter asks this on every login. */
  snapshotNow(subjects: Subjects, nowMs: number): StoreSnapshot;
}

export function createMemoryStore(limits: StoreLimits, maxEntries = MAX_ENTRIES): MemoryStore {
  // Failure sets: member fingerprint → first seen (ms), like the Redis sorted sets.
  const failures = new ExpiringMap<Map<string, number>>(maxEntries);
  const bans = new ExpiringMap<true>(maxEntries);
  const knownGood = new ExpiringMap<true>(maxEntries);
  const thresholdOf = (scope: Scope) => (scope === 'ip' ? limits.ipThreshold : limits.userThreshold);

  const snapshotNow = (subjects: Subjects, nowMs: number): StoreSnapshot => ({
    ipBanMs: subjects.ip === undefined ? 0 : bans.remainingMs(banKey('ip', subjects.ip), nowMs),
    userBanMs: bans.remainingMs(banKey('user', subjects.user), nowMs),
    isKnownGoodIp: subjects.ip !== undefined && knownGood.remainingMs(goodKey(subjects), nowMs) > 0,
  });

  return {
    snapshotNow,
    async snapshot(subjects, nowMs) {
      return snapshotNow(subjects, nowMs);
    },

    async recordFailure(subjects, fingerprint, nowMs) {
      const bannedNow: Scope[] = [];
      const scopes: [Scope, string][] = [['user', subjects.user]];
      if (subjects.ip !== undefined) scopes.unshift(['ip', subjects.ip]);
      for (const [scope, subject] of scopes) {
        const key = banKey(scope, subject);
        const members = failures.get(key, nowMs) ?? new Map<string, number>();
        for (const [member, firstSeenMs] of members) {
          if (firstSeenMs <= nowMs - limits.windowMs) members.delete(member);
        }
        const isNew = !members.has(fingerprint);
        if (isNew) members.set(fingerprint, nowMs);
        failures.set(key, members, nowMs + limits.windowMs, nowMs);
        if (!isNew || members.size < thresholdOf(scope)) continue;
        if (bans.remainingMs(key, nowMs) > 0) {
          // Already banned (failures from a known-good IP): keep only what a ban decision needs.
          for (const member of members.keys()) {
            if (members.size <= thresholdOf(scope)) break;
            members.delete(member);
          }
          continue;
        }
        bans.set(key, true, nowMs + limits.banMs, nowMs);
        failures.delete(key);
        bannedNow.push(scope);
      }
      return bannedNow;
    },

    async recordSuccess(subjects, nowMs) {
      // Like Redis: a success marks the IP known-good and leaves the user's failure count alone.
      if (subjects.ip !== undefined) knownGood.set(goodKey(subjects), true, nowMs + limits.knownGoodIpMs, nowMs);
    },

    async listBans(nowMs) {
      const listed: Ban[] = [];
      for (const [key, expiresAtMs] of bans.live(nowMs)) {
        const [scope, subject] = splitBanKey(key);
        listed.push({ scope, subject, expiresInSeconds: Math.ceil((expiresAtMs - nowMs) / 1000) });
      }
      return listed;
    },

    async liftBan(scope, subject) {
      failures.delete(banKey(scope, subject));
      return bans.delete(banKey(scope, subject));
    },
  };
}

const banKey = (scope: Scope, subject: string) => `${scope}:${subject}`;
const goodKey = (subjects: Subjects) => `${subjects.ip}|${subjects.user}`;

function splitBanKey(key: string): [Scope, string] {
  const cut = key.indexOf(':');
  return [key.slice(0, cut) as Scope, key.slice(cut + 1)];
}

/** A Map with an expiry per entry and a size cap; Map order is insertion order, oldest first. */
class ExpiringMap<V> {
  private readonly entries = new Map<string, { value: V; expiresAtMs: number }>();
  private lastSweepMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly maxEntries: number) {}

  get(key: string, nowMs: number): V | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAtMs <= nowMs) this.entries.delete(key);
    return entry && entry.expiresAtMs > nowMs ? entry.value : undefined;
  }

  remainingMs(key: string, nowMs: number): number {
    const entry = this.entries.get(key);
    if (!entry) return 0;
    if (entry.expiresAtMs <= nowMs) this.entries.delete(key);
    return Math.max(0, entry.expiresAtMs - nowMs);
  }

  set(key: string, value: V, expiresAtMs: number, nowMs: number): void {
    this.entries.delete(key);
    // A full sweep is O(size): at most once a second, so a flood costs evictions, not sweeps.
    if (this.entries.size >= this.maxEntries && nowMs - this.lastSweepMs >= 1000) this.sweep(nowMs);
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expiresAtMs });
  }

  delete(key: string): boolean {
    return this.entries.delete(key);
  }

  *live(nowMs: number): Generator<[string, number]> {
    for (const [key, entry] of this.entries) if (entry.expiresAtMs > nowMs) yield [key, entry.expiresAtMs];
  }

  private sweep(nowMs: number): void {
    this.lastSweepMs = nowMs;
    for (const [key, entry] of this.entries) if (entry.expiresAtMs <= nowMs) this.entries.delete(key);
  }
}
