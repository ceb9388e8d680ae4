// Two postern replicas (real `postern` processes sharing one MariaDB database and one Redis
// prefix) behind a real Dovecot 2.3 whose Lua passdb lists both. Under a steady stream of IMAP
// logins in flight, the replica that carries the load is SIGKILLed: no login may get a wrong
// answer (a wrong password accepted, a right one refused); temporary failures are counted and
// printed. Then the killed replica comes back and gets the load again.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/storage/db.js';
import { type RunningDovecot, startDovecot } from '../support/dovecot.js';
import { dropDatabase, MYSQL_ROOT_URL, REDIS_URL, uniqueName } from '../support/env.js';
import { imapLogin } from '../support/mail-clients.js';
import { freePort, sleep } from '../support/processes.js';
import { seedDomain, seedMailbox } from '../support/seed.js';

const TOKEN = `replicas-internal-token-${randomBytes(8).toString('hex')}`;
const USERS = Array.from({ length: 20 }, (_, i) => `user${i}@example.org`);
const rightPassword = (user: string) => `right ${user} pw`;
const CONCURRENCY = 12;
const mysqlUrl = new URL(MYSQL_ROOT_URL);
const name = uniqueName('replicas');

/** {SSHA512}: base64(sha512(password + salt) + salt), as `doveadm pw -s SSHA512` writes it. */
function ssha512(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha512').update(password).update(salt).digest();
  return `{SSHA512}${Buffer.concat([digest, salt]).toString('base64')}`;
}

interface Replica {
  port: number;
  url: string;
  child: ChildProcessWithoutNullStreams;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const replicas: Replica[] = [];

/** `postern` (src/main.ts) as its own process on a given internal port; resolves once ready. */
async function startReplica(port: number): Promise<Replica> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      // The same database, Redis prefix, token and cache key on every replica.
      POSTERN_DB_URL: `mysql://root@${mysqlUrl.host}/${name}`,
      POSTERN_REDIS_URL: REDIS_URL,
      POSTERN_REDIS_PREFIX: `${name}:`,
      POSTERN_INTERNAL_TOKEN: TOKEN,
      POSTERN_CACHE_KEY: `replicas-cache-key-${'k'.repeat(32)}`,
      POSTERN_INTERNAL_LISTEN: `127.0.0.1:${port}`,
      POSTERN_WEB_LISTEN: '127.0.0.1:0',
      POSTERN_HASH_THREADS: '1',
      // Cheap hashes ({SSHA512}) and no dummy verifications (the floor pads with bcrypt): the
      // load measures failover, not how many bcrypt rounds two shared cores can do.
      POSTERN_LOGIN_HASH_FLOOR: '1',
      POSTERN_LOG_LEVEL: 'warn',
      // The load sends many distinct wrong passwords from 127.0.0.1: no ban may interfere.
      POSTERN_BAN_USER_THRESHOLD: '100000',
      POSTERN_BAN_IP_THRESHOLD: '100000',
    },
  });
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exited.then(() => process.removeListener('exit', killOnExit));
  const replica = { port, url: `http://127.0.0.1:${port}/`, child, output: () => text, exited };
  replicas.push(replica);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })
      .then((response) => response.status === 200)
      .catch(() => false);
    if (ready) return replica;
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`postern replica on ${port} did not become ready:\n${text}`);
    }
    await sleep(200);
  }
}

/** postern_auth_attempts_total summed over its labels: how many logins this replica decided. */
async function decidedLogins(replica: Replica): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${replica.port}/metrics`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  expect(response.status).toBe(200);
  const text = await response.text();
  let total = 0;
  for (const match of text.matchAll(/^postern_auth_attempts_total(?:\{[^}]*\})? (\d+(?:\.\d+)?)$/gm)) {
    total += Number(match[1]);
  }
  return total;
}

type Outcome = 'ok' | 'denied' | 'temporary' | 'other';

interface Tally {
  /** A right password refused or a wrong one accepted. */
  wrong: string[];
  counts: Record<'right' | 'wrong', Record<Outcome, number>>;
  others: string[];
}

function emptyTally(): Tally {
  const zero = (): Record<Outcome, number> => ({ ok: 0, denied: 0, temporary: 0, other: 0 });
  return { wrong: [], counts: { right: zero(), wrong: zero() }, others: [] };
}

/**
 * Keeps CONCURRENCY IMAP logins in flight until stop() resolves; a third of them with a wrong
 * password. Every answer is classified into the tally current() returns when it arrives.
 */
function loginLoad(dovecot: RunningDovecot, current: () => Tally) {
  let running = true;
  let sequence = 0;
  const worker = async () => {
    while (running) {
      const n = sequence++;
      const user = USERS[n % USERS.length] as string;
      const isRight = n % 3 !== 0;
      const pass = isRight ? rightPassword(user) : `wrong ${randomBytes(6).toString('hex')}`;
      const line = await imapLogin(dovecot.imapPort, user, pass, { timeoutMs: 15_000 }).then(
        (result) => result.line,
        (error: Error) => `client error: ${error.message}`,
      );
      const outcome: Outcome = /^a1 OK /.test(line)
        ? 'ok'
        : /^a1 NO \[AUTHENTICATIONFAILED\]/.test(line)
          ? 'denied'
          : /^a1 NO \[UNAVAILABLE\]/.test(line)
            ? 'temporary'
            : 'other';
      const kind = isRight ? 'right' : 'wrong';
      const tally = current();
      tally.counts[kind][outcome]++;
      if ((isRight && outcome === 'denied') || (!isRight && outcome === 'ok')) tally.wrong.push(`${kind}: ${line}`);
      if (outcome === 'other') tally.others.push(line);
    }
  };
  const workers = Array.from({ length: CONCURRENCY }, () => worker());
  return {
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

const total = (tally: Tally, kind: 'right' | 'wrong') =>
  Object.values(tally.counts[kind]).reduce((sum, count) => sum + count, 0);

let first: Replica;
let second: Replica;
let dovecot: RunningDovecot;

beforeAll(async () => {
  const [firstPort, secondPort] = [await freePort(), await freePort()];
  // The first replica creates the database and applies the migrations; the second starts on it.
  first = await startReplica(firstPort);
  const db = await createDb({ url: `mysql://root@${mysqlUrl.host}/${name}`, poolSize: 1, createDatabase: false });
  try {
    await seedDomain(db, 'example.org');
    for (const user of USERS) await seedMailbox(db, { username: user, passwordHash: ssha512(rightPassword(user)) });
  } finally {
    await db.close();
  }
  second = await startReplica(secondPort);
  dovecot = await startDovecot({
    authUrl: [first.url, second.url],
    internalToken: TOKEN,
    // The script's default budget per request to one replica.
    timeoutMs: 5000,
    submission: false,
    // Dovecot's per user+IP session limit (10) must not answer for postern under this load.
    extraConfig: 'protocol imap {\n  mail_max_userip_connections = 1000\n}\n',
  });
}, 120_000);

