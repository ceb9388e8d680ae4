// A second postern process for the cross-process lock test: builds deps on the database and Redis
// prefix named by SYNC_PROCESS_NAME, prints "ready", waits for a line on stdin, runs one sync
// (dry run) and prints its state as JSON. Run with `node --import tsx`.
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { createDeps } from '../../src/deps.js';
import { createLogger } from '../../src/log.js';
import { runSync } from '../../src/sync/run-sync.js';
import { testConfig } from './env.js';
import { TEST_SECRET_KEY } from './fake-keycloak.js';

const name = process.env.SYNC_PROCESS_NAME;
if (!name) throw new Error('SYNC_PROCESS_NAME is required');
const config = testConfig(name, { POSTERN_SECRET_KEY: TEST_SECRET_KEY, POSTERN_HASH_THREADS: '1' });
const deps = await createDeps(config, createLogger('silent'));
const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
await once(lines, 'line');
const result = await runSync(deps, {
  triggeredBy: `process ${process.pid}`,
  dryRun: true,
  cronLogKey: `${name}:CRON_LOG`,
});
process.stdout.write(`${JSON.stringify({ state: result.state })}\n`);
lines.close();
await deps.close();
