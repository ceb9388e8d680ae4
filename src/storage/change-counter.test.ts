// The change counter against the real MariaDB: the triggers move it, concurrent readers share a
// query, and no reader is ever answered by a query that started before it asked.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropDatabase, MYSQL_ROOT_URL, uniqueName } from '../../test/support/env.js';
import { createLogger } from '../log.js';
import { createChangeCounter, isChangeTrackingInstalled } from './change-counter.js';
import { createDb, type Db } from './db.js';
import { applyMigrations } from './migrate.js';
import { tfaChangeCounter } from './migrations/0005-tfa-change-counter.js';

let db: Db;
const name = uniqueName('counter');

beforeAll(async () => {
  db = await createDb({ url: `${MYSQL_ROOT_URL}/${name}`, poolSize: 4, createDatabase: true });
  await applyMigrations(db, createLogger('silent'));
});

afterAll(async () => {
  await db?.close();
  await dropDatabase(name);
});

/** The real database, with a count of counter queries and the time each one started. */
function observed() {
  const starts: number[] = [];
  const spy: Pick<Db, 'one'> = {
    one: (sql, params) => {
      starts.push(performance.now());
      return db.one(sql, params);
    },
  };
  return { spy, starts };
}

describe('createChangeCounter', () => {
  it('finds the triggers installed by the migrations', async () => {
    expect(await isChangeTrackingInstalled(db)).toBe(true);
  });

  it('moves when a watched row changes', async () => {
    const counter = createChangeCounter(db);
    const before = await counter.read();
    await db.execute("INSERT INTO domain (domain, active) VALUES ('counted.example', 1)");
    expect(await counter.read()).toBe(before + 1);
  });

  it("moves when an authenticator in mailcow's tfa table is added, switched or deleted", async () => {
    const counter = createChangeCounter(db);
    const before = await counter.read();
    const { insertId } = await db.execute(
      "INSERT INTO tfa (key_id, username, authmech, active) VALUES ('k', 'someone@counted.example', 'totp', 1)",
    );
    await db.execute('UPDATE tfa SET active = 0 WHERE id = ?', [insertId]);
    await db.execute('DELETE FROM tfa WHERE id = ?', [insertId]);
    expect(await counter.read()).toBe(before + 3);
  });

  it('reports change tracking as missing while a tfa trigger is missing', async () => {
    await db.execute('DROP TRIGGER postern_tfa_update_count');
    try {
      expect(await isChangeTrackingInstalled(db)).toBe(false);
    } finally {
      for (const statement of tfaChangeCounter.statements) await db.execute(statement);
    }
    expect(await isChangeTrackingInstalled(db)).toBe(true);
  });

  it('answers many concurrent readers with a few shared queries', async () => {
    const { spy, starts } = observed();
    const counter = createChangeCounter(spy);
    const values = await Promise.all(Array.from({ length: 50 }, () => counter.read()));
    expect(new Set(values).size).toBe(1);
    expect(starts.length).toBeLessThanOrEqual(2);
  });

  it('never answers a reader with a query that started before it asked', async () => {
    const { spy, starts } = observed();
    const counter = createChangeCounter(spy);
    const first = counter.read();
    const askedAt = performance.now();
    const second = counter.read();
    await Promise.all([first, second]);
    expect(starts).toHaveLength(2);
    expect(starts[1]).toBeGreaterThanOrEqual(askedAt);
  });

  it('sees a change committed while an earlier read was in flight', async () => {
    const counter = createChangeCounter(db);
    const inFlight = counter.read();
    await db.execute("UPDATE domain SET active = 1 WHERE domain = 'counted.example'");
    const before = await inFlight;
    const after = await counter.read();
    expect(after).toBeGreaterThanOrEqual(before);
    expect(after).toBe(
      Number((await db.one<{ changes: number }>('SELECT changes FROM postern_change_counter'))?.changes),
    );
  });
});

describe('createChangeCounter with maxAgeMs (bounded staleness)', () => {
  /** A clock the test moves, and the real database behind a spy that can hold a query back. */
  function controlled() {
    let clock = 1_000;
    let hold: Promise<void> | undefined;
    let failNext = false;
    const starts: number[] = [];
    const spy: Pick<Db, 'one'> = {
      one: async (sql, params) => {
        starts.push(clock);
        if (failNext) {
          failNext = false;
          throw new Error('MySQL went away');
        }
        if (hold) await hold;
        return db.one(sql, params);
      },
    };
    return {
      spy,
      starts,
      now: () => clock,
      advance: (ms: number) => {
        clock += ms;
      },
      holdQueries: () => {
        let release = () => {};
        hold = new Promise((resolve) => {
          release = () => {
            hold = undefined;
            resolve();
          };
        });
        return release;
      },
      failNextQuery: () => {
        failNext = true;
      },
    };
  }

  it('answers readers within maxAgeMs of a finished read without a query', async () => {
    const c = controlled();
    const counter = createChangeCounter(c.spy, { maxAgeMs: 100, now: c.now });
    const first = await counter.read();
    c.advance(100);
    expect(await counter.read()).toBe(first);
    expect(c.starts).toHaveLength(1);
  });

  it('queries again once the last read started more than maxAgeMs ago, and sees the change', async () => {
    const c = controlled();
    const counter = createChangeCounter(c.spy, { maxAgeMs: 100, now: c.now });
    const before = await counter.read();
    await db.execute("UPDATE domain SET active = 1 WHERE domain = 'counted.example'");
    c.advance(101);
    expect(await counter.read()).toBe(before + 1);
    expect(c.starts).toEqual([1_000, 1_101]);
  });

  it('lets a reader join a read in flight that started within maxAgeMs, but not an older one', async () => {
    const c = controlled();
    const counter = createChangeCounter(c.spy, { maxAgeMs: 100, now: c.now });
    const release = c.holdQueries();
    const first = counter.read();
    c.advance(60);
    const joined = counter.read();
    expect(c.starts).toHaveLength(1);
    c.advance(60);
    // The read in flight started 120 ms ago: this reader waits for a read of its own.
    const late = counter.read();
    release();
    await Promise.all([first, joined, late]);
    expect(c.starts).toEqual([1_000, 1_120]);
  });

  it('never keeps a failed read: the next reader queries again', async () => {
    const c = controlled();
    const counter = createChangeCounter(c.spy, { maxAgeMs: 100, now: c.now });
    c.failNextQuery();
    await expect(counter.read()).rejects.toThrow('MySQL went away');
    expect(typeof (await counter.read())).toBe('number');
    expect(c.starts).toEqual([1_000, 1_000]);
  });

  it('stays strict with maxAgeMs 0: a read that started before the reader asked never answers it', async () => {
    const c = controlled();
    const counter = createChangeCounter(c.spy, { maxAgeMs: 0, now: c.now });
    await counter.read();
    await counter.read();
    expect(c.starts).toHaveLength(2);
  });
});
