// The process itself: `postern check` validates and pings, bad configuration stops start-up with
// every problem listed, and SIGTERM shuts down cleanly.
import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { dropDatabase, uniqueName } from './support/env.js';

const SERVE_DATABASE = uniqueName('cli');
afterAll(async () => {
  await dropDatabase(SERVE_DATABASE);
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runPostern(args: string[], env: Record<string, string>, untilOutput?: RegExp): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (untilOutput?.test(stdout)) child.kill('SIGTERM');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the postern command', () => {
  it('check validates the configuration and reaches MySQL and Redis', async () => {
    const run = await runPostern(['check'], { POSTERN_DB_URL: 'mysql://root@127.0.0.1:3306/mysql' });
    // The full matrix of good and broken set-ups: check-command.test.ts.
    expect(run.stdout).toMatch(/^OK {3}configuration: /m);
    expect(run.stdout).toMatch(/^OK {3}mysql: database `mysql` at 127\.0\.0\.1:3306 /m);
    expect(run.stdout).toMatch(/^OK {3}redis: /m);
    // The `mysql` database carries no postern schema: that is a problem, and said so.
    expect(run.stdout).toMatch(/^FAIL mysql schema: no postern schema yet/m);
    expect(run.code).toBe(1);
  });

  it('check exits 1 and names the backend that does not answer', async () => {
    const run = await runPostern(['check'], {
      POSTERN_DB_URL: 'mysql://root@127.0.0.1:1/mysql',
      POSTERN_REDIS_URL: 'redis://127.0.0.1:1',
    });
    expect(run.stdout).toMatch(/^FAIL mysql: nothing listens at 127\.0\.0\.1:1 /m);
    expect(run.stdout).toMatch(/^FAIL redis: nothing listens at 127\.0\.0\.1:1 /m);
    expect(run.code).toBe(1);
  });

  it('refuses to start with a bad configuration, listing every problem, without echoing secrets', async () => {
    const run = await runPostern([], {
      POSTERN_BCRYPT_COST: '99',
      POSTERN_INTERNAL_LISTEN: 'nowhere',
      POSTERN_INTERNAL_TOKEN: 'too-short',
      POSTERN_DB_ULR: 'typo',
    });
    expect(run.code).toBe(2);
    for (const name of ['POSTERN_BCRYPT_COST', 'POSTERN_INTERNAL_LISTEN', 'POSTERN_INTERNAL_TOKEN', 'POSTERN_DB_ULR']) {
      expect(run.stderr).toContain(name);
    }
    expect(run.stderr).not.toContain('too-short');
  });

  it('serves, then stops cleanly on SIGTERM', async () => {
    const run = await runPostern(
      [],
      {
        POSTERN_DB_URL: `mysql://root@127.0.0.1:3306/${SERVE_DATABASE}`,
        POSTERN_REDIS_PREFIX: `${SERVE_DATABASE}:`,
        POSTERN_INTERNAL_LISTEN: '127.0.0.1:0',
        POSTERN_WEB_LISTEN: '127.0.0.1:0',
      },
      /"msg":"listening".*"listener":"web"|"listener":"web".*"msg":"listening"/,
    );
    expect(run.stdout).toMatch(/"msg":"shutting down"/);
    expect(run.stdout).toMatch(/"msg":"stopped"/);
    expect(run.code).toBe(0);
  });
});