afterAll(async () => {
  await dovecot?.stop();
  for (const replica of replicas) {
    if (replica.child.exitCode === null && replica.child.signalCode === null) replica.child.kill('SIGKILL');
    await replica.exited;
  }
  await dropDatabase(name);
});

describe('two postern replicas behind real Dovecot', () => {
  it('both replicas answer for the same database: a right password logs in, a wrong one is refused', async () => {
    const login = { username: USERS[0], real_rip: '192.0.2.30', service: 'imap' };
    for (const replica of [first, second]) {
      const ask = (password: string) =>
        fetch(replica.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
          body: JSON.stringify({ ...login, password }),
        }).then((response) => response.status);
      expect(await ask(rightPassword(USERS[0] as string))).toBe(200);
      expect(await ask('not the password')).toBe(401);
    }
    expect((await imapLogin(dovecot.imapPort, USERS[1] as string, rightPassword(USERS[1] as string))).ok).toBe(true);
  });

  it('loses no login to a wrong answer when the replica carrying the load is killed mid-load, and counts the temporary failures', async () => {
    const before = emptyTally();
    const after = emptyTally();
    let tally = before;
    const secondDecidedBefore = await decidedLogins(second);
    const load = loginLoad(dovecot, () => tally);
    await sleep(3000);
    const firstDecided = await decidedLogins(first);

    // SIGKILL: no graceful shutdown, requests in flight lose their connection.
    first.child.kill('SIGKILL');
    const killed = await first.exited;
    tally = after;
    await sleep(5000);
    await load.stop();

    const secondDecided = (await decidedLogins(second)) - secondDecidedBefore;
    const failovers = dovecot.logs().match(/postern passdb: request to \S+ failed: .*; trying /g)?.length ?? 0;
    const report = {
      beforeKill: before.counts,
      afterKill: after.counts,
      temporaryFailures:
        before.counts.right.temporary +
        before.counts.wrong.temporary +
        after.counts.right.temporary +
        after.counts.wrong.temporary,
      failoversLogged: failovers,
      decidedByFirstBeforeKill: firstDecided,
      decidedBySecondAfterKill: secondDecided,
    };
    console.info(`dovecot-replicas: ${JSON.stringify(report)}`);

    expect(killed.signal).toBe('SIGKILL');
    expect(before.wrong).toEqual([]);
    expect(after.wrong).toEqual([]);
    expect([...before.others, ...after.others]).toEqual([]);
    // The load was real on both sides of the kill, and moved to the second replica.
    expect(total(before, 'right')).toBeGreaterThan(20);
    expect(total(after, 'right')).toBeGreaterThan(20);
    expect(before.counts.right.ok).toBeGreaterThan(0);
    expect(after.counts.right.ok).toBeGreaterThan(0);
    expect(after.counts.wrong.denied).toBeGreaterThan(0);
    expect(firstDecided).toBeGreaterThan(0);
    expect(secondDecided).toBeGreaterThanOrEqual(after.counts.right.ok);
    expect(failovers).toBeGreaterThan(0);
  }, 60_000);

  it('gives the load back to the first replica once it is back and its back-off is over', async () => {
    const back = await startReplica(first.port);
    await sleep(3100);
    // Requests of the load that the second replica was still working on are counted by now.
    let secondBefore = await decidedLogins(second);
    for (;;) {
      await sleep(500);
      const now = await decidedLogins(second);
      if (now === secondBefore) break;
      secondBefore = now;
    }

    for (const user of USERS.slice(0, 5)) {
      expect((await imapLogin(dovecot.imapPort, user, rightPassword(user))).ok).toBe(true);
    }

    expect(await decidedLogins(back)).toBe(5);
    expect(await decidedLogins(second)).toBe(secondBefore);
  }, 90_000);
});
