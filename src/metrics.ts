// prom-client registry and the handful of named series postern exports. One registry per
// process (deps owns it), so tests can build several apps without label clashes.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { KNOWN_SERVICES } from './login/services.js';

/**
 * The `service` label: a service postern knows, or `other`. The name comes from the request, and
 * each new label value is a new series kept for the process's life (measured: 18,425 names
 * took /metrics from 15 KB to 1.67 MB and RSS up 90 MB). Unknown names are denied anyway.
 */
const SERVICE_LABELS = new Set(KNOWN_SERVICES);
export const OTHER_SERVICE_LABEL = 'other';

export interface Metrics {
  registry: Registry;
  authAttempts: Counter<'service' | 'source' | 'result'>;
  authDuration: Histogram<'result'>;
  credentialCache: Counter<'layer'>;
  bans: Counter<'scope'>;
  rateLimited: Counter<'scope'>;
  /** One passdb decision: counts it and records its latency (label sets resolved once each). */
  observeAuth(service: string, source: string, result: string, seconds: number): void;
}

/**
 * How often the event loop's delay is sampled (prom-client's default). Node records the time
 * between two samples, so `postern_nodejs_eventloop_lag_*` include this interval: an idle loop
 * reads about 10 ms. The delay itself is the reading minus this.
 */
export const EVENT_LOOP_SAMPLE_MS = 10;

export function createMetrics(options: { hashQueueDepth: () => number; hashThreads: number }): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({
    register: registry,
    prefix: 'postern_',
    eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS,
  });
  const metrics: Metrics = {
    observeAuth: () => undefined,
    registry,
    authAttempts: new Counter({
      name: 'postern_auth_attempts_total',
      help: 'passdb decisions by service, auth source of the mailbox and result',
      labelNames: ['service', 'source', 'result'],
      registers: [registry],
    }),
    authDuration: new Histogram({
      name: 'postern_auth_duration_seconds',
      help: 'passdb decision latency',
      labelNames: ['result'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    credentialCache: new Counter({
      name: 'postern_credential_cache_lookups_total',
      help: 'verified-credential cache lookups by the layer that answered (local, redis) or miss',
      labelNames: ['layer'],
      registers: [registry],
    }),
    bans: new Counter({
      name: 'postern_bans_total',
      help: 'bans imposed, by scope',
      labelNames: ['scope'],
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'postern_rate_limited_total',
      help: 'attempts refused by a ban without checking the password, by scope',
      labelNames: ['scope'],
      registers: [registry],
    }),
  };
  // prom-client hashes the label object on every call; the few label sets seen are kept instead.
  const attemptCounters = new Map<string, ReturnType<Metrics['authAttempts']['labels']>>();
  const durationHistograms = new Map<string, ReturnType<Metrics['authDuration']['labels']>>();
  metrics.observeAuth = (requestedService, source, result, seconds) => {
    const service = SERVICE_LABELS.has(requestedService) ? requestedService : OTHER_SERVICE_LABEL;
    const key = `${service}\u0000${source}\u0000${result}`;
    let counter = attemptCounters.get(key);
    if (!counter) {
      counter = metrics.authAttempts.labels({ service, source, result });
      if (attemptCounters.size < 1000) attemptCounters.set(key, counter);
    }
    counter.inc();
    let histogram = durationHistograms.get(result);
    if (!histogram) {
      histogram = metrics.authDuration.labels({ result });
      durationHistograms.set(result, histogram);
    }
    histogram.observe(seconds);
  };
  new Gauge({
    name: 'postern_hash_pool_queue_depth',
    help: 'password hash jobs waiting for a worker thread',
    registers: [registry],
    collect() {
      this.set(options.hashQueueDepth());
    },
  });
  new Gauge({
    name: 'postern_hash_pool_threads',
    help: 'worker threads in the password hash pool',
    registers: [registry],
    collect() {
      this.set(options.hashThreads);
    },
  });
  return metrics;
}
