// Web sessions against real Redis: use extends them (and renews the cookie), the cap ends them.
import { createHash } from 'node:crypto';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostern, type TestPostern } from '../../test/support/env.js';
import { keys } from '../cache/keys.js';
import { createWebSessionRecords } from '../login/web-sessions.js';
import { createWebSessionStore, getWebSession, SESSION_COOKIE, startWebSession, webSessions } from './session.js';

const TTL_SECONDS = 100;
const MAX_SECONDS = 300;

let postern: TestPostern;
let clockMs = Date.now();
let app: Hono;

beforeAll(async () => {
  postern = await startTestPostern('session');
  const config = { ...postern.deps.config, sessionTtlSeconds: TTL_SECONDS, sessionMaxSeconds: MAX_SECONDS };
  const records = createWebSessionRecords({ redis: postern.deps.redis, config, now: () => clockMs });
  const store = createWebSessionStore({ records, config });
  app = new Hono();
  app.use('*', webSessions(store));
  app.post('/start', async (c) =>
    c.text((await startWebSession(c, { username: 'me@example.org', via: 'password' })).username),
  );
  app.get('/me', async (c) => c.text((await getWebSession(c))?.username ?? 'nobody'));
});

afterAll(async () => {
  await postern?.destroy();
});

/** Signs in at the current clock; returns the cookie and the Redis key of the session. */
async function signIn(): Promise<{ cookie: string; key: string }> {
  const response = await app.request('/start', { method: 'POST' });
  const id = /postern_session=([^;]+)/.exec(response.headers.get('set-cookie') ?? '')?.[1] as string;
  const digest = createHash('sha256').update(id).digest('hex');
  return {
    cookie: `${SESSION_COOKIE}=${id}`,
    key: keys.webSession({ prefix: postern.deps.config.redisPrefix }, digest),
  };
}

async function visit(cookie: string) {
  const response = await app.request('/me', { headers: { cookie } });
  return { who: await response.text(), setCookie: response.headers.get('set-cookie') };
}

describe('web sessions', () => {
  it('are extended by use once a quarter of their idle lifetime has passed, and the cookie with them', async () => {
    clockMs = Date.now();
    const { cookie, key } = await signIn();
    // Fresh: nothing is written.
    expect(await visit(cookie)).toEqual({ who: 'me@example.org', setCookie: null });

    // 40 s on (Redis's own clock is simulated by shortening the key): the visit extends it.
    clockMs += 40_000;
    await postern.deps.redis.pexpire(key, 60_000);
    const extended = await visit(cookie);
    expect(extended.who).toBe('me@example.org');
    expect(extended.setCookie).toMatch(
      new RegExp(`^${SESSION_COOKIE}=[^;]+; Max-Age=${TTL_SECONDS}; Path=/; HttpOnly; SameSite=Lax$`),
    );
    expect(await postern.deps.redis.pttl(key)).toBeGreaterThan((TTL_SECONDS - 5) * 1000);
  });

  it('never outlive their cap, however much they are used', async () => {
    clockMs = Date.now();
    const { cookie, key } = await signIn();
    clockMs += (MAX_SECONDS - 30) * 1000;
    await postern.deps.redis.pexpire(key, 20_000);
    expect((await visit(cookie)).setCookie).toMatch(/Max-Age=30;/);

    clockMs += 30_000;
    const ended = await visit(cookie);
    expect(ended.who).toBe('nobody');
    expect(ended.setCookie).toMatch(new RegExp(`^${SESSION_COOKIE}=; Max-Age=0;`));
    expect(await postern.deps.redis.exists(key)).toBe(0);
  });

  it('end when unused for their idle lifetime', async () => {
    clockMs = Date.now();
    const { cookie, key } = await signIn();
    await postern.deps.redis.pexpire(key, 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await visit(cookie)).toEqual({ who: 'nobody', setCookie: null });
  });
});
