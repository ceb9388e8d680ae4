// npm run bench:dovecot: real Dovecot 2.3 with our Lua passdb, real IMAP clients logging in
// (LOGIN, then LOGOUT) as fast as they can, Dovecot's own auth cache off so every login asks the
// sidecar. Two Dovecot process modes:
//   per-login: Dovecot's defaults (a new imap-login and imap process for every login);
//   reused:    the shipped deploy/dovecot/conf.d/99-postern-login-rate.conf (processes reused).
// Each mode runs in front of two sidecars, in alternating rounds: postern (compiled, its own
// process, BLF-CRYPT cost-10 mailboxes, its verified-credential cache warm) and a no-work sidecar
// (its own Node process answering 200 {"success":true} to every POST) whose rate is the ceiling
// of that Dovecot set-up. Per measurement it also samples where the CPU went (/proc): postern,
// the no-work sidecar, MariaDB, Redis, this process (the IMAP clients) and the rest (Dovecot).
// First logins (a bcrypt each) are measured once, in reused mode. Figures only.
// BENCH_MODES=reused (or per-login) runs one mode; BENCH_BASELINE=<dir>/main.js adds a third
// sidecar, another build of postern (e.g. main's dist/ copied aside), to the alternating rounds,
// so two builds are compared under the same drifting load; BENCH_POSTERN_FLAGS passes node flags
// to the postern under test (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
// postern runs with compose.yaml's POSTERN_LOGIN_CACHE_MAX_AGE_MS (the shipped stack's setting;
// BENCH_LOGIN_CACHE_MAX_AGE_MS overrides it); when that is above 0, a `strict` sidecar (the same
// build with 0, postern's own default) joins the rounds, unless BENCH_STRICT=0.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { createLogger } from '../src/log.js';
import { createHashPool } from '../src/passwords/hash-pool.js';
import { createDb } from '../src/storage/db.js';
import { applyMigrations } from '../src/storage/migrate.js';
import { type RunningDovecot, startDovecot } from '../test/support/dovecot.js';
import { MYSQL_ROOT_URL } from '../test/support/env.js';
import { imapLogin } from '../test/support/mail-clients.js';
import { freePort } from '../test/support/processes.js';
import { startCompiledPostern } from './compiled-postern.js';

const DATABASE = `postern_bench_dovecot_${randomBytes(3).toString('hex')}`;
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
// First logins each cost POSTERN_LOGIN_HASH_FLOOR (4) bcrypt verifications; more clients than
// the hash pool can serve only queue them into the Lua's 5 s timeout.
const MISS_CLIENTS = Number(process.env.BENCH_MISS_CLIENTS ?? 4);
const CLOCK_TICKS_PER_SECOND = 100;

type Mode = 'per-login' | 'reused';
type Sidecar = 'no-work' | 'postern' | 'strict' | 'baseline';
const MODES = (process.env.BENCH_MODES ?? 'per-login,reused').split(',') as Mode[];
const BASELINE_MAIN = process.env.BENCH_BASELINE;
const POSTERN_FLAGS = (process.env.BENCH_POSTERN_FLAGS ?? '').split(' ').filter(Boolean);

interface User {
  user: string;
  password: string;
}

/** `clients` loops of LOGIN/LOGOUT; `userFor(n)` picks the n-th login's user. */
async function drive(imapPort: number, userFor: (n: number) => User, untilMs: number, clients = CLIENTS) {
  let next = 0;
  let ok = 0;
  let failed = 0;
  let firstFailure: string | undefined;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < untilMs) {
        const { user, password } = userFor(next);
        next += 1;
        const result = await imapLogin(imapPort, user, password);
        if (result.ok) ok += 1;
        else {
          failed += 1;
          firstFailure ??= result.line;
        }
      }
    }),
  );
  return { ok, failed, firstFailure };
}

// A sidecar that does no work: the same HTTP exchange as postern's passdb (Dovecot's client
// sends `Expect: 100-continue`, which Node answers), then a fixed 200. Plain JS, its own process.
const NO_WORK_SIDECAR = `
const http = require('node:http');
const body = Buffer.from('{"success":true}');
const server = http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
});
server.keepAliveTimeout = 60000;
server.listen(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write('ready\\n'));
`;

