// Starts postern's listeners over a set of deps; main.ts and the end-to-end tests both use it.
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Config } from './config/schema.js';
import { createDeps, type Deps } from './deps.js';
import { createInternalApp } from './http/internal-app.js';
import { createWebApp } from './http/web-app.js';
import type { Logger } from './log.js';
import { startSyncScheduler } from './sync/scheduler.js';

type Server = ReturnType<typeof serve>;

export interface RunningPostern {
  deps: Deps;
  /** Base URL of the internal listener, e.g. http://127.0.0.1:9082 */
  internalUrl: string;
  /** Base URL of the web listener, e.g. http://127.0.0.1:8080 */
  webUrl: string;
  stop(): Promise<void>;
}

export async function startPostern(config: Config, log: Logger): Promise<RunningPostern> {
  const deps = await createDeps(config, log);
  const servers: Server[] = [];
  try {
    const internal = await listen(createInternalApp(deps).fetch, config.internalListen, 'internal', log);
    servers.push(internal);
    const web = await listen(createWebApp(deps).fetch, config.webListen, 'web', log);
    servers.push(web);
    const scheduler = startSyncScheduler(deps);
    return {
      deps,
      internalUrl: urlOf(internal),
      webUrl: urlOf(web),
      async stop() {
        await scheduler.stop();
        await Promise.all(servers.map(closeServer));
        await deps.close();
      },
    };
  } catch (error) {
    await Promise.all(servers.map(closeServer));
    await deps.close();
    throw error;
  }
}

function urlOf(server: Server): string {
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

function listen(
  fetch: (request: Request) => Response | Promise<Response>,
  address: { host: string; port: number },
  name: string,
  log: Logger,
): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = serve(
      {
        fetch,
        hostname: address.host,
        port: address.port,
        // Dovecot's auth workers burst; the default backlog of 511 is fine, keep-alive matters more.
        serverOptions: { keepAliveTimeout: 65_000, requestTimeout: 30_000 },
      },
      (info: AddressInfo) => {
        log.info({ listener: name, address: `${info.address}:${info.port}` }, 'listening');
        resolve(server);
      },
    );
    server.once('error', reject);
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      if ('closeAllConnections' in server) server.closeAllConnections();
      resolve();
    }, 10_000);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    // Idle keep-alive connections (Dovecot holds them open) would keep close() waiting.
    if ('closeIdleConnections' in server) server.closeIdleConnections();
  });
}
