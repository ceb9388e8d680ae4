// Reads a request body as text under a size limit. On the Node server it reads the socket
// stream directly: building a WHATWG Request and its stream for every passdb call costs more
// than the rest of a cached login. Elsewhere (app.request() in tests) it uses the Request.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Context } from 'hono';
import { AppError } from '../errors.js';

export async function readBodyText(c: Context, maxBytes: number): Promise<string> {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming && typeof incoming.on === 'function' && !incoming.readableEnded) {
    return readIncomingText(incoming, maxBytes, () => c.header('connection', 'close'));
  }
  if (Number(c.req.header('content-length') ?? Number.NaN) > maxBytes) throw tooLarge(maxBytes);
  const text = await c.req.text();
  if (Buffer.byteLength(text) > maxBytes) throw tooLarge(maxBytes);
  return text;
}

/**
 * Connections on which a body was refused. Node keeps parsing what the client sent after it, and
 * would dispatch a request pipelined behind the refused body (executed, though its answer is never
 * sent on the closing connection); the listener checks this set and runs nothing more on them.
 */
const refusedConnections = new WeakSet<Socket>();

/** Whether a body was refused on this connection, so nothing more it carries may be executed. */
export function isRefusedConnection(socket: Socket): boolean {
  return refusedConnections.has(socket);
}

function refuseConnection(incoming: IncomingMessage, closeConnection: () => void): void {
  refusedConnections.add(incoming.socket);
  closeConnection();
}

/**
 * The body of a Node request as UTF-8 text. Past maxBytes (declared or read) it rejects with a
 * 400 and calls closeConnection first: the connection closes after the answer, and nothing sent
 * after the refused body on it is executed (see refusedConnections).
 */
export function readIncomingText(
  incoming: IncomingMessage,
  maxBytes: number,
  closeConnection: () => void,
): Promise<string> {
  if (Number(incoming.headers['content-length'] ?? Number.NaN) > maxBytes) {
    refuseConnection(incoming, closeConnection);
    return Promise.reject(tooLarge(maxBytes));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        refuseConnection(incoming, closeConnection);
        // The rest of this body is read and dropped, so the 400 is not lost to a reset.
        incoming.resume();
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new AppError('bad_request', 'request body could not be read', { cause: error }));
    };
    const cleanup = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
  });
}

function tooLarge(maxBytes: number): AppError {
  return new AppError('bad_request', `request body larger than ${maxBytes} bytes`);
}
