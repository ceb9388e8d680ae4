// A body over the limit is refused with 400 and the connection is closed: nothing sent after it
// on the same connection (a pipelined request) may be executed, through whichever front door.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from './support/env.js';
import { seedDomain, seedMailbox } from './support/seed.js';

let postern: TestPostern;

beforeAll(async () => {
  postern = await startTestPostern('oversized', { POSTERN_API_KEY: 'oversized-api-key-0123456789abcdefgh' });
  await seedDomain(postern.deps.db, 'example.org');
  await seedMailbox(postern.deps.db, {
    username: 'pip@example.org',
    passwordHash: await postern.deps.hashPool.hash('pip pw', 'SSHA512'),
  });
});

afterAll(async () => {
  await postern?.destroy();
});

/** Writes raw bytes on one connection; resolves with all it received once the server closed it. */
function exchange(url: string, payload: string): Promise<{ received: string; closedByServer: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ received, closedByServer: false });
    }, 5000);
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      // A reset after the answer is the server closing too.
      if (received) resolve({ received, closedByServer: true });
      else reject(error);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      resolve({ received, closedByServer: true });
    });
    socket.write(payload);
  });
}

function chunked(body: string, chunkBytes = 4096): string {
  let out = '';
  for (let at = 0; at < body.length; at += chunkBytes) {
    const part = body.slice(at, at + chunkBytes);
    out += `${Buffer.byteLength(part).toString(16)}\r\n${part}\r\n`;
  }
  return `${out}0\r\n\r\n`;
}

function passdbRequest(path: string, body: string, extraHeaders = ''): string {
  return (
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`
  );
}

async function saslRows(realRip: string): Promise<unknown[]> {
  await postern.deps.saslLog.flush();
  return postern.deps.db.many('SELECT username FROM sasl_log WHERE real_rip = ?', [realRip]);
}

describe('a request pipelined after an oversized chunked body', () => {
  it.each([
    { door: 'the fast path', path: '/' },
    { door: 'the hono route', path: '/?through=hono' },
  ])('is never executed on $door: one 400, then the connection closes', async ({ path }) => {
    const realRip = path === '/' ? '198.51.100.71' : '198.51.100.72';
    const oversized = JSON.stringify({ username: 'x@example.org', password: 'p'.repeat(20_000) });
    const login = JSON.stringify({
      username: 'pip@example.org',
      password: 'pip pw',
      real_rip: realRip,
      service: 'imap',
    });
    const payload =
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n` +
      chunked(oversized) +
      passdbRequest(path, login);

    const { received, closedByServer } = await exchange(postern.internalUrl, payload);

    expect(received.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 400']);
    expect(received).toMatch(/larger than 16384 bytes/);
    expect(received.toLowerCase()).toContain('connection: close');
    expect(closedByServer).toBe(true);
    // The pipelined login would have written mailcow's sasl_log row had it run.
    await sleep(200);
    expect(await saslRows(realRip)).toEqual([]);
  });

  it('still serves pipelined requests after a body within the limit', async () => {
    const realRip = '198.51.100.73';
    const login = JSON.stringify({
      username: 'pip@example.org',
      password: 'pip pw',
      real_rip: realRip,
      service: 'imap',
    });
    const { received } = await exchange(
      postern.internalUrl,
      passdbRequest('/', login) + passdbRequest('/', login, 'Connection: close\r\n'),
    );
    expect(received.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200']);
    expect(await saslRows(realRip)).toHaveLength(1);
  });
});