async function startNoWorkSidecar(): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['-e', NO_WORK_SIDECAR, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await once(child.stdout as NodeJS.ReadableStream, 'data');
  return {
    url: `http://127.0.0.1:${port}/`,
    pid: child.pid as number,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

interface ProcessTicks {
  comm: string;
  ppid: number;
  /** utime + stime */
  ticks: number;
  /** cutime + cstime: the CPU of its children that ended and were reaped */
  childTicks: number;
}

/** CPU ticks of every process, plus the whole machine's busy ticks. */
async function cpuSnapshot(): Promise<{ byPid: Map<number, ProcessTicks>; busy: number }> {
  const byPid = new Map<number, ProcessTicks>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      // After "(comm) ": state ppid ... utime(11) stime(12) cutime(13) cstime(14).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      byPid.set(Number(entry), {
        comm,
        ppid: Number(fields[1]),
        ticks: Number(fields[11]) + Number(fields[12]),
        childTicks: Number(fields[13]) + Number(fields[14]),
      });
    } catch {
      // the process ended while we looked
    }
  }
  const cpu = (await readFile('/proc/stat', 'utf8')).split('\n')[0]?.split(/\s+/).slice(1).map(Number) ?? [];
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
  const busy = cpu.reduce((sum, value, index) => (index === 3 || index === 4 ? sum : sum + value), 0);
  return { byPid, busy };
}

/**
 * CPU ticks by component in one snapshot. Dovecot = the masters this process started, their live
 * children (login, imap, auth and auth-worker processes, the Lua passdb included) and, through
 * the masters' cutime/cstime, every child that ended: per-login mode forks and reaps two per login.
 */
function ticksByComponent(snapshot: Awaited<ReturnType<typeof cpuSnapshot>>, sidecarPids: Map<number, Sidecar>) {
  const groups: Record<string, number> = { dovecot: 0, clients: 0, mariadb: 0, redis: 0 };
  for (const name of sidecarPids.values()) groups[name] = 0;
  const masters = new Set<number>();
  for (const [pid, proc] of snapshot.byPid) if (proc.comm === 'dovecot' && proc.ppid === process.pid) masters.add(pid);
  for (const [pid, proc] of snapshot.byPid) {
    if (masters.has(pid)) groups.dovecot = (groups.dovecot ?? 0) + proc.ticks + proc.childTicks;
    else if (masters.has(proc.ppid)) groups.dovecot = (groups.dovecot ?? 0) + proc.ticks;
    else if (sidecarPids.has(pid)) groups[sidecarPids.get(pid) as Sidecar] = proc.ticks;
    else if (pid === process.pid) groups.clients = proc.ticks;
    else if (/^(mariadbd|mysqld)$/.test(proc.comm)) groups.mariadb = (groups.mariadb ?? 0) + proc.ticks;
    else if (proc.comm === 'redis-server') groups.redis = (groups.redis ?? 0) + proc.ticks;
  }
  return groups;
}

/** CPU ms per login by component between two snapshots; `other` is the rest of the machine. */
function cpuPerLogin(
  before: Awaited<ReturnType<typeof cpuSnapshot>>,
  after: Awaited<ReturnType<typeof cpuSnapshot>>,
  logins: number,
  sidecarPids: Map<number, Sidecar>,
) {
  const start = ticksByComponent(before, sidecarPids);
  const end = ticksByComponent(after, sidecarPids);
  const perLoginMs: Record<string, number> = {};
  let known = 0;
  for (const [name, ticks] of Object.entries(end)) {
    const delta = ticks - (start[name] ?? 0);
    known += delta;
    perLoginMs[name] = ((delta / CLOCK_TICKS_PER_SECOND) * 1000) / Math.max(logins, 1);
  }
  perLoginMs.other = (((after.busy - before.busy - known) / CLOCK_TICKS_PER_SECOND) * 1000) / Math.max(logins, 1);
  return perLoginMs;
}

async function waitForIdleHashPool(base: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const text = await (await fetch(`${base}/metrics`)).text();
    if (/^postern_hash_pool_queue_depth 0$/m.test(text)) return;
    if (Date.now() > deadline) throw new Error('the hash pool did not drain within 120 s');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** The shipped stack's POSTERN_LOGIN_CACHE_MAX_AGE_MS (compose.yaml's postern service), '0' when unset. */
async function composeLoginCacheMaxAge(): Promise<string> {
  const compose = parse(await readFile(new URL('../compose.yaml', import.meta.url), 'utf8')) as {
    services: { postern: { environment?: Record<string, string> } };
  };
  return String(compose.services.postern.environment?.POSTERN_LOGIN_CACHE_MAX_AGE_MS ?? '0');
}

