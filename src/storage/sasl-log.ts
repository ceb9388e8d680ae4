// mailcow's `sasl_log`: one row per (service, client IP, user), refreshed on every successful
// login. mailcow's UI reads it as "last logins", so labels and REPLACE semantics match mailcow.
import { isLoggedOutage } from '../errors.js';
import type { Logger } from '../log.js';
import type { Db } from './db.js';

export interface SaslLogEntry {
  username: string;
  realRip: string;
  /** Lower-case Dovecot service, or mailcow's upper-case SOGO / DAV / EAS / SSO labels. */
  service: string;
  /** The app password's id, 0 when the mailbox password was used. */
  appPasswordId: number;
}

export async function recordSaslLogin(db: Db, entry: SaslLogEntry): Promise<void> {
  await db.execute('REPLACE INTO sasl_log (username, real_rip, service, app_password) VALUES (?, ?, ?, ?)', [
    entry.username,
    entry.realRip,
    entry.service,
    entry.appPasswordId,
  ]);
}

export interface SaslLogWriter {
  /** Buffer a login; written within the flush interval. Never throws, never waits. */
  record(entry: SaslLogEntry): void;
  /** Write what is buffered now (tests, shutdown). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

interface Pending extends SaslLogEntry {
  atMs: number;
}

/**
 * Logins are buffered and written in one multi-row REPLACE per interval: a busy server logs the
 * same (service, IP, user) many times a second, and the table only keeps the last one anyway.
 * The row's datetime is the login's own time, so batching changes no value mailcow shows.
 */
export function createSaslLogWriter(
  db: Db,
  log: Logger,
  options: { flushIntervalMs?: number; maxBuffered?: number } = {},
): SaslLogWriter {
  const flushIntervalMs = options.flushIntervalMs ?? 1000;
  const maxBuffered = options.maxBuffered ?? 20_000;
  let pending = new Map<string, Pending>();
  let flushing: Promise<void> | undefined;
  let isWarned = false;

  const writeBatch = async (batch: Pending[]) => {
    // 500 rows per statement keeps each packet far below max_allowed_packet.
    for (let start = 0; start < batch.length; start += 500) {
      const rows = batch.slice(start, start + 500);
      await db.execute(
        `REPLACE INTO sasl_log (username, real_rip, service, app_password, datetime) VALUES ${rows.map(() => '(?, ?, ?, ?, ?)').join(', ')}`,
        rows.flatMap((row) => [row.username, row.realRip, row.service, row.appPasswordId, new Date(row.atMs)]),
      );
    }
  };

  const flush = async (): Promise<void> => {
    if (flushing) await flushing;
    if (pending.size === 0) return;
    const batch = [...pending.values()];
    pending = new Map();
    flushing = writeBatch(batch)
      .then(() => {
        isWarned = false;
      })
      .catch((error: unknown) => {
        // Keep what did not get written (newer entries win), within the bound, for the next try.
        for (const row of batch) {
          const key = keyOf(row);
          if (!pending.has(key) && pending.size < maxBuffered) pending.set(key, row);
        }
        // A MySQL outage is logged by the pool itself (storage/outage-log.ts).
        if (!isWarned) {
          log[isLoggedOutage(error) ? 'debug' : 'warn'](
            { err: (error as Error).message, rows: batch.length },
            'sasl_log write failed; will retry',
          );
        }
        isWarned = true;
      })
      .finally(() => {
        flushing = undefined;
      });
    await flushing;
  };

  const timer = setInterval(() => void flush(), flushIntervalMs);
  timer.unref();

  return {
    record(entry) {
      const key = keyOf(entry);
      const existing = pending.get(key);
      if (existing) {
        // Same row again: only its time and app password change; the Map keeps its first slot.
        existing.atMs = Date.now();
        existing.appPasswordId = entry.appPasswordId;
        return;
      }
      if (pending.size >= maxBuffered) return;
      pending.set(key, { ...entry, atMs: Date.now() });
    },
    flush,
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}

function keyOf(entry: SaslLogEntry): string {
  return `${entry.service}\u0000${entry.realRip}\u0000${entry.username}`;
}

export interface SaslLoginBucket {
  service: string;
  /** Start of the hour (or day), UTC, `YYYY-MM-DD HH:00:00`. */
  bucket: string;
  logins: number;
}

/**
 * Last logins per service and hour (`unit` hour) or day since `since`, from sasl_log (one row per
 * service, client IP and user: a pair that logs in again moves to its latest hour). Domain
 * admins pass their domains. Uses the datetime index.
 */
export async function countSaslLogins(
  db: Pick<Db, 'many'>,
  input: { hours: number; unit: 'hour' | 'day'; domains?: readonly string[] | undefined },
): Promise<{ now: string; buckets: SaslLoginBucket[] }> {
  const format = input.unit === 'hour' ? '%Y-%m-%d %H:00:00' : '%Y-%m-%d 00:00:00';
  const domains = input.domains ?? [];
  const scoped = input.domains
    ? `AND SUBSTRING_INDEX(username, '@', -1) IN (${domains.map(() => '?').join(',') || "''"})`
    : '';
  const rows = await db.many<{ service: string; bucket: string; logins: number }>(
    `SELECT service, DATE_FORMAT(datetime, '${format}') AS bucket, COUNT(*) AS logins FROM sasl_log
     WHERE datetime >= NOW() - INTERVAL ? HOUR ${scoped} GROUP BY service, bucket ORDER BY bucket, service`,
    [input.hours, ...domains],
  );
  // The database's clock and zone name the buckets, so the caller's clock cannot skew them.
  const [now] = await db.many<{ now: string }>(`SELECT DATE_FORMAT(NOW(), '${format}') AS now`);
  return {
    now: String(now?.now),
    buckets: rows.map((row) => ({ service: row.service, bucket: String(row.bucket), logins: Number(row.logins) })),
  };
}
