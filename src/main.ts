#!/usr/bin/env node
// Process entry: `postern` serves; `postern check` asks every dependency (MySQL and its schema,
// Redis, the IdP) whether it will work, prints one line each, and exits non-zero on a problem;
// `postern admin …` manages admin accounts (src/cli/admin-command.ts); `postern health` asks the
// running server's /healthz (the image's HEALTHCHECK). SIGTERM/SIGINT stop the listeners, let
// requests finish, then close deps, all within POSTERN_SHUTDOWN_TIMEOUT_MS.
import { announceFirstAdmin } from './admin/bootstrap.js';
import { ConfigError, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { createLogger, type Logger } from './log.js';

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
  if (command === 'health') return runHealth(config);
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
    process.stderr.write(`postern: unknown command "${command}" (expected serve, check, health or admin)\n`);
    return 2;
  }

  const { startPostern } = await import('./server.js');
  const running = await startPostern(config, log);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutting down');
    const report = await running.stop();
    if (report.requestsCut > 0 || report.backgroundCut) {
      log.warn(report, 'shutdown grace exceeded');
      process.exit(1);
    }
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // After the handlers: a SIGTERM during this query must still shut down cleanly.
  await announceFirstAdmin(running.deps.db, log);
  return -1;
}

/** GET /healthz on the internal listener of this configuration: exit 0 on 200, 1 otherwise. */
async function runHealth(config: Config): Promise<number> {
  const { host, port } = config.internalListen;
  // A wildcard listener is reached on loopback from inside its own container.
  const target =
    host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  try {
    const response = await fetch(`http://${target}:${port}/healthz`, { signal: AbortSignal.timeout(3000) });
    process.stdout.write(`healthz: ${response.status}\n`);
    return response.status === 200 ? 0 : 1;
  } catch (error) {
    process.stdout.write(`healthz: ${(error as Error).message}\n`);
    return 1;
  }
}

async function runCheck(config: Config, log: Logger): Promise<number> {
  const { checkDependencies } = await import('./check/check-dependencies.js');
  const { createDb } = await import('./storage/db.js');
  const { createRedis, redisTargetOf } = await import('./cache/redis.js');
  const lines = await checkDependencies({
    config,
    openDb: () => createDb({ url: config.dbUrl, poolSize: 1, createDatabase: false }),
    openRedis: () => createRedis(redisTargetOf(config)),
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
