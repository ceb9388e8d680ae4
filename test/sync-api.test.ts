// The admin API for sync runs: trigger (dry or real), list, show with actions; guarded by the
// API key, respecting the cross-replica lock.
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../src/cache/keys.js';
import { renderError } from '../src/http/render-error.js';
import { createSyncRoutes } from '../src/http/routes/sync.js';
import { createWebApp } from '../src/http/web-app.js';
import { insertMailboxTemplate } from '../src/storage/templates.js';
import { type SyncTestEnv, startSyncEnv } from './support/fake-keycloak.js';
import { seedDomain } from './support/seed.js';

const API_KEY = 'sync-api-test-key-0123456789abcdefghijkl';
let env: SyncTestEnv;

/** The response shapes these tests read (runs list, error envelope, run fields). */
type ApiBody = Record<string, unknown> & {
  runs: ({ id: number } & Record<string, unknown>)[];
  error: { code: string; message: string };
  actions: unknown[];
};
let app: Hono;

async function call(method: string, path: string, options: { body?: unknown; key?: string | null } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.key !== null) headers['x-api-key'] = options.key ?? API_KEY;
  const response = await app.request(path, {
    method,
    headers,
    ...(options.body !== undefined
      ? { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) }
      : {}),
  });
  return { status: response.status, body: (await response.json()) as ApiBody };
}

beforeAll(async () => {
  env = await startSyncEnv('sync_api', { overrides: { POSTERN_API_KEY: API_KEY } });
  await seedDomain(env.deps.db, 'api.example');
  await insertMailboxTemplate(env.deps.db, 'Standard', { quota: 1024 ** 3, active: 1 });
  await env.saveSettings({ mappers: ['standard'], templates: ['Standard'] });
  env.kc.setUsers([
    { username: 'ada', email: 'ada@api.example', emailVerified: true, attributes: { mailcow_template: ['standard'] } },
    {
      username: 'bo',
      email: 'bo@elsewhere.example',
      emailVerified: true,
      attributes: { mailcow_template: ['standard'] },
    },
  ]);
  app = new Hono();
  app.onError((error, c) => renderError(error, c, env.deps.log));
  app.route('/api/v1/sync', createSyncRoutes(env.deps, { runOptions: { cronLogKey: env.cronLogKey } }));
});

afterAll(async () => {
  await env?.destroy();
});

