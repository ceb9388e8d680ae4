// A stand-in for postern's passdb endpoint, for testing lua/dovecot/passdb.lua in isolation:
// each answer is programmable (status, body, delay, or a dropped connection) and every request
// is recorded with its headers, raw body, parsed JSON and the client's TCP port.
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface StubAnswer {
  /** HTTP status; default 200. */
  status?: number;
  /** A string is sent as is; anything else is JSON-encoded. Default: `{"success": true}`. */
  body?: unknown;
  /** Extra response headers (e.g. `location`); content-type defaults from the body's kind. */
  headers?: Record<string, string>;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Destroy the connection instead of answering (a crashed server). */
  drop?: boolean;
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawBody: Buffer;
  /** The parsed body, or undefined when it is not JSON. */
  json: unknown;
  /** The client's port: equal ports mean a reused (keep-alive) connection. */
  remotePort: number;
  receivedAt: number;
}

export type StubResponder = StubAnswer | ((request: RecordedRequest) => StubAnswer);

export interface StubPassdbServer {
  /** `http://127.0.0.1:<port>/` */
  url: string;
  port: number;
  /** Every request received since the last reset(), oldest first. */
  readonly requests: RecordedRequest[];
  /** Sets the answer for the following requests (a fixed answer or a function of the request). */
  respondWith(responder: StubResponder): void;
  /** Forgets recorded requests and goes back to the default answer (200, success). */
  reset(): void;
  close(): Promise<void>;
}

const DEFAULT_ANSWER: StubAnswer = { status: 200, body: { success: true } };

export async function startStubPassdbServer(
  initial: StubResponder = DEFAULT_ANSWER,
  options: { keepAliveTimeoutMs?: number; port?: number } = {},
): Promise<StubPassdbServer> {
  let responder: StubResponder = initial;
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();

  const answer = (res: ServerResponse, recorded: RecordedRequest, socket: Socket): void => {
    const chosen = typeof responder === 'function' ? responder(recorded) : responder;
    const send = (): void => {
      if (chosen.drop) {
        socket.destroy();
        return;
      }
      const body = chosen.body === undefined ? DEFAULT_ANSWER.body : chosen.body;
      const isText = typeof body === 'string';
      const payload = isText ? body : JSON.stringify(body);
      res.writeHead(chosen.status ?? 200, {
        'content-type': isText ? 'text/plain; charset=utf-8' : 'application/json',
        'content-length': Buffer.byteLength(payload),
        ...chosen.headers,
      });
      res.end(payload);
    };
    if (chosen.delayMs && chosen.delayMs > 0) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        send();
      }, chosen.delayMs);
      timers.add(timer);
    } else {
      send();
    }
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks);
      let json: unknown;
      try {
        json = JSON.parse(rawBody.toString('utf8'));
      } catch {
        json = undefined;
      }
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawBody,
        json,
        remotePort: req.socket.remotePort ?? 0,
        receivedAt: Date.now(),
      };
      requests.push(recorded);
      answer(res, recorded, req.socket);
    });
  });
  // Node's default (5 s) is what postern's listener uses; tests may shorten it.
  if (options.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = options.keepAliveTimeoutMs;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  // A fixed port lets a test bring a "replica" back where it used to listen.
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    requests,
    respondWith(next: StubResponder) {
      responder = next;
    },
    reset() {
      requests.length = 0;
      responder = DEFAULT_ANSWER;
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
