// Dovecot's passdb POSTs are the hot path: every IMAP, POP3 and SMTP login is one. The internal
// listener answers them here, on Node's own request and response objects, before hono would wrap
// them in a Request, a Context and a Response (measured side by side under load: that framing is
// about a tenth of a cached login's CPU). The decision, the validation and the replies are the
// same PassdbEndpoint the hono route uses; anything that is not exactly such a POST (another
// method, another path, a query string) goes on to hono unchanged.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import { type TokenCheck, wrongTokenError } from './internal-token.js';
import { readIncomingText } from './read-body.js';
import { errorReply } from './render-error.js';
import type { PassdbEndpoint } from './routes/dovecot.js';

/** Serves the request and returns its completion, or returns undefined for the next handler. */
export type FastPath = (incoming: IncomingMessage, outgoing: ServerResponse) => Promise<void> | undefined;

/** The paths Dovecot's Lua (ours: `/`, mailcow's: `/dovecot/passdb`) posts to, without a query. */
const PASSDB_PATHS = new Set(['/', '/dovecot/passdb']);

export function createPassdbFastPath(options: {
  endpoint: PassdbEndpoint;
  /** Absent when no internal token is configured. */
  isValidToken?: TokenCheck;
  log: Logger;
}): FastPath {
  const { endpoint, isValidToken, log } = options;

  async function serve(incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> {
    let reply: { status: number; body: unknown };
    try {
      if (isValidToken && !isValidToken(incoming.headers.authorization)) throw wrongTokenError();
      endpoint.checkContentType(incoming.headers['content-type']);
      const text = await readIncomingText(incoming, endpoint.maxBodyBytes, () =>
        outgoing.setHeader('connection', 'close'),
      );
      reply = await endpoint.answer(text);
    } catch (error) {
      reply = errorReply(error, incoming.url ?? '/', log);
    }
    // A client that has gone away gets nothing; writing to its closed socket is harmless.
    const json = JSON.stringify(reply.body);
    outgoing.writeHead(reply.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(json),
    });
    outgoing.end(json);
  }

  return (incoming, outgoing) => {
    if (incoming.method !== 'POST' || !PASSDB_PATHS.has(incoming.url ?? '')) return undefined;
    return serve(incoming, outgoing);
  };
}
