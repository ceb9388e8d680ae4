// npm run bench:sync: a Keycloak sync of a large realm (default 50,000 users) against the fake
// Keycloak, real MariaDB and Redis. Prints, per scenario, the run time, users/s and peak heap, so
// the claim "a 50k realm syncs well within the 15-minute default interval" is measured here.
// Figures only, no pass/fail. BENCH_SYNC_USERS and BENCH_SYNC_CONCURRENCY change the set-up.
import { randomBytes } from 'node:crypto';
import { createRedis } from '../src/cache/redis.js';
import { createLogger } from '../src/log.js';
import { createKeycloakAdminClient } from '../src/sources/keycloak-admin.js';
import { createDb } from '../src/storage/db.js';
import { applyMigrations } from '../src/storage/migrate.js';
import { insertMailboxTemplate } from '../src/storage/templates.js';
import { applySync, type SyncReport } from '../src/sync/apply-sync.js';
import type { SyncSettings } from '../src/sync/plan-sync.js';
import { dropDatabase, MYSQL_ROOT_URL, REDIS_URL } from '../test/support/env.js';
import { generatedDirectory, startFakeKeycloak } from '../test/support/fake-keycloak.js';

const USERS = Number(process.env.BENCH_SYNC_USERS ?? 50_000);
const CONCURRENCY = Number(process.env.BENCH_SYNC_CONCURRENCY ?? 4);
const DATABASE = `postern_bench_sync_${randomBytes(3).toString('hex')}`;

const settings = (overrides: Partial<SyncSettings> = {}): SyncSettings => ({
  importUsers: true,
  periodicSync: true,
  deprovision: false,
  maxDropPercent: 20,
  attributeField: 'mailcow_template',
  mappings: { mappers: ['standard', 'premium'], templates: ['Standard', 'Premium'] },
  ...overrides,
});

const user = (domain: (i: number) => string, template: string) => (i: number) => ({
  username: `user${String(i).padStart(6, '0')}`,
  email: `user${i}@${domain(i)}`,
  emailVerified: true,
  firstName: 'User',
  lastName: String(i),
  attributes: { mailcow_template: [template] },
});

async function main() {
  const log = createLogger('warn');
  const db = await createDb({ url: `${MYSQL_ROOT_URL}/${DATABASE}`, poolSize: 10, createDatabase: true });
  const redis = createRedis(REDIS_URL);
  const kc = await startFakeKeycloak();
  const cronLogKey = `${DATABASE}:CRON_LOG`;
  const rows: string[][] = [];
  let peakHeapMb = 0;
  const sampler = setInterval(() => {
    peakHeapMb = Math.max(peakHeapMb, process.memoryUsage().heapUsed / 2 ** 20);
  }, 50);
  try {
    await applyMigrations(db, log);
    await db.execute("INSERT INTO domain (domain, description, active) VALUES ('bench.example', 'bench', 1)");
    await insertMailboxTemplate(db, 'Standard', { quota: 1024 ** 3, active: 1, imap_access: 1, pop3_access: 0 });
    await insertMailboxTemplate(db, 'Premium', { quota: 10 * 1024 ** 3, active: 1, imap_access: 1, pop3_access: 1 });

    const run = async (scenario: string, options: { settings?: Partial<SyncSettings>; dryRun?: boolean }) => {
      if (global.gc) global.gc();
      peakHeapMb = process.memoryUsage().heapUsed / 2 ** 20;
      const client = createKeycloakAdminClient({
        serverUrl: kc.url,
        realm: kc.realm,
        clientId: 'postern',
        clientSecret: 'postern-secret',
        timeoutMs: 7_000,
      });
      const requestsBefore = kc.counts.users;
      const report: SyncReport = await applySync(
        { db, redis, log },
        {
          client,
          settings: settings(options.settings),
          dryRun: options.dryRun ?? false,
          triggeredBy: 'bench',
          cronLogKey,
          concurrency: CONCURRENCY,
        },
      );
      const seconds = report.durationMs / 1000;
      const c = report.counts;
      rows.push([
        scenario,
        report.status,
        `${seconds.toFixed(1)} s`,
        `${Math.round(c.users / seconds)}`,
        `${c.created}/${c.updated}/${c.deactivated}/${c.skipped}`,
        `${kc.counts.users - requestsBefore}`,
        `${peakHeapMb.toFixed(0)} MB`,
      ]);
      process.stdout.write(`${rows.at(-1)?.join('  ')}\n`);
    };

    process.stdout.write(`sync bench: ${USERS} users, apply concurrency ${CONCURRENCY}, node ${process.version}\n`);
    kc.setUsers(
      generatedDirectory(
        USERS,
        user(() => 'bench.example', 'standard'),
      ),
    );
    await run('dry run of the first import', { dryRun: true });
    await run('first import (creates)', {});
    await run('steady state (nothing changed)', {});
    await run('steady state, deprovisioning on (+ safety pass)', {
      settings: { deprovision: true, maxDropPercent: 20 },
    });
    kc.setUsers(
      generatedDirectory(
        USERS,
        user(() => 'bench.example', 'premium'),
      ),
    );
    await run('every template changed (updates)', {});
    kc.setUsers(
      generatedDirectory(
        USERS,
        user((i) => `foreign${i % 997}.example`, 'standard'),
      ),
    );
    await run('foreign realm (unknown domains, skipped)', { settings: { periodicSync: false } });
  } finally {
    clearInterval(sampler);
    await redis.del(cronLogKey).catch(() => undefined);
    redis.disconnect();
    await kc.close();
    await db.close();
    await dropDatabase(DATABASE);
  }
  const header = [
    'scenario',
    'status',
    'time',
    'users/s',
    'created/updated/deactivated/skipped',
    'list requests',
    'peak heap',
  ];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(' | ');
  process.stdout.write(
    `\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('-|-')}\n${rows.map(line).join('\n')}\n`,
  );
  process.stdout.write('\nTarget: a full run well within the default sync_interval of 15 min (900 s).\n');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
