// Reads the change counter the triggers of migrations 0003 and 0005 maintain. A reader needs a value read
// after it asked (so a change committed before its request is seen); concurrent readers share
// one query: whoever arrives while a read is in flight waits for the next one.
import type { Db } from './db.js';
import { changeTriggerName, WATCHED_TABLES } from './migrations/0003-change-counter.js';
import { TFA_WATCHED_TABLES } from './migrations/0005-tfa-change-counter.js';

/** Every table whose changes move the counter: what a mail login reads. */
export const COUNTED_TABLES: readonly string[] = [...WATCHED_TABLES, ...TFA_WATCHED_TABLES];

export interface ChangeCounter {
  /**
   * A counter value read from MySQL after this call began (strict), or at most maxAgeMs before
   * it. Throws on MySQL faults.
   */
  read(): Promise<number>;
}

export interface ChangeCounterOptions {
  /** How long before a request a read may have started and still answer it; 0 = strict. */
  maxAgeMs?: number;
  /** Monotonic milliseconds (tests). */
  now?: () => number;
}

interface Read {
  startedAt: number;
  value: Promise<number>;
}

export function createChangeCounter(db: Pick<Db, 'one'>, options: ChangeCounterOptions = {}): ChangeCounter {
  const maxAgeMs = options.maxAgeMs ?? 0;
  const now = options.now ?? (() => performance.now());
  let inFlight: Read | undefined;
  let queued: Promise<number> | undefined;
  /** The newest read that succeeded (only kept when maxAgeMs > 0). */
  let lastGood: { startedAt: number; value: number } | undefined;

  const query = async () => {
    const row = await db.one<{ changes: number }>('SELECT changes FROM postern_change_counter WHERE id = 1');
    if (!row) throw new Error('postern_change_counter has no row');
    return Number(row.changes);
  };
  const start = (): Promise<number> => {
    const startedAt = now();
    const value = query();
    const read: Read = { startedAt, value };
    inFlight = read;
    void value.then(
      (changes) => {
        if (inFlight === read) inFlight = undefined;
        if (maxAgeMs > 0 && (!lastGood || lastGood.startedAt < startedAt)) lastGood = { startedAt, value: changes };
      },
      () => {
        if (inFlight === read) inFlight = undefined;
      },
    );
    return value;
  };

  return {
    read() {
      if (maxAgeMs > 0) {
        const oldestUsable = now() - maxAgeMs;
        if (lastGood && lastGood.startedAt >= oldestUsable) return Promise.resolve(lastGood.value);
        if (inFlight && inFlight.startedAt >= oldestUsable) return inFlight.value;
      }
      if (!inFlight) return start();
      // The read in flight may have been sent before our caller's request arrived: wait for the
      // next one, which every caller arriving meanwhile shares. (Spacing strict reads further
      // apart was measured: it saves MySQL little and costs every login the wait.)
      queued ??= inFlight.value
        .catch(() => undefined)
        .then(() => {
          queued = undefined;
          return start();
        });
      return queued;
    },
  };
}

/** True when every trigger exists, so the counter really moves on every change. */
export async function isChangeTrackingInstalled(db: Pick<Db, 'one'>): Promise<boolean> {
  const expected = COUNTED_TABLES.length * 3;
  const row = await db.one<{ n: number }>(
    `SELECT COUNT(*) AS n FROM information_schema.TRIGGERS
      WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME IN (${Array(expected).fill('?').join(', ')})`,
    COUNTED_TABLES.flatMap((table) => ['INSERT', 'UPDATE', 'DELETE'].map((event) => changeTriggerName(table, event))),
  );
  const counter = await db.one<{ n: number }>(
    "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'postern_change_counter'",
  );
  return Number(row?.n) === expected && Number(counter?.n) === 1;
}
