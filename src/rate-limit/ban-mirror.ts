// Every replica's in-process copy of the active Redis bans, so "is this login banned?" costs no
// round trip in the common case. Filled by one SCAN of the ban keys and kept current through the
// ban events Redis publishes with every ban and lift (one channel per key space).
//
// The mirror is only ever trusted to say "not banned": a "banned" answer sends the caller to Redis
// for the known-good exemption and the remaining time, and what Redis answers corrects the mirror.
// So a stale entry (a missed lift, clock skew) costs one round trip, never a wrong answer, and the
// only dangerous error, a missing ban, is avoided by distrusting the mirror whenever it may have
// missed an event: before its first sync, while the subscriber is disconnected, and until a fresh
// SCAN after every (re)subscribe has completed.
//
// While Redis cannot be asked at all, the mirror's entries are the best record of the bans Redis
// held, so they stay in force (failing closed): a resync that starts while Redis is still flaky
// keeps the entries it replaces until it completes, and only a completed SCAN drops them.
//
// Why one file of ~330 lines: the argument above (when the mirror may be trusted) is about the
// interplay of the subscriber's state, the SCAN generation and the entries, which live in one
// closure; the event encoding and merging at the end are small and only the mirror's. Split, the
// state the argument is about would be spread over files.
import type { Redis } from '../cache/redis.js';
import type { Logger } from '../log.js';
import type { Scope } from './store.js';

export interface BanEvent {
  op: 'ban' | 'lift';
  scope: Scope;
  subject: string;
  /** When the ban ends, in the publisher's clock; 0 for a lift. */
  expiresAtMs: number;
  /** What remained of the ban when published; lets a receiver with a skewed clock err long, not short. */
  ttlMs?: number;
}

export interface MirroredBan {
  scope: Scope;
  subject: string;
  remainingMs: number;
}

/** A mirrored ban; compared by identity to tell whether an entry changed during a round trip. */
export interface MirrorEntry {
  readonly expiresAtMs: number;
}

export interface BanMirror {
  /** Whether "no entry" can be trusted to mean "not banned in Redis". */
  isSynced(): boolean;
  /** The live entry for a subject, if any (expired entries are dropped here). */
  entry(scope: Scope, subject: string, nowMs: number): MirrorEntry | undefined;
  /** A ban this process just imposed (its event arrives too; applying it early is harmless). */
  noteBan(scope: Scope, subject: string, expiresAtMs: number, nowMs: number): void;
  /**
   * What Redis said about a subject after a lookup; `before` is entry() from before the lookup was
   * sent. An entry is only removed if no event touched it meanwhile, so a ban published during
   * the lookup is never lost to a stale "no ban" answer.
   */
  reconcile(scope: Scope, subject: string, before: MirrorEntry | undefined, remainingMs: number, nowMs: number): void;
  /**
   * For when Redis cannot be asked: the remaining ms of the ban the mirror holds on a subject
   * (0 if none), including entries kept from before a resync that has not completed yet.
   */
  banInForceMs(scope: Scope, subject: string, nowMs: number): number;
  /** Every ban banInForceMs would report, for listing while Redis cannot be asked. */
  bansInForce(nowMs: number): MirroredBan[];
  /** Drops a subject's entries in this process (a lift while Redis cannot be told); true if any. */
  forget(scope: Scope, subject: string): boolean;
  close(): void;
}

/** More bans than this and the mirror gives up (every check asks Redis) until a later SCAN fits. */
const MAX_MIRRORED_BANS = 200_000;
const RETRY_MS = 1000;
const OVERFLOW_RETRY_MS = 30_000;

