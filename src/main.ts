#!/usr/bin/env node
// Process entry: `postern` serves; `postern check` asks every dependency (MySQL and its schema,
// Redis, the IdP) whether it will work, prints one line each, and exits non-zero on a problem;
// `postern admin …` manages admin accounts (src/cli/admin-command.ts).
// SIGTERM/SIGINT stop the listeners, let requests finish, then close deps.
import { announceFirstAdmin } from './admin/bootstrap.js';
import { ConfigError, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { createLogger, type Logger } from './log.js';
import { startPostern } from './server.js';

async function main(argv: readonly string[]): Promise<number> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`postern: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const log = createLogger(config.logLevel);
  const command = argv[0] ?? 'serve';
  if (command === 'check') return runCheck(config, log);
  if (command === 'admin') {
    const { runAdminCommand } = await import('./cli/admin-command.js');
    // The command's own lines are its output; routine log lines (migrations applied) would bury them.
    return runAdminCommand(argv.slice(1), config, createLogger('warn'), {
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
    });
  }
  if (command !== 'serve') {
    process.stderr.write(`postern: unknown command "${command}" (expected serve, check or admin)\n`);
    return 2;
  }

  const running = await startPostern(config, log);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await running.stop();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // After the handlers: a SIGTERM during this query must still shut down cleanly.
  await announceFirstAdmin(running.deps.db, log);
  return -1;
}

async function runCheck(config: Config, log: Logger): Promise<number> {
  const { checkDependencies } = await import('./check/check-dependencies.js');
  const { createDb } = await import('./storage/db.js');
  const { createRedis } = await import('./cache/redis.js');
  const lines = await checkDependencies({
    config,
    openDb: () => createDb({ url: config.dbUrl, poolSize: 1, createDatabase: false }),
    openRedis: () => createRedis(config.redisUrl),
  });
  const label = { ok: 'OK  ', fail: 'FAIL', skip: 'SKIP' } as const;
  for (const line of lines) process.stdout.write(`${label[line.status]} ${line.name}: ${line.detail}\n`);
  const failures = lines.filter((line) => line.status === 'fail').length;
  log.debug({ failures }, 'check finished');
  return failures === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    const cause = (error as { cause?: { message?: string } }).cause?.message;
    process.stderr.write(`postern: failed to start: ${message}${cause ? ` (${cause})` : ''}\n`);
    process.exit(1);
  },
);
