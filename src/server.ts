// Starts postern's listeners over a set of deps; main.ts and the end-to-end tests both use it.
import { readFileSync } from 'node:fs';
import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type ServerOptions,
  type ServerResponse,
} from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { serve } from '@hono/node-server';
import type { Config } from './config/schema.js';
import { startSchedule } from './cron/schedule.js';
import { createDeps, type Deps } from './deps.js';
import { createInternalApp, createInternalFastPath, createInternalPassdb } from './http/internal-app.js';
import type { FastPath } from './http/passdb-fast-path.js';
import { isRefusedConnection } from './http/read-body.js';
import { createWebApp } from './http/web-app.js';
import type { Logger } from './log.js';

type Server = ReturnType<typeof serve>;

export interface RunningPostern {
  deps: Deps;
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

type Fetch = (request: Request, env?: unknown) => Response | Promise<Response>;

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

function listen(
  fetch: Fetch,
  address: { host: string; port: number },
  name: string,
  log: Logger,
  options: { fastPath?: FastPath; tls?: { cert: Buffer; key: Buffer } } = {},
): Promise<Server> {
  const { fastPath, tls } = options;
  const handler = inConnectionOrder((incoming, outgoing) => {
    const served = fastPath?.(incoming, outgoing);
    if (!served) return honoListener?.(incoming, outgoing);
    served.catch((error: unknown) => {
      // Only writing the reply can get here; the endpoint itself renders its errors.
      log.error({ err: error, listener: name }, 'passdb reply could not be written');
      outgoing.destroy();
    });
  });
  let honoListener: RequestListener | undefined;
  return new Promise((resolve, reject) => {
    const server = serve(
      {
        fetch,
        hostname: address.host,
        port: address.port,
        // Dovecot's auth workers burst; the default backlog of 511 is fine, keep-alive matters more.
        serverOptions: { keepAliveTimeout: 65_000, requestTimeout: 30_000 },
        // Requests the fast path takes never reach hono; the rest go to hono's listener.
        createServer: ((serverOptions: ServerOptions, listener: RequestListener) => {
          honoListener = listener;
          return tls ? createTlsServer({ ...serverOptions, ...tls }, handler) : createServer(serverOptions, handler);
        }) as typeof createServer,
      },
      (info: AddressInfo) => {
        log.info({ listener: name, address: `${info.address}:${info.port}` }, 'listening');
        resolve(server);
      },
    );
    server.once('error', reject);
  });
}

/**
 * Runs a connection's pipelined requests one after the other: each starts once the answer before
 * it is written, and none starts on a connection whose body was refused (its answer closes the
 * connection, and what the client sent after that body must not be executed). HTTP/1.1 answers
 * pipelined requests in order anyway; Dovecot's HTTP client does not pipeline by default.
 */
function inConnectionOrder(listener: RequestListener): RequestListener {
  const lastResponse = new WeakMap<Socket, ServerResponse>();
  return (incoming, outgoing) => {
    const socket = incoming.socket;
    const previous = lastResponse.get(socket);
    lastResponse.set(socket, outgoing);
    const start = () => {
      if (isRefusedConnection(socket)) {
        socket.destroy();
        return;
      }
      listener(incoming, outgoing);
    };
    if (!previous || previous.writableFinished || previous.destroyed) return start();
    let started = false;
    const once = () => {
      if (started) return;
      started = true;
      previous.off('finish', once);
      previous.off('close', once);
      start();
    };
    previous.on('finish', once);
    previous.on('close', once);
  };
}

/** Stops accepting connections, closes idle keep-alives (Dovecot holds them open); resolves once closed. */
function stopAccepting(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  if ('closeIdleConnections' in server) server.closeIdleConnections();
  return closed;
}
