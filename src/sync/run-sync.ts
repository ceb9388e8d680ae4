// One sync attempt as the scheduler or the admin API asks for it: read the IdP settings fresh
// (so admin changes apply without a restart), take the cross-replica lock, check the interval
// under the lock (so replicas run once per interval), build the Keycloak client, run applySync.

import { createSyncProgressWriter } from '../admin/sync-progress.js';
import { keys } from '../cache/keys.js';
import type { Redis } from '../cache/redis.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { idpFetch } from '../sources/idp-fetch.js';
import { type KeycloakSettings, loadIdpSettings } from '../sources/idp-settings.js';
import { createKeycloakAdminClient, type KeycloakAdminClient } from '../sources/keycloak-admin.js';
import type { SecretBox } from '../sources/secret-box.js';
import type { Db } from '../storage/db.js';
import { lastFinishedSyncRunAt } from '../storage/sync-runs.js';
import { applySync, type SyncReport } from './apply-sync.js';
import { syncSettingsOf } from './plan-sync.js';
import { acquireSyncLock } from './sync-lock.js';

export interface SyncDeps {
  db: Db;
  redis: Redis;
  log: Logger;
  secretBox: SecretBox;
  config: Pick<Config, 'idpTimeoutMs' | 'redisPrefix'>;
}

export interface RunSyncOptions {
  triggeredBy: string;
  dryRun?: boolean;
  /** Scheduler: run only when sync_interval minutes passed since the last finished run. */
  onlyIfDue?: boolean;
  /** Lock lifetime; renewed every third of it while the run lasts. */
  lockTtlMs?: number;
  /** Aborts the run between pages (shutdown). */
  signal?: AbortSignal;
  now?: () => number;
  cronLogKey?: string;
  /** Called once the run has its row, before any user is read. */
  onStarted?: (runId: number) => void;
  /** Tests: a client against a fake, or retry settings. */
  createClient?: (
    settings: KeycloakSettings,
    timeoutMs: number,
  ) => Pick<KeycloakAdminClient, 'listUserPages' | 'findUsersByEmail'>;
}

export type RunSyncResult =
  | { state: 'ran'; report: SyncReport }
  /** Another replica (or request) holds the lock. */
  | { state: 'busy' }
  | { state: 'not_due'; nextDueAt: Date }
  /** No Keycloak provider, invalid settings, or neither periodic_sync nor import_users on. */
  | { state: 'disabled'; reason: string };

export const DEFAULT_LOCK_TTL_MS = 60_000;

export async function runSync(deps: SyncDeps, options: RunSyncOptions): Promise<RunSyncResult> {
  const loaded = await loadIdpSettings(deps.db, deps.secretBox);
  if (loaded.state === 'none') return { state: 'disabled', reason: 'no identity provider is configured' };
  if (loaded.state === 'invalid') {
    return { state: 'disabled', reason: `the identity provider settings are invalid: ${loaded.problems.join('; ')}` };
  }
  const settings = loaded.settings;
  if (settings.authsource !== 'keycloak') {
    return { state: 'disabled', reason: `sync needs a Keycloak provider (configured: ${settings.authsource})` };
  }
  if (!settings.periodic_sync && !settings.import_users) {
    return { state: 'disabled', reason: 'periodic_sync and import_users are both off' };
  }

  const lock = await acquireSyncLock(deps.redis, keys.syncLock({ prefix: deps.config.redisPrefix }), {
    ttlMs: options.lockTtlMs ?? DEFAULT_LOCK_TTL_MS,
    log: deps.log,
  });
  if (!lock) return { state: 'busy' };
  try {
    if (options.onlyIfDue) {
      // Checked under the lock: a replica that got the lock right after another finished sees
      // that run's row and stands down, so one run happens per interval.
      const now = (options.now ?? Date.now)();
      const last = await lastFinishedSyncRunAt(deps.db, 'keycloak');
      const dueAt = last ? last.getTime() + settings.sync_interval * 60_000 : now;
      if (dueAt > now) return { state: 'not_due', nextDueAt: new Date(dueAt) };
    }
    const client = options.createClient
      ? options.createClient(settings, deps.config.idpTimeoutMs)
      : createKeycloakAdminClient({
          serverUrl: settings.server_url,
          realm: settings.realm,
          clientId: settings.client_id,
          clientSecret: settings.client_secret,
          clientAuthMethod: settings.postern_token_auth_method,
          timeoutMs: deps.config.idpTimeoutMs,
          fetch: idpFetch(settings),
        });
    const signal = options.signal ? AbortSignal.any([lock.signal, options.signal]) : lock.signal;
    // Live counts for the console, whoever started the run (sync-progress.ts).
    let writeProgress: ReturnType<typeof createSyncProgressWriter> | undefined;
    const onStarted = (runId: number) => {
      writeProgress = createSyncProgressWriter({ ...deps, redisPrefix: deps.config.redisPrefix }, runId);
      void writeProgress('listing', {});
      options.onStarted?.(runId);
    };
    const report = await applySync(
      { db: deps.db, redis: deps.redis, log: deps.log },
      {
        client,
        settings: syncSettingsOf(settings),
        dryRun: options.dryRun ?? false,
        triggeredBy: options.triggeredBy,
        signal,
        ...(options.cronLogKey ? { cronLogKey: options.cronLogKey } : {}),
        onStarted,
        onProgress: (counts) => void writeProgress?.('listing', counts),
      },
    );
    await writeProgress?.('finished', report.counts);
    return { state: 'ran', report };
  } finally {
    await lock.release();
  }
}