export function createBanMirror(options: {
  redis: Redis;
  channel: string;
  /** One SCAN of every live ban in Redis (through the command connection, not the subscriber). */
  scanBans: () => Promise<MirroredBan[]>;
  now: () => number;
  log: Logger;
}): BanMirror {
  const { redis, channel, log, now } = options;
  let bans = new Map<string, MirrorEntry>();
  /**
   * The entries a resync replaced, until it completes: what the mirror knew before Redis went
   * away must not be forgotten because a SCAN was started and failed.
   */
  let held = new Map<string, MirrorEntry>();
  let synced = false;
  let closed = false;
  let subscribed = false;
  let overflowed = false;
  /** Bumped whenever the mirror may have missed an event; a sync started earlier then counts for nothing. */
  let generation = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let lastSweepMs = Number.NEGATIVE_INFINITY;

  // A connection in subscriber mode cannot run other commands, hence a connection of its own,
  // with the same fail-fast options. Subscribing is done by hand on every "ready", so each
  // (re)subscribe is followed by a SCAN: events published while it was away are lost for good.
  const subscriber = redis.duplicate({
    autoResubscribe: false,
    enableAutoPipelining: false,
    // A client already closed for good gets a mirror that never syncs (every check asks the store).
    lazyConnect: redis.status === 'end',
  });
  subscriber.on('error', (error: Error) =>
    log.debug({ err: error.message }, 'rate limiter: ban event subscriber error'),
  );
  subscriber.on('close', () => {
    subscribed = false;
    distrust();
  });
  subscriber.on('ready', () => void subscribeAndSync());
  subscriber.on('message', (from: string, message: string) => {
    if (from === channel) applyEvent(message);
  });
  const onCommandConnectionReady = () => {
    if (subscribed && !synced) void sync(++generation);
  };
  // The limiter has no owner to close it in every embedding; it goes when its Redis client goes.
  const onCommandConnectionEnd = () => close();
  redis.on('ready', onCommandConnectionReady);
  redis.once('end', onCommandConnectionEnd);

  function distrust(): void {
    synced = false;
    generation += 1;
  }

  async function subscribeAndSync(): Promise<void> {
    const started = ++generation;
    synced = false;
    try {
      await subscriber.subscribe(channel);
    } catch (error) {
      log.debug({ err: errorMessage(error) }, 'rate limiter: cannot subscribe to ban events yet');
      if (started === generation) retryLater(RETRY_MS);
      return;
    }
    if (started !== generation) return;
    subscribed = true;
    await sync(started);
  }

  async function sync(started: number): Promise<void> {
    if (closed) return;
    // Entries from before are not carried over: a lift missed meanwhile must not linger. They are
    // held (still in force while Redis cannot be asked) until the SCAN completes.
    held = mergeLonger(held, bans, now());
    bans = new Map();
    overflowed = false;
    let found: MirroredBan[];
    try {
      found = await options.scanBans();
    } catch (error) {
      log.debug({ err: errorMessage(error) }, 'rate limiter: cannot load bans into the mirror yet');
      if (started === generation) retryLater(RETRY_MS);
      return;
    }
    if (started !== generation || closed) return;
    const nowMs = now();
    // Events that arrived during the SCAN are already in; a lift that raced it may be re-added
    // here, which only costs a round trip until Redis corrects it.
    for (const ban of found) set(keyOf(ban.scope, ban.subject), nowMs + ban.remainingMs, nowMs);
    if (overflowed || started !== generation) return;
    held = new Map();
    synced = true;
  }

  function retryLater(ms: number): void {
    if (closed || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (closed || subscriber.status !== 'ready') return; // its next "ready" resubscribes
      if (subscribed) void sync(++generation);
      else void subscribeAndSync();
    }, ms);
    retryTimer.unref();
  }

  function applyEvent(message: string): void {
    const event = parseEvent(message);
    if (!event) {
      log.warn('rate limiter: ignoring a malformed ban event');
      return;
    }
    const key = keyOf(event.scope, event.subject);
    if (event.op === 'lift') {
      bans.delete(key);
      held.delete(key);
      return;
    }
    const nowMs = now();
    set(key, Math.max(event.expiresAtMs, event.ttlMs === undefined ? 0 : nowMs + event.ttlMs), nowMs);
  }

  /** Never shortens a ban: an entry that outlives its ban costs a round trip, a short one a miss. */
  function set(key: string, expiresAtMs: number, nowMs: number): void {
    if (overflowed || expiresAtMs <= nowMs) return;
    const known = bans.get(key);
    if (known && known.expiresAtMs >= expiresAtMs) return;
    if (!known && bans.size >= MAX_MIRRORED_BANS) {
      if (nowMs - lastSweepMs >= 1000) {
        lastSweepMs = nowMs;
        for (const [candidate, entry] of bans) if (entry.expiresAtMs <= nowMs) bans.delete(candidate);
      }
      if (bans.size >= MAX_MIRRORED_BANS) {
        // Dropping a ban would be a miss; give the mirror up instead and ask Redis for a while.
        log.warn({ bans: bans.size }, 'rate limiter: too many bans to mirror, checking every login in Redis');
        bans = new Map();
        overflowed = true;
        distrust();
        retryLater(OVERFLOW_RETRY_MS);
        return;
      }
    }
    bans.set(key, { expiresAtMs });
  }

  function close(): void {
    if (closed) return;
    closed = true;
    distrust();
    clearTimeout(retryTimer);
    redis.off('ready', onCommandConnectionReady);
    redis.off('end', onCommandConnectionEnd);
    subscriber.disconnect();
    bans = new Map();
    held = new Map();
  }

  function remainingOf(key: string, nowMs: number): number {
    const expiresAtMs = Math.max(bans.get(key)?.expiresAtMs ?? 0, held.get(key)?.expiresAtMs ?? 0);
    return Math.max(0, expiresAtMs - nowMs);
  }

  return {
    isSynced: () => synced && !closed && subscriber.status === 'ready',

    entry(scope, subject, nowMs) {
      const key = keyOf(scope, subject);
      const entry = bans.get(key);
      if (!entry) return undefined;
      if (entry.expiresAtMs > nowMs) return entry;
      bans.delete(key);
      return undefined;
    },

    noteBan(scope, subject, expiresAtMs, nowMs) {
      set(keyOf(scope, subject), expiresAtMs, nowMs);
    },

    reconcile(scope, subject, before, remainingMs, nowMs) {
      const key = keyOf(scope, subject);
      // Redis answered for this subject: what a resync held for it is settled either way.
      held.delete(key);
      if (remainingMs > 0) {
        // Redis's remaining time is authoritative; replace, even to shorten, unless an event
        // replaced the entry meanwhile (then the event is at least as new).
        if (bans.get(key) === before) {
          if (before) bans.delete(key);
          set(key, nowMs + remainingMs, nowMs);
        }
        return;
      }
      if (before && bans.get(key) === before) bans.delete(key);
    },

    banInForceMs: (scope, subject, nowMs) => remainingOf(keyOf(scope, subject), nowMs),

    bansInForce(nowMs) {
      const found: MirroredBan[] = [];
      for (const key of new Set([...bans.keys(), ...held.keys()])) {
        const ms = remainingOf(key, nowMs);
        const cut = key.indexOf(':');
        const scope = key.slice(0, cut);
        if (ms > 0 && (scope === 'ip' || scope === 'user'))
          found.push({ scope, subject: key.slice(cut + 1), remainingMs: ms });
      }
      return found;
    },

    forget(scope, subject) {
      const key = keyOf(scope, subject);
      const known = bans.delete(key);
      return held.delete(key) || known;
    },

    close,
  };
}

