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
