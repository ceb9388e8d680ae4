// The sync lock across operating-system processes: two postern processes on one database and
// Redis, told to sync at the same moment while the Keycloak listing is slow; exactly one runs.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SyncTestEnv, startSyncEnv } from './support/fake-keycloak.js';
import { seedDomain } from './support/seed.js';

let env: SyncTestEnv;
const children: ChildProcess[] = [];

beforeAll(async () => {
  env = await startSyncEnv('sync_procs');
  await seedDomain(env.deps.db, 'procs.example');
  env.kc.setUsers([{ username: 'pia', email: 'pia@procs.example', emailVerified: true }]);
  await env.saveSettings({ import_users: true, periodic_sync: true });
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await env?.destroy();
});

/** Starts a sync process; resolves with a handle once it printed "ready". */
async function startProcess() {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/sync-run-process.ts'], {
    env: { ...process.env, SYNC_PROCESS_NAME: env.name },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const output: string[] = [];
  let notify: () => void = () => undefined;
  lines.on('line', (line) => {
    output.push(line);
    notify();
  });
  const nextLine = (timeoutMs: number) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no output within ${timeoutMs} ms: ${stderr}`)), timeoutMs);
      const check = () => {
        const line = output.shift();
        if (line === undefined) return;
        clearTimeout(timer);
        resolve(line);
      };
      notify = check;
      check();
    });
  expect(await nextLine(30_000)).toBe('ready');
  return {
    go: () => child.stdin?.write('go\n'),
    result: async () => JSON.parse(await nextLine(30_000)) as { state: string },
  };
}

describe('the sync lock across processes', () => {
  it('lets exactly one of two processes run when both start together', async () => {
    const before = await env.deps.db.many('SELECT id FROM postern_sync_runs');
    const [first, second] = await Promise.all([startProcess(), startProcess()]);
    // The listing answers after 3 s: whoever holds the lock still holds it when the other asks.
    env.kc.injectFaults({ endpoint: 'users', delayMs: 3000 });
    first?.go();
    second?.go();
    const states = (await Promise.all([first?.result(), second?.result()])).map((r) => r?.state).sort();
    expect(states).toEqual(['busy', 'ran']);
    const after = await env.deps.db.many('SELECT id FROM postern_sync_runs');
    expect(after.length - before.length).toBe(1);
  });
});
