// Admin accounts end to end, as an operator meets them, over HTTP against real MariaDB and Redis:
// the first superadmin made by the real CLI (`postern admin create root --superadmin`, password on
// stdin, as `docker compose exec` runs it), its sign-in at /admin/login with the password, TOTP
// enrolment (codes computed with otpauth, as an authenticator app does), sign-out and sign-in
// again with password and TOTP; a domain admin of other.example made by it over the API, with an
// API key of that role. That domain admin, signed in and by key, is then sent through EVERY admin
// API route (test/support/admin-routes.ts, the list test/admin-matrix.test.ts checks against the
// web app's own routes) for example.org's objects: 404 worded like a missing object, 403 for the
// superadmin's routes, and lists holding only its own domain. Every step is then read back from
// GET /api/v1/audit with its actor, client address and outcome.
import { spawn } from 'node:child_process';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebApp } from '../../src/http/web-app.js';
import {
  adminRouteMatrix,
  type MatrixCall,
  observedStatus,
  seedMatrixObjects,
  servedAdminRoutes,
} from '../support/admin-routes.js';
import { startTestPostern, type TestPostern } from '../support/env.js';

const ORIGIN = 'https://admin.example.org';
const ROOT_PASSWORD = 'done-when root passphrase 1';
const DESK_PASSWORD = 'done-when helpdesk passphrase 2';
const ROOT_IP = '192.0.2.10';
const DESK_IP = '192.0.2.20';
const KEY_IP = '192.0.2.30';
let postern: TestPostern;
let templateId = 0;
const matrix = () => adminRouteMatrix({ templateId, db: () => postern.deps.db });

