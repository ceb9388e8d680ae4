// Admin sessions against the real Redis with a fixed clock: the idle lifetime (extended by use),
// the absolute cap from sign-in, the short pending stage, rotation and server-side sign-out.
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, uniqueName } from '../../test/support/env.js';
import { createRedis } from '../cache/redis.js';
import { type AdminStage, createAdminSessionStore, PENDING_STAGE_SECONDS } from './admin-session.js';

const redis = createRedis(REDIS_URL);
const prefix = `${uniqueName('admin_session')}:`;
// postern's client has no offline queue: wait until it is connected (a down Redis fails here).
beforeAll(async () => {
  if (redis.status !== 'ready')
    await new Promise((resolve, reject) => {
      redis.once('ready', resolve);
      redis.once('error', reject);
    });
});
afterAll(async () => {
  const found = await redis.keys(`${prefix}*`);
  if (found.length) await redis.del(...found);
  redis.disconnect();
});

const IDLE = 1800;
const MAX = 7200;
let nowMs = 1_700_000_000_000;
const store = createAdminSessionStore({
  redis,
  config: {
    redisPrefix: prefix,
    adminSessionIdleSeconds: IDLE,
    adminSessionMaxSeconds: MAX,
    cookieSecure: 'false',
    publicUrl: 'http://127.0.0.1:8080',
  },
  now: () => nowMs,
});

const app = new Hono();
app.post('/start/:stage', async (c) => {
  await store.start(c, { username: 'root', stage: c.req.param('stage') as AdminStage });
  return c.text('ok');
});
app.get('/who', async (c) => c.text((await store.read(c))?.username ?? 'nobody'));
app.post('/out', async (c) => {
  await store.destroy(c);
  return c.text('bye');
});

async function start(stage: AdminStage) {
  const response = await app.request(`/start/${stage}`, { method: 'POST' });
  const cookie = response.headers.get('set-cookie') ?? '';
  return /postern_admin=([^;]+)/.exec(cookie)?.[1] ?? '';
}
const who = async (id: string) => (await app.request('/who', { headers: { cookie: `postern_admin=${id}` } })).text();

describe('admin sessions', () => {
  it('sets a cookie that is HttpOnly and SameSite=Strict', async () => {
    const response = await app.request('/start/full', { method: 'POST' });
    const cookie = response.headers.get('set-cookie') ?? '';
    expect([response.status, await response.text()]).toEqual([200, 'ok']);
    expect(cookie).toMatch(/^postern_admin=[A-Za-z0-9_-]{43};/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toMatch(/Secure/);
  });

  it('keeps only a hash of the id in Redis', async () => {
    const id = await start('full');
    const found = await redis.keys(`${prefix}*`);
    expect(found.some((key) => key.includes(id))).toBe(false);
  });

  it('ends after the idle lifetime without use, and use extends it', async () => {
    const id = await start('full');
    nowMs += (IDLE - 10) * 1000;
    expect(await who(id)).toBe('root');
    nowMs += (IDLE - 10) * 1000;
    expect(await who(id)).toBe('root');
    nowMs += IDLE * 1000;
    expect(await who(id)).toBe('nobody');
  });

  it('ends at the absolute cap however much it is used', async () => {
    const id = await start('full');
    for (let elapsed = 0; elapsed < MAX - 600; elapsed += 600) {
      nowMs += 600_000;
      expect(await who(id)).toBe('root');
    }
    nowMs += 600_000;
    expect(await who(id)).toBe('nobody');
  });

  it('gives the password-only stage five minutes', async () => {
    const id = await start('second_factor');
    nowMs += (PENDING_STAGE_SECONDS - 1) * 1000;
    expect(await who(id)).toBe('root');
    nowMs += 2000;
    expect(await who(id)).toBe('nobody');
  });

  it('deletes the session in Redis at sign-out, so a copied cookie stops working', async () => {
    const id = await start('full');
    await app.request('/out', { method: 'POST', headers: { cookie: `postern_admin=${id}` } });
    expect(await who(id)).toBe('nobody');
  });

  it('rotates the id at each start: the pre-second-factor id dies', async () => {
    const pending = await start('second_factor');
    const response = await app.request('/start/full', {
      method: 'POST',
      headers: { cookie: `postern_admin=${pending}` },
    });
    const full = /postern_admin=([^;]+)/.exec(response.headers.get('set-cookie') ?? '')?.[1] ?? '';
    expect(full).not.toBe(pending);
    expect(await who(pending)).toBe('nobody');
    expect(await who(full)).toBe('root');
  });

  it('ignores malformed cookies', async () => {
    expect(await who('not-a-session')).toBe('nobody');
  });
});
