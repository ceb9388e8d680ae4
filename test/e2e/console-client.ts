// A minimal browser for the console tests: a cookie jar, our Origin, forms and JSON, no redirects
// followed. Shared by the console test files; the Chromium test drives a real browser instead.
import { expect } from 'vitest';
import type { TestPostern } from '../support/env.js';

export interface Reply {
  status: number;
  location: string | null;
  text: string;
  json: () => Record<string, unknown>;
}

export function consoleClient(postern: () => TestPostern, origin: string) {
  const jar = new Map<string, string>();
  let csrf = '';
  async function request(
    method: string,
    path: string,
    body?: { form?: Record<string, string>; json?: unknown },
    headers: Record<string, string> = {},
  ): Promise<Reply> {
    const response = await fetch(`${postern().webUrl}${path}`, {
      method,
      redirect: 'manual',
      headers: {
        origin,
        ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(body?.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...(body?.json !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body?.form ? { body: new URLSearchParams(body.form).toString() } : {}),
      ...(body?.json !== undefined ? { body: JSON.stringify(body.json) } : {}),
    });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';');
      const [name = '', value = ''] = pair.split('=');
      if (/max-age=0/i.test(cookie) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    const text = await response.text();
    return {
      status: response.status,
      location: response.headers.get('location'),
      text,
      json: () => JSON.parse(text) as Record<string, unknown>,
    };
  }
  return {
    request,
    get csrf() {
      return csrf;
    },
    /** Password sign-in (no TOTP enrolled); returns the dashboard. */
    async signIn(username: string, password: string) {
      const response = await request('POST', '/admin/login', { form: { username, password } });
      expect(response.location).toBe('/admin');
      const home = await request('GET', '/admin');
      csrf = /name="csrf" value="([^"]+)"/.exec(home.text)?.[1] ?? '';
      if (!csrf) throw new Error('no CSRF token on the console page');
      return home;
    },
    /** A console form post with the session's token. */
    post(path: string, form: Record<string, string> = {}) {
      return request('POST', path, { form: { csrf, ...form } });
    },
    /** The JSON API with the session cookie and X-CSRF-Token. */
    api(method: string, path: string, json?: unknown) {
      return request(method, `/api/v1${path}`, json === undefined ? undefined : { json }, { 'x-csrf-token': csrf });
    },
  };
}
