// One onError per app: route areas of pages (pageArea) answer errors with an HTML page, the APIs
// mounted beside them keep the JSON envelope, and faults never show their detail.
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { AppError } from '../errors.js';
import { createLogger } from '../log.js';
import { pageArea, renderAppError } from './render-error.js';

const log = createLogger('silent');

function appWithAreas() {
  const pages = new Hono();
  pages.get('/page/refused', () => {
    throw new AppError('forbidden', 'not for you');
  });
  pages.get('/page/fault', () => {
    throw new Error('database password in a stack trace');
  });
  const custom = new Hono();
  custom.get('/custom', () => {
    throw new AppError('not_found', 'nothing here');
  });
  const api = new Hono();
  api.get('/api/refused', () => {
    throw new AppError('forbidden', 'not for you');
  });
  const app = new Hono();
  app.onError((error, c) => renderAppError(error, c, log));
  app.notFound(() => {
    throw new AppError('not_found', 'no such page');
  });
  // Pages first, as in web-app.ts: their marks must not reach the API mounted after them.
  app.route('/', pageArea(pages));
  app.route(
    '/',
    pageArea(custom, (c, error) => c.text(`custom ${error.code}`, error.status as 404)),
  );
  app.route('/', api);
  return app;
}

describe('renderAppError', () => {
  const app = appWithAreas();

  it('renders a refusal on a page as an uncached HTML page with its message', async () => {
    const response = await app.request('/page/refused');
    expect(response.status).toBe(403);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = await response.text();
    expect(body).toContain('Request refused');
    expect(body).toContain('not for you');
  });

  it('renders a fault on a page without its detail', async () => {
    const response = await app.request('/page/fault');
    expect(response.status).toBe(500);
    const body = await response.text();
    expect(body).toContain('Temporarily unavailable');
    expect(body).not.toContain('database password');
  });

  it("uses an area's own error page", async () => {
    const response = await app.request('/custom');
    expect(response.status).toBe(404);
    expect(await response.text()).toBe('custom not_found');
  });

  it('keeps the JSON envelope for APIs and for unknown paths', async () => {
    const refused = await app.request('/api/refused');
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ success: false, error: { code: 'forbidden', message: 'not for you' } });
    const unknown = await app.request('/nowhere');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ success: false, error: { code: 'not_found' } });
  });
});
