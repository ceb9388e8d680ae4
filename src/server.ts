// Starts postern's listeners over a set of deps; main.ts and the end-to-end tests both use it.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/schema.js';
import { type Schedule, startSchedule } from './cron/schedule.js';
import { createDeps, type Deps } from './deps.js';
import { createInternalApp, createInternalFastPath, createInternalPassdb } from './http/internal-app.js';
import { listen, type Server } from './http/listen.js';
import { createWebApp } from './http/web-app.js';
import type { Logger } from './log.js';

export interface RunningPostern {
  deps: Deps;
  /** The background jobs (Keycloak sync, audit retention); stop() stops them too. */
  schedule: Schedule;
  /** Base URL of the internal listener, e.g. http://127.0.0.1:9082 */
  internalUrl: string;
  /** Base URL of the internal TLS listener, e.g. https://127.0.0.1:9443, when one is configured. */
  internalTlsUrl?: string;
  /** Base URL of the web listener, e.g. http://127.0.0.1:8080 */
  webUrl: string;
  /**
   * Graceful stop within `config.shutdownTimeoutMs`: stop accepting, let requests in flight
   * answer, stop the scheduler (a sync ends at its next page), close the pools. What was still
   * running when the time was up is cut and counted.
   */
  stop(): Promise<StopReport>;
}

export interface StopReport {
  /** Requests that had not answered when the shutdown time was up (their connections were closed). */
  requestsCut: number;
  /** Whether a sync run or other background work was still running when the time was up. */
  backgroundCut: boolean;
}

/** The internal TLS listener's certificate and key, read at start; a problem names the variable. */
function readInternalTls(config: Config): { cert: Buffer; key: Buffer } | undefined {
  if (!config.internalTlsListen || !config.internalTlsCertFile || !config.internalTlsKeyFile) return undefined;
  const read = (variable: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new Error(`${variable}: cannot read ${path} (${code})`);
    }
  };
  return {
    cert: read('POSTERN_INTERNAL_TLS_CERT_FILE', config.internalTlsCertFile),
    key: read('POSTERN_INTERNAL_TLS_KEY_FILE', config.internalTlsKeyFile),
  };
}

export async function startPostern(config: Config, log: Logger): Promise<RunningPostern> {
  const tls = readInternalTls(config);
  const deps = await createDeps(config, log);
  const servers: Server[] = [];
  const inFlight = createRequestTracker();
  try {
    const passdb = createInternalPassdb(deps);
    const internalFetch = createInternalApp(deps, passdb).fetch;
    const fastPath = createInternalFastPath(deps, passdb);
    const internal = await listen(internalFetch, config.internalListen, 'internal', log, { fastPath });
    servers.push(internal);
    // The same endpoints over TLS, for callers that cannot speak plain HTTP (mailcow's Lua).
    let internalTls: Server | undefined;
    if (tls && config.internalTlsListen) {
      internalTls = await listen(internalFetch, config.internalTlsListen, 'internal-tls', log, { fastPath, tls });
      servers.push(internalTls);
    }
    const web = await listen(createWebApp(deps).fetch, config.webListen, 'web', log);
    servers.push(web);
    for (const server of servers) inFlight.attach(server);
    const schedule = startSchedule(deps);
    return {
      deps,
      schedule,
      internalUrl: urlOf(internal),
      ...(internalTls ? { internalTlsUrl: urlOf(internalTls, 'https') } : {}),
      webUrl: urlOf(web),
      async stop() {
        const deadline = Date.now() + config.shutdownTimeoutMs;
        const remainingMs = () => Math.max(0, deadline - Date.now());
        inFlight.closing();
        const closed = servers.map(stopAccepting);
        const schedulerStopped = schedule.stop().then(() => true);
        const drained = await inFlight.drained(remainingMs());
        const requestsCut = drained ? 0 : inFlight.count;
        // Connections still open now are idle keep-alives or hold a request we give up on.
        for (const server of servers) if ('closeAllConnections' in server) server.closeAllConnections();
        await Promise.all(closed);
        const schedulerDone = await Promise.race([schedulerStopped, sleep(remainingMs()).then(() => false)]);
        const backgroundDone = await deps.close({ timeoutMs: remainingMs() });
        return { requestsCut, backgroundCut: !schedulerDone || !backgroundDone };
      },
    };
  } catch (error) {
    for (const server of servers) {
      void stopAccepting(server);
      if ('closeAllConnections' in server) server.closeAllConnections();
    }
    await deps.close();
    throw error;
  }
}

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

/**
 * Counts requests from their arrival until their response has been written (or their connection
 * died), on both paths (the passdb fast path and hono), so shutdown knows when answers are out.
 */
function createRequestTracker() {
  const open = new Set<ServerResponse>();
  let isClosing = false;
  let onIdle: (() => void) | undefined;
  const markClosing = (outgoing: ServerResponse) => {
    // The client gets its answer, then the connection ends instead of waiting as a keep-alive.
    if (!outgoing.headersSent) outgoing.setHeader('connection', 'close');
  };
  return {
    attach(server: Server) {
      server.prependListener('request', (_incoming: IncomingMessage, outgoing: ServerResponse) => {
        open.add(outgoing);
        if (isClosing) markClosing(outgoing);
        outgoing.once('close', () => {
          open.delete(outgoing);
          if (open.size === 0) onIdle?.();
        });
      });
    },
    get count() {
      return open.size;
    },
    /** From now on every response closes its connection once written. */
    closing() {
      isClosing = true;
      for (const outgoing of open) markClosing(outgoing);
    },
    /** Resolves true once no request is in flight, or false when `timeoutMs` passed first. */
    drained(timeoutMs: number): Promise<boolean> {
      if (open.size === 0) return Promise.resolve(true);
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), timeoutMs);
        timer.unref();
        onIdle = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
    },
  };
}

function urlOf(server: Server, scheme: 'http' | 'https' = 'http'): string {
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${scheme}://${host}:${address.port}`;
}

/** Stops accepting connections, closes idle keep-alives (Dovecot holds them open); resolves once closed. */
function stopAccepting(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  if ('closeIdleConnections' in server) server.closeIdleConnections();
  return closed;
}
