// Hourly counters in Redis, shared by every replica, for the console dashboard: refused mail
// logins per service and bans placed. Counts are summed in process and written once a second in
// one pipeline (INCRBY + EXPIRE), so the passdb never waits for Redis and a login never writes a
// key of its own. Bounded: the pending map holds at most (known services + `other` + bans) × the
// hours it spans; a write that fails is dropped, counted and logged once per outage.
import type { Logger } from '../log.js';
import { keys } from './keys.js';
import type { Redis } from './redis.js';

export const STATS_TTL_SECONDS = 8 * 24 * 3600;
/** What a service the counters do not know is counted as (the metrics' label too). */
export const OTHER_SERVICE = 'other';

/** The services the counters name: the known ones and `other`, so the key families stay bounded. */
export function statsServices(known: readonly string[]): string[] {
  return [...known, OTHER_SERVICE];
}

export interface LoginStats {
  /** Count a refused mail login; returns at once, never throws. */
  recordFailure(service: string): void;
  /** Count a ban the limiter placed; returns at once, never throws. */
  recordBan(): void;
  /** Write what is pending now (tests, shutdown). */
  flush(): Promise<void>;
  /** Writes that failed (their counts are lost). */
  readonly failedWrites: number;
  close(): Promise<void>;
}

/** `yyyymmddhh` of the UTC hour `ms` is in. */
export function statsHour(ms: number): string {
  return new Date(ms).toISOString().slice(0, 13).replace(/[-T]/g, '');
}

export function createLoginStats(deps: {
  redis: Pick<Redis, 'pipeline'>;
  prefix: string;
  /** The services counted under their own name (login/services.ts's KNOWN_SERVICES). */
  services: readonly string[];
  log: Logger;
  flushIntervalMs?: number;
  now?: () => number;
}): LoginStats {
  const ks = { prefix: deps.prefix };
  const now = deps.now ?? Date.now;
  const known = new Set(deps.services);
  let pending = new Map<string, number>();
  let failedWrites = 0;
  let warned = false;
  let flushing: Promise<void> | undefined;
  const add = (key: string) => pending.set(key, (pending.get(key) ?? 0) + 1);

  const flush = async (): Promise<void> => {
    if (flushing) await flushing;
    if (pending.size === 0) return;
    const batch = pending;
    pending = new Map();
    const pipeline = deps.redis.pipeline();
    for (const [key, count] of batch) pipeline.incrby(key, count).expire(key, STATS_TTL_SECONDS);
    flushing = pipeline
      .exec()
      .then((results) => {
        if (results?.some(([error]) => error)) throw new Error('a counter write failed');
        warned = false;
      })
      .catch((error: unknown) => {
        failedWrites += 1;
        if (!warned)
          deps.log.warn({ err: error instanceof Error ? error.message : String(error) }, 'login stats: write failed');
        warned = true;
      })
      .finally(() => {
        flushing = undefined;
      });
    await flushing;
  };

  const timer = setInterval(() => void flush(), deps.flushIntervalMs ?? 1000);
  timer.unref();
  return {
    recordFailure(service) {
      add(keys.statsFailures(ks, known.has(service) ? service : OTHER_SERVICE, statsHour(now())));
    },
    recordBan() {
      add(keys.statsBans(ks, statsHour(now())));
    },
    flush,
    get failedWrites() {
      return failedWrites;
    },
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}

export interface HourlyStats {
  /** UTC hours (`yyyymmddhh`), oldest first. */
  hours: string[];
  /** Service → refused logins per hour, aligned with `hours`. */
  failures: Record<string, number[]>;
  bans: number[];
}

/** The counters of `services` (statsServices()) for the `count` hours ending with the current one, in one MGET. */
export async function readHourlyStats(
  redis: Pick<Redis, 'mget'>,
  prefix: string,
  services: readonly string[],
  count: number,
  nowMs: number = Date.now(),
): Promise<HourlyStats> {
  const ks = { prefix };
  const hours = Array.from({ length: count }, (_, i) => statsHour(nowMs - (count - 1 - i) * 3_600_000));
  const names = [
    ...services.flatMap((s) => hours.map((h) => keys.statsFailures(ks, s, h))),
    ...hours.map((h) => keys.statsBans(ks, h)),
  ];
  const values = await redis.mget(...names);
  const number = (i: number) => Number(values[i] ?? 0) || 0;
  const failures: Record<string, number[]> = {};
  services.forEach((service, s) => {
    const counts = hours.map((_, h) => number(s * count + h));
    if (counts.some((n) => n > 0)) failures[service] = counts;
  });
  const bans = hours.map((_, h) => number(services.length * count + h));
  return { hours, failures, bans };
}
