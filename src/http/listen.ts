// A listener: hono's node server on node:http or node:https, with the passdb fast path in front
// of hono (requests it takes never reach hono) and each connection's pipelined requests run in
// order. server.ts starts the listeners over the deps; this is the hono side of it.
import { createServer, type RequestListener, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { serve } from '@hono/node-server';
import type { Logger } from '../log.js';
import type { FastPath } from './passdb-fast-path.js';
import { isRefusedConnection } from './read-body.js';

export type Server = ReturnType<typeof serve>;

type Fetch = (request: Request, env?: unknown) => Response | Promise<Response>;

export function listen(
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
