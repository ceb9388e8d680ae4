// npm run bench:dovecot: real Dovecot 2.3 with our Lua passdb in front of postern (compiled,
// its own process), real IMAP clients logging in (LOGIN, then LOGOUT) as fast as they can.
// Prints IMAP logins/s with Dovecot's own auth cache off, so every login asks postern, for a
// mailbox with a BLF-CRYPT cost-10 hash: first logins (each a bcrypt) and repeat logins
// (postern's verified-credential cache). Figures only.
import { randomBytes } from 'node:crypto';
import { createLogger } from '../src/log.js';
import { createHashPool } from '../src/passwords/hash-pool.js';
import { createDb } from '../src/storage/db.js';
import { applyMigrations } from '../src/storage/migrate.js';
import { startDovecot } from '../test/support/dovecot.js';
import { MYSQL_ROOT_URL } from '../test/support/env.js';
import { imapLogin } from '../test/support/mail-clients.js';
import { startStubPassdbServer } from '../test/support/stub-passdb-server.js';
import { startCompiledPostern } from './compiled-postern.js';

const DATABASE = `postern_bench_dovecot_${randomBytes(3).toString('hex')}`;
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);

/** CLIENTS loops of LOGIN/LOGOUT; `userFor(n)` picks the n-th login's user. */
async function drive(imapPort: number, userFor: (n: number) => { user: string; password: string }, untilMs: number) {
  let next = 0;
  let ok = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < untilMs) {
        const { user, password } = userFor(next);
        next += 1;
        const result = await imapLogin(imapPort, user, password);
        if (result.ok) ok += 1;
        else failed += 1;
      }
    }),
  );
  return { ok, failed };
}

async function main() {
  const log = createLogger('warn');
  const db = await createDb({ url: `${MYSQL_ROOT_URL}/${DATABASE}`, poolSize: 2, createDatabase: true });
  await applyMigrations(db, log);
  await db.execute("INSERT INTO domain (domain, active, created) VALUES ('bench.example', 1, NOW())");
  const pool = createHashPool({ threads: 2, allowPlaintext: false, bcryptCost: 10, bcryptImpl: 'native' });
  const users = await Promise.all(
    Array.from({ length: 400 }, async (_, index) => ({
      user: `user${index}@bench.example`,
      password: `pw-${index}-${randomBytes(4).toString('hex')}`,
    })),
  );
  for (const entry of users) {
    await db.execute(
      `INSERT INTO mailbox (username, password, name, local_part, domain, attributes, active, created, modified)
       VALUES (?, ?, ?, ?, 'bench.example', '{}', 1, NOW(), NOW())`,
      [entry.user, await pool.hash(entry.password, 'BLF-CRYPT'), entry.user, entry.user.split('@')[0] as string],
    );
  }
  await pool.close();

  // The bench logs in a few users thousands of times from loopback.
  const postern = await startCompiledPostern(DATABASE, { POSTERN_BAN_EXEMPT_NETWORKS: '127.0.0.0/8' });
  const dovecot = await startDovecot({ authUrl: `${postern.base}/`, submission: false });
  try {
    console.log(`IMAP logins through real Dovecot 2.3 + lua passdb + postern, ${CLIENTS} clients, auth cache off\n`);
    const first = performance.now();
    const misses = await drive(
      dovecot.imapPort,
      (n) => users[n % users.length] as (typeof users)[number],
      first + SECONDS * 1000,
    );
    const missRate = misses.ok / ((performance.now() - first) / 1000);
    console.log(
      `first logins (bcrypt cost 10 each):   ${missRate.toFixed(1).padStart(7)} logins/s  (${misses.ok} ok, ${misses.failed} failed)`,
    );
    const hot = users.slice(0, 20);
    await drive(dovecot.imapPort, (n) => hot[n % hot.length] as (typeof users)[number], performance.now() + 1000);
    const start = performance.now();
    const hits = await drive(
      dovecot.imapPort,
      (n) => hot[n % hot.length] as (typeof users)[number],
      start + SECONDS * 1000,
    );
    const hitRate = hits.ok / ((performance.now() - start) / 1000);
    console.log(
      `repeat logins (postern cache hit):    ${hitRate.toFixed(1).padStart(7)} logins/s  (${hits.ok} ok, ${hits.failed} failed)`,
    );

    // The ceiling: the same Dovecot setup in front of a sidecar that answers OK without any work.
    await dovecot.stop();
    const stub = await startStubPassdbServer();
    const ceilingDovecot = await startDovecot({ authUrl: stub.url, submission: false });
    try {
      await drive(
        ceilingDovecot.imapPort,
        (n) => hot[n % hot.length] as (typeof users)[number],
        performance.now() + 1000,
      );
      const ceilingStart = performance.now();
      const ceiling = await drive(
        ceilingDovecot.imapPort,
        (n) => hot[n % hot.length] as (typeof users)[number],
        ceilingStart + SECONDS * 1000,
      );
      const ceilingRate = ceiling.ok / ((performance.now() - ceilingStart) / 1000);
      console.log(`ceiling (no-op sidecar, same Dovecot): ${ceilingRate.toFixed(1).padStart(6)} logins/s`);
      console.log(`\nrepeat logins reach ${((100 * hitRate) / ceilingRate).toFixed(0)}% of the no-op ceiling`);
    } finally {
      await ceilingDovecot.stop();
      await stub.close();
    }
  } finally {
    await dovecot.stop();
    await db.close();
    await postern.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