describe('/api/v1/sync/runs', () => {
  it.each([
    ['GET', '/api/v1/sync/runs'],
    ['POST', '/api/v1/sync/runs'],
    ['GET', '/api/v1/sync/runs/1'],
  ])('refuses %s %s without a valid API key', async (method, path) => {
    expect((await call(method, path, { key: null })).status).toBe(401);
    expect((await call(method, path, { key: 'wrong-key-wrong-key-wrong-key-wrong' })).status).toBe(401);
  });

  it('runs a dry run and reports the plan without creating anything', async () => {
    const { status, body } = await call('POST', '/api/v1/sync/runs', { body: { dry_run: true } });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      id: expect.any(Number),
      status: 'succeeded',
      dry_run: true,
      counts: { users: 2, created: 1, skipped: 1 },
    });
    expect(
      await env.deps.db.one('SELECT username FROM mailbox WHERE username = ?', ['ada@api.example']),
    ).toBeUndefined();
  });

  it('runs a real sync with an empty body', async () => {
    const { status, body } = await call('POST', '/api/v1/sync/runs');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'succeeded', dry_run: false, counts: { created: 1 } });
    expect(await env.deps.db.one('SELECT username FROM mailbox WHERE username = ?', ['ada@api.example'])).toBeDefined();
    const audit = await env.deps.db.one<{ action: string; actor: string; actor_kind: string; detail: unknown }>(
      'SELECT action, actor, actor_kind, detail FROM postern_audit ORDER BY id DESC LIMIT 1',
    );
    expect({ ...audit, detail: typeof audit?.detail === 'string' ? JSON.parse(audit.detail) : audit?.detail }).toEqual({
      action: 'sync.run',
      actor: 'api:config',
      actor_kind: 'api_key',
      detail: expect.objectContaining({ status: 'succeeded', counts: expect.objectContaining({ created: 1 }) }),
    });
  });

  it('lists runs newest first, with limit', async () => {
    const { status, body } = await call('GET', '/api/v1/sync/runs');
    expect(status).toBe(200);
    expect(body.runs).toHaveLength(2);
    expect(body.runs[0]).toMatchObject({
      dry_run: false,
      status: 'succeeded',
      triggered_by: 'api:config',
      source: 'keycloak',
    });
    expect(body.runs[0]).not.toHaveProperty('actions');
    expect(body.runs[1]).toMatchObject({ dry_run: true });
    expect((await call('GET', '/api/v1/sync/runs?limit=1')).body.runs).toHaveLength(1);
  });

  it('shows one run with its actions', async () => {
    const latest = (await call('GET', '/api/v1/sync/runs?limit=1')).body.runs[0] ?? { id: 0 };
    const { status, body } = await call('GET', `/api/v1/sync/runs/${latest.id}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ id: latest.id, actions_truncated: false, finished_at: expect.any(String) });
    expect(body.actions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'create', email: 'ada@api.example', template: 'Standard', outcome: 'applied' }),
        expect.objectContaining({ type: 'skip', email: 'bo@elsewhere.example', why: 'unknown_domain' }),
      ]),
    );
  });

  it('answers 202 with the run id when asked not to wait, and the run finishes on its own', async () => {
    // A slow Keycloak: the answer must not wait for the listing.
    env.kc.injectFaults({ endpoint: 'users', delayMs: 1000 });
    const started = Date.now();
    const response = await app.request('/api/v1/sync/runs', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      body: JSON.stringify({ dry_run: true, wait: false }),
    });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(response.status).toBe(202);
    const body = (await response.json()) as { id: number; status: string };
    expect(body).toEqual({ id: expect.any(Number), status: 'running' });
    expect(response.headers.get('location')).toBe(`/api/v1/sync/runs/${body.id}`);

    let run = (await call('GET', `/api/v1/sync/runs/${body.id}`)).body;
    expect(run.status).toBe('running');
    for (let tries = 0; run.status === 'running' && tries < 100; tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      run = (await call('GET', `/api/v1/sync/runs/${body.id}`)).body;
    }
    expect(run).toMatchObject({ status: 'succeeded', dry_run: true, finished_at: expect.any(String) });
  });

  it('ends a run nobody waits for at shutdown, recorded as failed, before the pools close', async () => {
    const replica = await env.replica();
    const replicaApp = new Hono();
    replicaApp.onError((error, c) => renderError(error, c, replica.log));
    replicaApp.route('/api/v1/sync', createSyncRoutes(replica, { runOptions: { cronLogKey: env.cronLogKey } }));
    // Two pages, the second slow: shutdown arrives while the run waits for it.
    env.kc.setUsers(
      Array.from({ length: 150 }, (_, i) => ({
        username: `u${i}`,
        email: `u${i}@elsewhere.example`,
        emailVerified: true,
      })),
    );
    env.kc.injectFaults({ endpoint: 'users', delayMs: 0 }, { endpoint: 'users', delayMs: 1000 });
    try {
      const response = await replicaApp.request('/api/v1/sync/runs', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
        body: JSON.stringify({ dry_run: true, wait: false }),
      });
      expect(response.status).toBe(202);
      const { id } = (await response.json()) as { id: number };
      await replica.background.stop(10_000);
      const run = (await call('GET', `/api/v1/sync/runs/${id}`)).body;
      expect(run).toMatchObject({ status: 'failed', finished_at: expect.any(String) });
      expect(JSON.stringify(run.errors)).toContain('shutting down');
    } finally {
      env.kc.setUsers([
        {
          username: 'ada',
          email: 'ada@api.example',
          emailVerified: true,
          attributes: { mailcow_template: ['standard'] },
        },
        {
          username: 'bo',
          email: 'bo@elsewhere.example',
          emailVerified: true,
          attributes: { mailcow_template: ['standard'] },
        },
      ]);
    }
  });

  it('answers 409 at once, not 202, when no run can start', async () => {
    const lockKey = keys.syncLock({ prefix: env.config.redisPrefix });
    await env.deps.redis.set(lockKey, 'another-replica', 'PX', 10_000);
    try {
      expect((await call('POST', '/api/v1/sync/runs', { body: { wait: false } })).status).toBe(409);
    } finally {
      await env.deps.redis.del(lockKey);
    }
  });

  it.each([
    ['a non-boolean dry_run', { dry_run: 'yes' }, 'dry_run'],
    ['a non-boolean wait', { wait: 'no' }, 'wait'],
    ['an unknown field', { dryrun: true }, 'dryrun'],
    ['a body that is not JSON', '{oops', 'JSON'],
  ])('answers 400 for %s', async (_title, body, mention) => {
    const response = await call('POST', '/api/v1/sync/runs', { body });
    expect(response.status).toBe(400);
    expect(response.body.error.message).toContain(mention);
  });

  it.each([
    ['/api/v1/sync/runs?limit=0', 400],
    ['/api/v1/sync/runs?limit=x', 400],
    ['/api/v1/sync/runs/abc', 400],
    ['/api/v1/sync/runs/999999', 404],
  ])('answers GET %s with %i', async (path, expected) => {
    expect((await call('GET', path)).status).toBe(expected);
  });

  it('answers 409 while a sync holds the lock elsewhere', async () => {
    const lockKey = keys.syncLock({ prefix: env.config.redisPrefix });
    await env.deps.redis.set(lockKey, 'another-replica', 'PX', 10_000);
    try {
      const { status, body } = await call('POST', '/api/v1/sync/runs', { body: { dry_run: true } });
      expect(status).toBe(409);
      expect(body.error.message).toContain('already running');
    } finally {
      await env.deps.redis.del(lockKey);
    }
  });

  it('answers 409 when sync is not enabled in the IdP settings', async () => {
    await env.saveSettings({ periodic_sync: false, import_users: false });
    try {
      const { status, body } = await call('POST', '/api/v1/sync/runs', { body: {} });
      expect(status).toBe(409);
      expect(body.error.message).toContain('periodic_sync and import_users are both off');
    } finally {
      await env.saveSettings({ mappers: ['standard'], templates: ['Standard'] });
    }
  });

  it('is mounted in the web app under /api/v1/sync', async () => {
    const web = createWebApp(env.deps);
    const response = await web.request('/api/v1/sync/runs?limit=1', { headers: { 'x-api-key': API_KEY } });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { runs: unknown[] }).runs).toHaveLength(1);
  });
});