async function main() {
  const log = createLogger('warn');
  const db = await createDb({ url: `${MYSQL_ROOT_URL}/${DATABASE}`, poolSize: 2, createDatabase: true });
  await applyMigrations(db, log);
  await db.execute("INSERT INTO domain (domain, active, created) VALUES ('bench.example', 1, NOW())");
  const pool = createHashPool({ threads: 2, allowPlaintext: false, bcryptCost: 10, bcryptImpl: 'native' });
  const users: User[] = Array.from({ length: 400 }, (_, index) => ({
    user: `user${index}@bench.example`,
    password: `pw-${index}-${randomBytes(4).toString('hex')}`,
  }));
  for (const entry of users) {
    await db.execute(
      `INSERT INTO mailbox (username, password, name, local_part, domain, attributes, active, created, modified)
       VALUES (?, ?, ?, ?, 'bench.example', '{}', 1, NOW(), NOW())`,
      [entry.user, await pool.hash(entry.password, 'BLF-CRYPT'), entry.user, entry.user.split('@')[0] as string],
    );
  }
  await pool.close();
  const hot = users.slice(0, 20);
  const hotUser = (n: number) => hot[n % hot.length] as User;

  // The bench logs in a few users thousands of times from loopback.
  const env = { POSTERN_BAN_EXEMPT_NETWORKS: '127.0.0.0/8' };
  const maxAge = process.env.BENCH_LOGIN_CACHE_MAX_AGE_MS ?? (await composeLoginCacheMaxAge());
  const postern = await startCompiledPostern(
    DATABASE,
    { ...env, POSTERN_LOGIN_CACHE_MAX_AGE_MS: maxAge },
    POSTERN_FLAGS,
  );
  // The same database, Redis prefix and so the same shared cache secret as the postern under test.
  const strict =
    Number(maxAge) > 0 && process.env.BENCH_STRICT !== '0'
      ? await startCompiledPostern(DATABASE, { ...env, POSTERN_LOGIN_CACHE_MAX_AGE_MS: '0' })
      : undefined;
  const baseline = BASELINE_MAIN ? await startCompiledPostern(DATABASE, env, [], BASELINE_MAIN) : undefined;
  const noWork = await startNoWorkSidecar();
  const running: [Sidecar, { pid: number }, string][] = [
    ['no-work', noWork, noWork.url],
    ['postern', postern, `${postern.base}/`],
    ...(strict ? [['strict', strict, `${strict.base}/`] as [Sidecar, { pid: number }, string]] : []),
    ...(baseline ? [['baseline', baseline, `${baseline.base}/`] as [Sidecar, { pid: number }, string]] : []),
  ];
  const SIDECARS = running.map(([name]) => name);
  const urlOf = new Map(running.map(([name, , url]) => [name, url]));
  const pids = new Map(running.map(([name, { pid }]) => [pid, name]));
  const dovecots = new Map<string, RunningDovecot>();
  try {
    for (const mode of MODES) {
      for (const sidecar of SIDECARS) {
        const authUrl = urlOf.get(sidecar) as string;
        dovecots.set(`${mode}/${sidecar}`, await startDovecot({ authUrl, submission: false, loginProcesses: mode }));
      }
    }
    const dovecotFor = (mode: Mode, sidecar: Sidecar) => dovecots.get(`${mode}/${sidecar}`) as RunningDovecot;
    console.log(
      `IMAP LOGIN/LOGOUT through real Dovecot 2.3 + Lua passdb, ${CLIENTS} clients, Dovecot's auth cache off, ` +
        `${ROUNDS} alternating rounds of ${SECONDS} s per measurement; postern: POSTERN_LOGIN_CACHE_MAX_AGE_MS=${maxAge}` +
        `${process.env.BENCH_LOGIN_CACHE_MAX_AGE_MS === undefined ? ' (compose.yaml)' : ' (BENCH_LOGIN_CACHE_MAX_AGE_MS)'}` +
        `${strict ? ', strict: the same build with 0' : ''}\n`,
    );

    const firstMode: Mode = MODES.includes('reused') ? 'reused' : (MODES[0] as Mode);
    const firstStart = performance.now();
    const misses = await drive(
      dovecotFor(firstMode, 'postern').imapPort,
      (n) => users[n % users.length] as User,
      firstStart + SECONDS * 1000,
      MISS_CLIENTS,
    );
    const missRate = misses.ok / ((performance.now() - firstStart) / 1000);
    console.log(
      `first logins, ${firstMode} processes, postern, ${MISS_CLIENTS} clients (bcrypt cost 10, ` +
        `4 verifications each: POSTERN_LOGIN_HASH_FLOOR): ${missRate.toFixed(1)} logins/s ` +
        `(${misses.ok} ok, ${misses.failed} failed${misses.firstFailure ? `, e.g. "${misses.firstFailure}"` : ''})\n`,
    );
    // Every hot user's credentials in postern's cache before the cache-hit rounds (one login each,
    // once the misses above have left the hash pool).
    await waitForIdleHashPool(postern.base);
    for (const entry of hot) {
      for (const sidecar of SIDECARS.filter((name) => name !== 'no-work')) {
        const result = await imapLogin(dovecotFor(firstMode, sidecar).imapPort, entry.user, entry.password);
        if (!result.ok) throw new Error(`warming ${entry.user} (${sidecar}): ${result.line}`);
      }
    }

    const rates = new Map<string, number[]>();
    const cpu = new Map<string, Record<string, number>[]>();
    for (let round = 1; round <= ROUNDS; round++) {
      const line: string[] = [];
      for (const mode of MODES) {
        for (const sidecar of SIDECARS) {
          const key = `${mode}/${sidecar}`;
          const port = dovecotFor(mode, sidecar).imapPort;
          await drive(port, hotUser, performance.now() + 1000);
          const before = await cpuSnapshot();
          const start = performance.now();
          const result = await drive(port, hotUser, start + SECONDS * 1000);
          const rate = result.ok / ((performance.now() - start) / 1000);
          const after = await cpuSnapshot();
          if (result.failed > 0)
            throw new Error(`${key}: ${result.failed} logins failed, e.g. "${result.firstFailure}"`);
          rates.set(key, [...(rates.get(key) ?? []), rate]);
          cpu.set(key, [...(cpu.get(key) ?? []), cpuPerLogin(before, after, result.ok, pids)]);
          line.push(`${key} ${rate.toFixed(1)}`);
        }
      }
      console.log(`round ${round}: ${line.join(' | ')} logins/s`);
    }

    console.log('\nmedian logins/s, and postern / no-work ceiling per mode (median of the rounds’ ratios):');
    for (const mode of MODES) {
      const ceiling = rates.get(`${mode}/no-work`) ?? [];
      for (const sidecar of SIDECARS.filter((name) => name !== 'no-work')) {
        const ours = rates.get(`${mode}/${sidecar}`) ?? [];
        const ratios = ours.map((rate, index) => rate / (ceiling[index] as number));
        console.log(
          `  ${mode.padEnd(9)}  no-work ${median(ceiling).toFixed(1).padStart(7)}   ${sidecar.padEnd(8)} ${median(ours).toFixed(1).padStart(7)}` +
            `   ratio ${median(ratios).toFixed(3)} (rounds: ${ratios.map((ratio) => ratio.toFixed(2)).join(', ')})`,
        );
      }
    }
    if (MODES.length === 2) {
      const reusedGain = median(rates.get('reused/no-work') ?? []) / median(rates.get('per-login/no-work') ?? []);
      console.log(`  reused / per-login, no-work ceiling: ${reusedGain.toFixed(1)}×`);
    }

    console.log(
      '\nCPU ms per login by component, median of the rounds (dovecot: its processes, Lua passdb included; ' +
        'clients: this process; other: the rest of the machine, not this bench):',
    );
    const components = [
      'dovecot',
      'clients',
      'postern',
      ...(strict ? ['strict'] : []),
      ...(baseline ? ['baseline'] : []),
      'no-work',
      'mariadb',
      'redis',
      'other',
    ];
    console.log(`  ${'set-up'.padEnd(18)}${components.map((name) => name.padStart(9)).join('')}    total`);
    for (const [key, samples] of cpu) {
      const medians = components.map((name) => median(samples.map((sample) => sample[name] ?? 0)));
      const total = medians.reduce((sum, value) => sum + value, 0);
      console.log(
        `  ${key.padEnd(18)}${medians.map((value) => value.toFixed(3).padStart(9)).join('')}  ${total.toFixed(3).padStart(7)}`,
      );
    }
  } finally {
    for (const dovecot of dovecots.values()) await dovecot.stop();
    await noWork.stop();
    await db.close();
    await baseline?.stop({ dropDatabase: false });
    await strict?.stop({ dropDatabase: false });
    await postern.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
