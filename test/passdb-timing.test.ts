// Timing of a wrong password must not tell which mailboxes exist or how many app passwords they
// have (measured before the fix: medians 61.6 ms unknown, 62.0 ms one hash, 120.1 ms three app passwords).
// The exact measure is the number of hash verifications a login spends, counted on the hash
// pool; the wall-clock medians are compared too, with a margin wide enough for a loaded 2-core
// machine but far below the factor of two the old behaviour showed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from './support/env.js';
import { countHashes } from './support/hash-count.js';
import { seedAppPassword, seedDomain, seedMailbox } from './support/seed.js';

let postern: TestPostern;
let attempt = 0;

const MAILBOXES = {
  none: 'zero@example.org',
  one: 'one@example.org',
  three: 'three@example.org',
  five: 'five@example.org',
} as const;
const UNKNOWN = 'nobody@example.org';

async function wrongLogin(username: string) {
  attempt += 1;
  return postern.passdb({ username, password: `wrong guess ${attempt}`, real_rip: '198.51.100.4', service: 'imap' });
}

/** Hash verifications one wrong-password login of `username` spends. */
async function hashesFor(username: string): Promise<number> {
  const count = countHashes(postern);
  try {
    const reply = await wrongLogin(username);
    expect(reply.status).toBe(401);
    return count.count;
  } finally {
    count.restore();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

beforeAll(async () => {
  postern = await startTestPostern('passdb_timing', {
    // Hashes as mailcow writes them (bcrypt), cheap enough for many rounds, dear enough to measure.
    POSTERN_BCRYPT_COST: '8',
    POSTERN_HASH_THREADS: '2',
    // Every attempt here is a distinct wrong password: keep the limiter out of the measurement.
    POSTERN_BAN_USER_THRESHOLD: '100000',
    POSTERN_BAN_IP_THRESHOLD: '100000',
  });
  const { db, hashPool } = postern.deps;
  const bcrypt = (secret: string) => hashPool.hash(secret, 'BLF-CRYPT');
  await seedDomain(db, 'example.org');
  const appPasswordCounts = { none: 0, one: 1, three: 3, five: 5 } as const;
  for (const [key, username] of Object.entries(MAILBOXES) as [keyof typeof MAILBOXES, string][]) {
    await seedMailbox(db, { username, passwordHash: await bcrypt(`${username} password`) });
    for (let index = 0; index < appPasswordCounts[key]; index += 1) {
      await seedAppPassword(db, {
        mailbox: username,
        passwordHash: await bcrypt(`${username} app ${index}`),
        protocols: ['imap_access', 'smtp_access'],
      });
    }
  }
});

afterAll(async () => {
  await postern?.destroy();
});

describe('the cost of a wrong password', () => {
  it('is the same number of hash verifications for an unknown user and mailboxes with 0 to 3 app passwords', async () => {
    const counts = {
      unknown: await hashesFor(UNKNOWN),
      none: await hashesFor(MAILBOXES.none),
      one: await hashesFor(MAILBOXES.one),
      three: await hashesFor(MAILBOXES.three),
    };
    // The default POSTERN_LOGIN_HASH_FLOOR is 4: mailbox password + 3 app passwords.
    expect(counts).toEqual({ unknown: 4, none: 4, one: 4, three: 4 });
  });

  it('grows only past the floor: five app passwords and the mailbox password are six hashes', async () => {
    expect(await hashesFor(MAILBOXES.five)).toBe(6);
  });

  it('still lets the right passwords in, and a remembered success pays no padding', async () => {
    const reply = await postern.passdb({
      username: MAILBOXES.three,
      password: `${MAILBOXES.three} app 2`,
      real_rip: '198.51.100.4',
      service: 'imap',
    });
    expect(reply).toMatchObject({ status: 200, body: { success: true } });
    const again = countHashes(postern);
    try {
      const second = await postern.passdb({
        username: MAILBOXES.three,
        password: `${MAILBOXES.three} app 2`,
        real_rip: '198.51.100.4',
        service: 'imap',
      });
      expect(second.status).toBe(200);
      expect(again.count).toBe(0);
    } finally {
      again.restore();
    }
    const mailboxPassword = await postern.passdb({
      username: MAILBOXES.none,
      password: `${MAILBOXES.none} password`,
      real_rip: '198.51.100.4',
      service: 'imap',
    });
    expect(mailboxPassword.status).toBe(200);
  });

  it('has medians within a wide margin for unknown, one and three app passwords (paired rounds)', async () => {
    const targets = { unknown: UNKNOWN, one: MAILBOXES.one, three: MAILBOXES.three } as const;
    const keys = Object.keys(targets) as (keyof typeof targets)[];
    const samples: Record<keyof typeof targets, number[]> = { unknown: [], one: [], three: [] };
    // Per round, the ratio to that round's unknown-user login: the machine's load drifts slowly,
    // and a ratio of neighbours cancels most of it.
    const ratios: Record<'one' | 'three', number[]> = { one: [], three: [] };
    // Warm up the pool's threads and the login-data cache.
    for (const username of Object.values(targets)) await wrongLogin(username);
    for (let round = 0; round < 21; round += 1) {
      const took: Partial<Record<keyof typeof targets, number>> = {};
      // Rotate the order, so no target always runs first or last.
      for (let index = 0; index < keys.length; index += 1) {
        const key = keys[(round + index) % keys.length] as keyof typeof targets;
        const started = performance.now();
        await wrongLogin(targets[key]);
        took[key] = performance.now() - started;
        samples[key].push(took[key]);
      }
      ratios.one.push((took.one as number) / (took.unknown as number));
      ratios.three.push((took.three as number) / (took.unknown as number));
    }
    const medians = `medians ms: unknown ${median(samples.unknown)}, one ${median(samples.one)}, three ${median(samples.three)}`;
    // Before the fix three app passwords cost about twice an unknown user (two rounds of the
    // two-thread pool against one); equal work stays well inside ±50%.
    for (const key of ['one', 'three'] as const) {
      expect(median(ratios[key]), `${key}: ${medians}`).toBeLessThan(1.5);
      expect(median(ratios[key]), `${key}: ${medians}`).toBeGreaterThan(1 / 1.5);
    }
  }, 120_000);
});