export function encodeLiftEvent(scope: Scope, subject: string): string {
  const event: BanEvent = { op: 'lift', scope, subject, expiresAtMs: 0 };
  return JSON.stringify(event);
}

function parseEvent(message: string): BanEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { op, scope, subject, expiresAtMs, ttlMs } = value as Record<string, unknown>;
  if (op !== 'ban' && op !== 'lift') return undefined;
  if (scope !== 'ip' && scope !== 'user') return undefined;
  if (typeof subject !== 'string' || typeof expiresAtMs !== 'number' || !Number.isFinite(expiresAtMs)) return undefined;
  if (ttlMs !== undefined && (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs))) return undefined;
  return { op, scope, subject, expiresAtMs, ...(ttlMs === undefined ? {} : { ttlMs }) };
}

const keyOf = (scope: Scope, subject: string) => `${scope}:${subject}`;

/** The union of two entry maps, the longer ban winning, expired entries left out. */
function mergeLonger(
  into: Map<string, MirrorEntry>,
  from: Map<string, MirrorEntry>,
  nowMs: number,
): Map<string, MirrorEntry> {
  const merged = new Map<string, MirrorEntry>();
  for (const source of [into, from]) {
    for (const [key, entry] of source) {
      if (entry.expiresAtMs <= nowMs) continue;
      const known = merged.get(key);
      if (!known || known.expiresAtMs < entry.expiresAtMs) merged.set(key, entry);
    }
  }
  return merged;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
