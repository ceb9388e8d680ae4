// Which background job runs when, under which lock. postern has one job so far:
// - Keycloak sync: node-cron every minute (SYNC_CRON_EXPRESSION) on every replica; the Redis
//   lock `{prefix}sync:lock` (owner token, renewed, taken over after expiry) plus the
//   sync_interval check under it make exactly one replica sync once per interval.
// The implementations live under src/ (the build compiles src/ only); server.ts starts them.
export {
  SYNC_CRON_EXPRESSION,
  type SyncScheduler,
  type SyncSchedulerOptions,
  startSyncScheduler,
} from '../src/sync/scheduler.js';