/** The real command line, in a process of its own: `postern <args>` with `stdin` piped in. */
function runPostern(args: string[], env: Record<string, string>, stdin: string) {
  return new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    });
    child.stdin.end(stdin);
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** A browser at one client address (through the trusted proxy header): cookie jar, our Origin. */
function browser(ip: string) {
  const jar = new Map<string, string>();
  let csrf = '';
  async function request(method: string, path: string, body?: { form?: Record<string, string>; json?: unknown }) {
    const response = await fetch(`${postern.webUrl}${path}`, {
      method,
      redirect: 'manual',
      headers: {
        origin: ORIGIN,
        'x-forwarded-for': ip,
        ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(body?.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...(body?.json !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(csrf && path.startsWith('/api/') ? { 'x-csrf-token': csrf } : {}),
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
    return { status: response.status, location: response.headers.get('location'), text: await response.text() };
  }
  const tokenOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
  return {
    jar,
    request,
    tokenOf,
    signIn: (username: string, password: string) => request('POST', '/admin/login', { form: { username, password } }),
    /** Reads the session's form token from the console, for API changes and sign-out. */
    async openConsole() {
      const home = await request('GET', '/admin');
      expect(home.status).toBe(200);
      csrf = tokenOf(home.text);
      expect(csrf).not.toBe('');
    },
    api: ((method, path, body) =>
      request(method, `/api/v1${path}`, body === undefined ? undefined : { json: body })) as MatrixCall,
  };
}

/** An API key's calls, from its allowed address. */
function keyCaller(key: string, ip: string): MatrixCall {
  return async (method, path, body) => {
    const response = await fetch(`${postern.webUrl}/api/v1${path}`, {
      method,
      headers: {
        'x-api-key': key,
        'x-forwarded-for': ip,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: response.status, text: await response.text() };
  };
}

/** What an authenticator app shows for this key at `at` (RFC 6238: SHA-1, 6 digits, 30 s). */
function codeAt(secret: string, at: number): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({
    timestamp: at,
  });
}

beforeAll(async () => {
  // No POSTERN_API_KEY: the CLI is the only way in, as on a fresh install.
  postern = await startTestPostern('admin_done_when', {
    POSTERN_PUBLIC_URL: ORIGIN,
    POSTERN_COOKIE_SECURE: 'true',
    POSTERN_TRUSTED_PROXIES: '127.0.0.1/32',
    POSTERN_BCRYPT_COST: '4',
    POSTERN_ADMIN_WEBMAIL: 'on',
  });
  await seedMatrixObjects(postern.deps.db);
  const template = await postern.deps.db.one<{ id: number }>(
    "SELECT id FROM templates WHERE template = 'Default' AND type = 'mailbox'",
  );
  templateId = Number(template?.id);
}, 60_000);

afterAll(async () => {
  await postern?.destroy();
});

const root = () => rootBrowser;
let rootBrowser: ReturnType<typeof browser>;
let desk: ReturnType<typeof browser>;
let deskKey = '';
let deskKeyId = 0;
let totpSecret = '';

describe('issue "done when": a CLI-made admin, TOTP, a domain admin fenced into its domain, all audited', () => {
  it('creates the first superadmin with the real CLI, the password from stdin', async () => {
    const run = await runPostern(
      ['admin', 'create', 'root', '--superadmin'],
      {
        POSTERN_DB_URL: postern.deps.config.dbUrl,
        POSTERN_REDIS_URL: postern.deps.config.redisUrl,
        POSTERN_BCRYPT_COST: '4',
        POSTERN_LOG_LEVEL: 'silent',
      },
      `${ROOT_PASSWORD}\n`,
    );
    expect(run.output).toContain('created superadmin root');
    expect(run.output).not.toContain(ROOT_PASSWORD);
    expect(run.code).toBe(0);
  });

  it('signs root in with its password, enrols TOTP, signs out, and in again with password and TOTP', async () => {
    const first = browser(ROOT_IP);
    expect((await first.signIn('root', ROOT_PASSWORD)).location).toBe('/admin');
    await first.openConsole();
    const enrolPage = await first.request('GET', '/admin/tfa/enrol');
    totpSecret = /id="totp-secret">([A-Z2-7]+)</.exec(enrolPage.text)?.[1] ?? '';
    expect(totpSecret).toMatch(/^[A-Z2-7]{32}$/);
    // Confirmed with the previous step's code (allowed drift), so the current one stays unused.
    const confirmed = await first.request('POST', '/admin/tfa/enrol', {
      form: { csrf: first.tokenOf(enrolPage.text), code: codeAt(totpSecret, Date.now() - 30_000), name: 'phone' },
    });
    expect(confirmed.status).toBe(200);
    expect(confirmed.text).toMatch(/<span class="secret">[0-9A-Z-]{19}<\/span>/);
    const out = await first.request('POST', '/admin/logout', { form: { csrf: first.tokenOf(enrolPage.text) } });
    expect(out.location).toBe('/admin/login');
    expect((await first.request('GET', '/admin')).location).toBe('/admin/login');

    rootBrowser = browser(ROOT_IP);
    expect((await root().signIn('root', ROOT_PASSWORD)).location).toBe('/admin/login/second-factor');
    // The password alone opens nothing.
    expect((await root().api('GET', '/admins')).status).toBe(401);
    const factorPage = await root().request('GET', '/admin/login/second-factor');
    const csrf = root().tokenOf(factorPage.text);
    const wrong = codeAt(totpSecret, Date.now() + 300_000);
    expect((await root().request('POST', '/admin/login/second-factor', { form: { csrf, code: wrong } })).status).toBe(
      401,
    );
    const done = await root().request('POST', '/admin/login/second-factor', {
      form: { csrf, code: codeAt(totpSecret, Date.now()) },
    });
    expect(done.location).toBe('/admin');
    await root().openConsole();
    expect((await root().api('GET', '/admins')).status).toBe(200);
  });

  it('lets root create a domain admin of other.example and an API key with that role', async () => {
    const created = await root().api('POST', '/admins', {
      username: 'helpdesk',
      password: DESK_PASSWORD,
      domains: ['other.example'],
    });
    expect(created.status).toBe(201);
    expect(JSON.parse(created.text)).toMatchObject({
      username: 'helpdesk',
      role: 'domainadmin',
      domains: ['other.example'],
    });
    const key = await root().api('POST', '/api-keys', {
      name: 'helpdesk script',
      role: 'domainadmin',
      domains: ['other.example'],
      access: 'rw',
      allow_from: [KEY_IP],
    });
    expect(key.status).toBe(201);
    const body = JSON.parse(key.text) as { key: string; id: number };
    deskKey = body.key;
    deskKeyId = body.id;
    expect(deskKey).toMatch(/^postern_/);

    desk = browser(DESK_IP);
    expect((await desk.signIn('helpdesk', DESK_PASSWORD)).location).toBe('/admin');
    await desk.openConsole();
    // Inside its domain it may work (so the refusals below are the fence, not a broken account).
    expect((await desk.api('PATCH', '/mailboxes/bob@other.example', { name: 'Bob by desk' })).status).toBe(200);
    expect((await keyCaller(deskKey, KEY_IP)('PATCH', '/mailboxes/bob@other.example', { name: 'Bob' })).status).toBe(
      200,
    );
  });

  it('covers every admin API route the web app serves', () => {
    expect(servedAdminRoutes(createWebApp(postern.deps)).sort()).toEqual(
      matrix()
        .map((entry) => entry.route)
        .sort(),
    );
  });

  /** Each route for example.org's objects: what another domain's admin gets (the matrix's column). */
  async function fenced(caller: MatrixCall) {
    const got: Record<string, unknown> = {};
    const expected: Record<string, unknown> = {};
    for (const entry of matrix()) {
      expected[entry.route] = entry.expect.otherDesk;
      got[entry.route] = await observedStatus(entry, entry.expect.otherDesk, caller, root().api);
    }
    return { got, expected };
  }

  it.each([
    ['its own session', () => desk.api],
    ['its API key', () => keyCaller(deskKey, KEY_IP)],
  ])('refuses the domain admin (%s) everything outside its domain, on every route', async (_name, callerOf) => {
    const { got, expected } = await fenced(callerOf());
    expect(got).toEqual(expected);
    // The routes it may use at all show only its own domain.
    const json = async (path: string) => JSON.parse((await callerOf()('GET', path)).text) as Record<string, unknown>;
    const mailboxes = (await json('/mailboxes')).mailboxes as { username: string }[];
    expect(mailboxes.map((m) => m.username)).toEqual(['bob@other.example']);
    expect(((await json('/domains')).domains as { domain: string }[]).map((d) => d.domain)).toEqual(['other.example']);
    expect((await json('/alias-domains')).alias_domains).toEqual([]);
    expect((await json('/mailboxes?domain=example.org')).mailboxes).toEqual([]);
    const entries = (await json('/audit?limit=500')).entries as { domain: string | null; action: string }[];
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.every((entry) => entry.domain === 'other.example')).toBe(true);
  });

  it('audits each of those refusals as admin.refused (method, path, status), for the session and the key', async () => {
    await postern.deps.auditWriter.flush();
    const reply = await root().api('GET', '/audit?limit=500');
    expect(reply.status).toBe(200);
    const refused = (
      JSON.parse(reply.text) as {
        entries: {
          actor: string;
          actor_kind: string;
          action: string;
          outcome: string;
          ip: string | null;
          domain: string | null;
          detail: { method: string; path: string; status: number };
        }[];
      }
    ).entries.filter((entry) => entry.action === 'admin.refused');
    expect(refused.every((entry) => entry.outcome === 'failure')).toBe(true);
    const refusalsOf = (actor: string) =>
      refused
        .filter((row) => row.actor === actor)
        .map(({ detail }) => `${detail.method} ${detail.path} ${detail.status}`)
        .sort();
    // Every route whose fenced answer is a 403 or a 404 left one row, with the status it got.
    const expected = matrix()
      .filter(
        (entry) =>
          entry.expect.otherDesk === 'hidden' || entry.expect.otherDesk === 403 || entry.expect.otherDesk === 404,
      )
      .map((entry) => {
        const status = entry.expect.otherDesk === 'hidden' ? 404 : entry.expect.otherDesk;
        return `${entry.route.split(' ')[0]} /api/v1${entry.path.split('?')[0]} ${status}`;
      })
      .sort();
    expect(expected.length).toBeGreaterThan(10);
    expect(refusalsOf('helpdesk')).toEqual(expected);
    expect(refusalsOf(`api-key:${deskKeyId}`)).toEqual(expected);
    expect(refused.every((row) => row.domain === null)).toBe(true);
    expect(new Set(refused.map((row) => `${row.actor_kind} ${row.ip}`))).toEqual(
      new Set([`admin ${DESK_IP}`, `api_key ${KEY_IP}`]),
    );
  });

  it('finds every one of those steps in GET /api/v1/audit, with actor, client address and outcome', async () => {
    const reply = await root().api('GET', '/audit?limit=500');
    expect(reply.status).toBe(200);
    const { entries } = JSON.parse(reply.text) as {
      entries: {
        actor: string;
        actor_kind: string;
        actor_role: string | null;
        action: string;
        outcome: string;
        target: string | null;
        ip: string | null;
        detail: Record<string, unknown> | null;
      }[];
    };
    const keyActor = `api-key:${deskKeyId}`;
    const steps = entries
      .filter(
        (entry) => ['cli', 'root', 'helpdesk', keyActor].includes(entry.actor) && entry.action !== 'admin.refused',
      )
      .reverse()
      .map((entry) => ({
        actor: entry.actor,
        kind: entry.actor_kind,
        role: entry.actor_role,
        action: entry.action,
        outcome: entry.outcome,
        target: entry.target,
        ip: entry.ip,
        ...(entry.detail && 'second_factor' in entry.detail ? { second_factor: entry.detail.second_factor } : {}),
      }));
    const asRoot = { actor: 'root', kind: 'admin', role: 'superadmin', ip: ROOT_IP, target: 'root' };
    expect(steps).toEqual([
      // The CLI has no client address: it acts as `cli`, a system actor.
      {
        actor: 'cli',
        kind: 'system',
        role: null,
        action: 'admin.create',
        outcome: 'success',
        target: 'root',
        ip: null,
      },
      { ...asRoot, action: 'admin.login', outcome: 'success', second_factor: 'none' },
      { ...asRoot, action: 'tfa.enrol', outcome: 'success' },
      { ...asRoot, action: 'admin.logout', outcome: 'success' },
      { ...asRoot, action: 'admin.first_factor', outcome: 'success' },
      { ...asRoot, action: 'admin.login.failed', outcome: 'failure' },
      { ...asRoot, action: 'admin.login', outcome: 'success', second_factor: 'totp' },
      { ...asRoot, action: 'admin.create', outcome: 'success', target: 'helpdesk' },
      { ...asRoot, action: 'api_key.create', outcome: 'success', target: keyActor },
      {
        actor: 'helpdesk',
        kind: 'admin',
        role: 'domainadmin',
        action: 'admin.login',
        outcome: 'success',
        target: 'helpdesk',
        ip: DESK_IP,
        second_factor: 'none',
      },
      {
        actor: 'helpdesk',
        kind: 'admin',
        role: 'domainadmin',
        action: 'mailbox.update',
        outcome: 'success',
        target: 'bob@other.example',
        ip: DESK_IP,
      },
      {
        actor: keyActor,
        kind: 'api_key',
        role: 'domainadmin',
        action: 'mailbox.update',
        outcome: 'success',
        target: 'bob@other.example',
        ip: KEY_IP,
      },
    ]);
    // The audit API's own filters find them too.
    const failures = JSON.parse((await root().api('GET', `/audit?actor=root&outcome=failure&ip=${ROOT_IP}`)).text) as {
      entries: { action: string }[];
    };
    expect(failures.entries.map((entry) => entry.action)).toEqual(['admin.login.failed']);
    // Never a password, the TOTP key or the API key.
    const table = JSON.stringify(await postern.deps.db.many('SELECT * FROM postern_audit'));
    for (const secret of [ROOT_PASSWORD, DESK_PASSWORD, totpSecret, deskKey]) expect(table).not.toContain(secret);
  });
});
