// SIGTERM on the real process (what `docker stop` / `podman stop` sends): the request in flight
// gets its answer, new connections are refused, the pools close and the process exits 0; a
// request that cannot finish within the shutdown grace is cut and the exit says so.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../src/storage/db.js';
import { dropDatabase, MYSQL_ROOT_URL, REDIS_URL, uniqueName } from './support/env.js';
import { canConnect, freePort, sleep } from './support/processes.js';
import { seedDomain, seedMailbox } from './support/seed.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

const mysqlUrl = new URL(MYSQL_ROOT_URL);
const databases: string[] = [];
let proxy: TcpProxy;

beforeAll(async () => {
  proxy = await startTcpProxy({ host: mysqlUrl.hostname, port: Number(mysqlUrl.port || 3306) });
});
afterEach(() => proxy.release());
afterAll(async () => {
  await proxy?.close();
  for (const name of databases) await dropDatabase(name);
});

/** {SSHA512}: base64(sha512(password + salt) + salt), as `doveadm pw -s SSHA512` writes it. */
function ssha512(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha512').update(password).update(salt).digest();
  return `{SSHA512}${Buffer.concat([digest, salt]).toString('base64')}`;
}

interface Started {
  child: ChildProcessWithoutNullStreams;
  internalPort: number;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** Starts `postern` (src/main.ts) with MySQL reached through the proxy; resolves once it listens. */
async function startPosternProcess(label: string, env: Record<string, string> = {}): Promise<Started> {
  const name = uniqueName(label);
  databases.push(name);
  const internalPort = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      POSTERN_DB_URL: `mysql://root@127.0.0.1:${proxy.port}/${name}`,
      POSTERN_REDIS_URL: REDIS_URL,
      POSTERN_REDIS_PREFIX: `${name}:`,
      POSTERN_INTERNAL_LISTEN: `127.0.0.1:${internalPort}`,
      POSTERN_WEB_LISTEN: '127.0.0.1:0',
      ...env,
    },
  });
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void exited.then(() => clearTimeout(killer));
  await expect
    .poll(() => /"listener":"web"[^\n]*"msg":"listening"|"msg":"listening"[^\n]*"listener":"web"/.test(text), {
      timeout: 30_000,
      interval: 100,
    })
    .toBe(true);

  const db = await createDb({ url: `mysql://root@${mysqlUrl.host}/${name}`, poolSize: 1, createDatabase: false });
  try {
    await seedDomain(db, 'example.org');
    await seedMailbox(db, { username: 'carol@example.org', passwordHash: ssha512('carol pw') });
  } finally {
    await db.close();
  }
  return { child, internalPort, output: () => text, exited };
}

/** `postern health` (the image's HEALTHCHECK) against a listener on 127.0.0.1:<port>; its exit code. */
function runHealth(port: number): Promise<number | null> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'health'], {
    env: { PATH: process.env.PATH ?? '', POSTERN_INTERNAL_LISTEN: `127.0.0.1:${port}` },
    stdio: 'ignore',
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

function passdb(port: number) {
  return fetch(`http://127.0.0.1:${port}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      username: 'carol@example.org',
      password: 'carol pw',
      real_rip: '192.0.2.44',
      service: 'imap',
    }),
  });
}

describe('postern on SIGTERM', () => {
  it('answers the request in flight, refuses new connections, closes its pools and exits 0', async () => {
    const postern = await startPosternProcess('sigterm');
    // Open the pool connections first, so the held login is the only thing waiting on MySQL.
    expect((await fetch(`http://127.0.0.1:${postern.internalPort}/readyz`)).status).toBe(200);
    expect(await runHealth(postern.internalPort)).toBe(0);

    proxy.hold();
    const answer = passdb(postern.internalPort);
    // The login has reached its MySQL query: it is in flight inside postern.
    await expect.poll(() => proxy.heldBytes, { timeout: 5000, interval: 20 }).toBeGreaterThan(0);
    postern.child.kill('SIGTERM');
    await expect.poll(() => postern.output(), { timeout: 5000, interval: 20 }).toMatch(/"msg":"shutting down"/);
    await sleep(300);
    expect(postern.child.exitCode).toBeNull();
    expect(await canConnect(postern.internalPort)).toBe(false);

    const released = Date.now();
    proxy.release();
    const response = await answer;
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ success: true });
    const exit = await postern.exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.at - released).toBeLessThan(5000);
    expect(postern.output()).toMatch(/"msg":"stopped"/);
    expect(await runHealth(postern.internalPort)).toBe(1);
  });

  it('cuts a request that outlasts POSTERN_SHUTDOWN_TIMEOUT_MS and exits 1 within the grace', async () => {
    const postern = await startPosternProcess('sigtermlate', { POSTERN_SHUTDOWN_TIMEOUT_MS: '1500' });
    expect((await fetch(`http://127.0.0.1:${postern.internalPort}/readyz`)).status).toBe(200);

    proxy.hold();
    const answer = passdb(postern.internalPort).then(
      (response) => response.status,
      () => 'connection closed',
    );
    await expect.poll(() => proxy.heldBytes, { timeout: 5000, interval: 20 }).toBeGreaterThan(0);
    const signalled = Date.now();
    postern.child.kill('SIGTERM');
    const exit = await postern.exited;
    expect(exit).toMatchObject({ code: 1, signal: null });
    expect(exit.at - signalled).toBeLessThan(1500 + 1500);
    expect(exit.at - signalled).toBeGreaterThanOrEqual(1400);
    expect(postern.output()).toMatch(/"msg":"shutdown grace exceeded"/);
    // Never a success nor a mismatch for a login postern could not finish.
    expect(await answer).not.toBe(200);
    expect(await answer).not.toBe(401);
  });
});
