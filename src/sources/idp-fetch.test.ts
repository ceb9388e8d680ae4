// ignore_ssl_error against a real TLS server with a self-signed certificate (made by openssl).
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../test/support/tls.js';
import { idpFetch } from './idp-fetch.js';

let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer(selfSignedCertificate(), (req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, accept: req.headers.accept, body }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

describe('idpFetch', () => {
  it('verifies the certificate by default: a self-signed one is refused', async () => {
    await expect(idpFetch({ ignore_ssl_error: false })(url)).rejects.toThrow(/fetch failed/);
    const cause = await idpFetch({ ignore_ssl_error: false })(url).catch((error: Error) => error.cause);
    expect(String((cause as { code?: string })?.code)).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
  });

  it('accepts it for a provider with ignore_ssl_error, passing method, headers and body through', async () => {
    const response = await idpFetch({ ignore_ssl_error: true })(url, {
      method: 'POST',
      headers: { accept: 'application/json' },
      body: 'x=1',
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ method: 'POST', accept: 'application/json', body: 'x=1' });
  });

  it('leaves every other fetch verifying', async () => {
    await idpFetch({ ignore_ssl_error: true })(url);
    await expect(fetch(url)).rejects.toThrow(/fetch failed/);
  });
});
