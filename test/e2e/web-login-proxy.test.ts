// The portal's password sign-in behind the shipped nginx (deploy/nginx/postern-sogo.conf, run by
// Debian's real nginx), with browsers on distinct loopback addresses (127.0.0.2, .3, …: every
// 127/8 address is local on Linux). Before POSTERN_TRUSTED_PROXIES every browser arrived as nginx's
// 127.0.0.1: exempt from IP limits and never marked known-good, so a stranger's ten wrong
// passwords locked the real user out.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from '../support/env.js';
import { type RunningNginx, startNginx } from '../support/nginx.js';
import { freePort } from '../support/processes.js';
import { seedDomain, seedMailbox } from '../support/seed.js';

const BOB = 'bob@example.org';
const ALICE = 'alice@example.org';
const PASSWORD = 'right pw';
const USER_THRESHOLD = 10;
const IP_THRESHOLD = 15;

const REAL_BOB = '127.0.0.3';
const STRANGER = '127.0.0.2';
const NEWCOMER = '127.0.0.4';
const REAL_ALICE = '127.0.0.5';
const DIRECT_STRANGER = '127.0.0.6';

let postern: TestPostern;
let nginx: RunningNginx;
let publicUrl: string;

interface Answer {
  status: number;
  location: string | undefined;
}

/** POST /login from a chosen local address, as a browser would send the form. */
function signIn(
  baseUrl: string,
  from: string,
  username: string,
  password: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const body = new URLSearchParams({ username, password }).toString();
  const url = new URL('/login', baseUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        localAddress: from,
        agent: false,
        headers: {
          origin: publicUrl,
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': Buffer.byteLength(body),
          ...headers,
        },
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve({ status: response.statusCode ?? 0, location: response.headers.location }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const viaNginx = (from: string, username: string, password: string, headers?: Record<string, string>) =>
  signIn(nginx.url, from, username, password, headers);

beforeAll(async () => {
  const port = await freePort();
  publicUrl = `http://127.0.0.1:${port}`;
  postern = await startTestPostern('webproxy', {
    POSTERN_PUBLIC_URL: publicUrl,
    // nginx alone is the proxy (it connects from 127.0.0.1); the browsers' 127.0.0.x are clients.
    POSTERN_TRUSTED_PROXIES: '127.0.0.1/32',
    POSTERN_BAN_EXEMPT_NETWORKS: '192.0.2.1/32',
    POSTERN_BAN_USER_THRESHOLD: String(USER_THRESHOLD),
    POSTERN_BAN_IP_THRESHOLD: String(IP_THRESHOLD),
  });
  const { db, hashPool } = postern.deps;
  await seedDomain(db, 'example.org');
  const passwordHash = await hashPool.hash(PASSWORD, 'SSHA256');
  await seedMailbox(db, { username: BOB, passwordHash });
  await seedMailbox(db, { username: ALICE, passwordHash });
  nginx = await startNginx({
    port,
    webUrl: postern.webUrl,
    internalUrl: postern.internalUrl,
    // /SOGo is not used here; nginx only needs an address for its upstream.
    webmailUrl: `http://127.0.0.1:${await freePort()}`,
  });
});

afterAll(async () => {
  await nginx?.stop();
  await postern?.destroy();
});

describe('the portal sign-in behind the shipped nginx', () => {
  it("a stranger's wrong passwords ban the user, but not for the IP the user signed in from", async () => {
    await expect(viaNginx(REAL_BOB, BOB, PASSWORD)).resolves.toMatchObject({ status: 303 });

    // The stranger also claims to be Bob's address: nginx appends the address it saw, and only
    // that one counts.
    const forged = { 'x-forwarded-for': REAL_BOB, 'x-real-ip': REAL_BOB };
    for (let guess = 1; guess <= USER_THRESHOLD; guess += 1) {
      await expect(viaNginx(STRANGER, BOB, `guess ${guess}`, forged), `guess ${guess}`).resolves.toMatchObject({
        status: 401,
      });
    }
    await expect(viaNginx(STRANGER, BOB, PASSWORD, forged)).resolves.toMatchObject({ status: 429 });
    await expect(viaNginx(NEWCOMER, BOB, PASSWORD)).resolves.toMatchObject({ status: 429 });

    // Bob, from where he signed in before, still gets in.
    await expect(viaNginx(REAL_BOB, BOB, PASSWORD)).resolves.toMatchObject({ status: 303, location: '/' });
  });

  it('bans the stranger by its own address, not everyone behind nginx', async () => {
    // The stranger already has USER_THRESHOLD distinct failures; these take it past the IP limit.
    let status = 0;
    for (let guess = 1; guess <= IP_THRESHOLD; guess += 1) {
      status = (await viaNginx(STRANGER, ALICE, `other guess ${guess}`)).status;
      if (status === 429) break;
    }
    expect(status).toBe(429);
    await expect(viaNginx(STRANGER, ALICE, PASSWORD)).resolves.toMatchObject({ status: 429 });
    // The ban is on the stranger's address (the web limiter's key space, src/cache/keys.ts).
    await expect(postern.deps.redis.exists(`${postern.name}:web:rl:ban:ip:${STRANGER}`)).resolves.toBe(1);
    // Alice's own address is no stranger's: her user budget is untouched by the IP ban.
    await expect(viaNginx(REAL_ALICE, ALICE, PASSWORD)).resolves.toMatchObject({ status: 303 });
  });

  it('ignores X-Forwarded-For from a client that is no trusted proxy', async () => {
    // Straight to the web listener, claiming Bob's known-good address: Bob stays banned for it.
    await expect(
      signIn(postern.webUrl, DIRECT_STRANGER, BOB, PASSWORD, { 'x-forwarded-for': REAL_BOB, 'x-real-ip': REAL_BOB }),
    ).resolves.toMatchObject({ status: 429 });
  });
});
