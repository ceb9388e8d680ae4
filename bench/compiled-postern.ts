// What the benchmarks share: postern run as production runs it (the compiled dist/, its own
// process, a database of the run's own) and the clean-up afterwards.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dropDatabase, MYSQL_ROOT_URL, REDIS_URL } from '../test/support/env.js';
import { freePort } from '../test/support/processes.js';

export interface CompiledPostern {
  /** http://127.0.0.1:<port> of the internal listener. */
  base: string;
  port: number;
  /** The postern process's pid (e.g. to tell its CPU from other processes'). */
  pid: number;
  /** CPU seconds postern's process has used so far (all threads; Linux /proc), for per-request cost. */
  cpuSeconds(): Promise<number>;
  /** SIGTERM, then wait for the exit; drops the run's database unless told not to (a second postern on it). */
  stop(options?: { dropDatabase: boolean }): Promise<void>;
}

export async function startCompiledPostern(
  database: string,
  env: Record<string, string> = {},
  nodeFlags: string[] = [],
  /** The compiled entry point; another build's (e.g. main's, copied aside) to compare two builds. */
  main = 'dist/main.js',
): Promise<CompiledPostern> {
  const port = await freePort();
  // The same flags as `npm start` (package.json): a larger young generation means fewer
  // scavenges for a server that allocates a little per request.
  const child: ChildProcess = spawn(process.execPath, ['--max-semi-space-size=32', ...nodeFlags, main], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      POSTERN_DB_URL: `${MYSQL_ROOT_URL}/${database}`,
      POSTERN_REDIS_URL: REDIS_URL,
      POSTERN_REDIS_PREFIX: `${database}:`,
      POSTERN_INTERNAL_LISTEN: `127.0.0.1:${port}`,
      POSTERN_WEB_LISTEN: `127.0.0.1:${await freePort()}`,
      POSTERN_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null) throw new Error(`postern exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('postern did not start within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    base,
    port,
    pid: child.pid as number,
    async cpuSeconds() {
      // Fields 14 and 15 of /proc/<pid>/stat: user and system time in clock ticks (USER_HZ = 100).
      const stat = await readFile(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    },
    async stop(options = { dropDatabase: true }) {
      if (child.exitCode === null) {
        await new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        });
      }
      if (options.dropDatabase) await dropDatabase(database);
    },
  };
}
