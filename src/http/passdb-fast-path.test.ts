// Which requests the listener's fast path takes, and how it frames what the endpoint answers.
// The endpoint here is a recording one: the decision itself is tested in test/passdb.test.ts.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../errors.js';
import { createLogger } from '../log.js';
import { createTokenCheck } from './internal-token.js';
import { createPassdbFastPath } from './passdb-fast-path.js';
import type { PassdbEndpoint } from './routes/dovecot.js';

const TOKEN = 'a-sufficiently-long-internal-token';
let server: Server | undefined;

afterEach(async () => {
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** A listener with the fast path in front of a fallback that answers 418 "fallback". */
async function listen(options: { token?: string; answer?: PassdbEndpoint['answer'] } = {}) {
  const received: string[] = [];
  const endpoint: PassdbEndpoint = {
    maxBodyBytes: 64,
    checkContentType(contentType) {
      if (contentType !== 'application/json')
        throw new AppError('bad_request', 'Content-Type must be application/json');
    },
    answer:
      options.answer ??
      (async (text) => {
        received.push(text);
        return { status: 200, body: { success: true, result: 'ok', username: 'someone@example.org' } };
      }),
  };
  const fastPath = createPassdbFastPath({
    endpoint,
    ...(options.token ? { isValidToken: createTokenCheck(options.token) } : {}),
    log: createLogger('silent'),
  });
  server = createServer((incoming, outgoing) => {
    if (fastPath(incoming, outgoing)) return;
    outgoing.writeHead(418).end('fallback');
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, received };
}

describe('createPassdbFastPath', () => {
  it('takes POST / and POST /dovecot/passdb and hands the body to the endpoint', async () => {
    const { url, received } = await listen();
    for (const path of ['/', '/dovecot/passdb']) {
      const response = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: `{"path":"${path}"}`,
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('application/json');
      expect(await response.json()).toEqual({ success: true, result: 'ok', username: 'someone@example.org' });
    }
    expect(received).toEqual(['{"path":"/"}', '{"path":"/dovecot/passdb"}']);
  });

  it.each([
    { method: 'GET', path: '/' },
    { method: 'PUT', path: '/' },
    { method: 'POST', path: '/?x=1' },
    { method: 'POST', path: '/dovecot/passdb/' },
    { method: 'POST', path: '/other' },
  ])('leaves $method $path to the next handler', async ({ method, path }) => {
    const { url, received } = await listen();
    const response = await fetch(`${url}${path}`, { method, ...(method === 'GET' ? {} : { body: '{}' }) });
    expect(response.status).toBe(418);
    expect(await response.text()).toBe('fallback');
    expect(received).toEqual([]);
  });

  it('refuses a missing or wrong token with 403 before reading the body', async () => {
    const { url, received } = await listen({ token: TOKEN });
    for (const authorization of [undefined, 'Bearer wrong', `Basic ${TOKEN}`]) {
      const response = await fetch(`${url}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: '{}',
      });
      expect(response.status).toBe(403);
      expect(await response.json()).toEqual({
        success: false,
        error: { code: 'forbidden', message: 'missing or wrong internal token' },
      });
    }
    const accepted = await fetch(`${url}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: '{}',
    });
    expect(accepted.status).toBe(200);
    expect(received).toEqual(['{}']);
  });

  it('renders a fault as a 5xx internal_failure without its detail', async () => {
    const { url } = await listen({
      answer: async () => {
        throw new Error('connect ECONNREFUSED 10.0.0.5:3306 (secret detail)');
      },
    });
    const response = await fetch(`${url}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({
      success: false,
      result: 'internal_failure',
      error: { code: 'internal', message: 'internal error' },
    });
  });

  it('answers an oversized body with 400 and closes the connection', async () => {
    const { url, received } = await listen();
    const { port } = new URL(url);
    const answer = await new Promise<{ status: number; connection: string | undefined; body: string }>(
      (resolve, reject) => {
        const sent = request(
          { host: '127.0.0.1', port, method: 'POST', path: '/', headers: { 'content-type': 'application/json' } },
          (response) => {
            let body = '';
            response.on('data', (chunk: Buffer) => {
              body += chunk.toString('utf8');
            });
            response.on('end', () =>
              resolve({ status: response.statusCode ?? 0, connection: response.headers.connection, body }),
            );
          },
        );
        sent.on('error', reject);
        // Chunked, so no Content-Length announces the size: the limit is met while reading.
        sent.write('x'.repeat(40));
        sent.end('y'.repeat(40));
      },
    );
    expect(answer.status).toBe(400);
    expect(answer.connection).toBe('close');
    expect(JSON.parse(answer.body).error.message).toMatch(/larger than 64 bytes/);
    expect(received).toEqual([]);
  });
});
