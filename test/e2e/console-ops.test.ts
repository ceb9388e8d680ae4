// The console's operations pages (identity provider, templates and mapping, sync, bans, audit)
// over HTTP against real MariaDB and Redis and the Keycloak fake (test/support/fake-keycloak.ts,
// which follows Keycloak's code, cited there): forms post with the session's CSRF token, each
// page checks the role, every change lands in the audit log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSyncProgressWriter, readSyncProgress } from '../../src/admin/sync-progress.js';
import { readHourlyStats, statsServices } from '../../src/cache/login-stats.js';
import { KNOWN_SERVICES } from '../../src/login/services.js';
import { queryAudit, recordAudit, systemActor } from '../../src/storage/audit.js';
import { startSyncRun } from '../../src/storage/sync-runs.js';
import { findMailboxTemplateById } from '../../src/storage/templates.js';
import { startTestPostern, type TestPostern } from '../support/env.js';
import { type FakeKeycloak, startFakeKeycloak } from '../support/fake-keycloak.js';
import { seedAdminAccount, seedDomain, seedMailbox } from '../support/seed.js';

const ORIGIN = 'https://admin.example.org';
const ROOT_PASSWORD = 'console ops root passphrase';
const DESK_PASSWORD = 'console ops desk passphrase';
const CLIENT_SECRET = 'ops-client-secret-5e1d';
let postern: TestPostern;
let keycloak: FakeKeycloak;

function consoleClient(baseUrl: () => string) {
  const jar = new Map<string, string>();
  let csrf = '';
  async function request(method: string, path: string, form?: Record<string, string | string[]>, headers = {}) {
    const body = new URLSearchParams();
    for (const [key, value] of Object.entries(form ?? {})) {
      for (const one of Array.isArray(value) ? value : [value]) body.append(key, one);
    }
    const response = await fetch(`${baseUrl()}${path}`, {
      method,
      redirect: 'manual',
      headers: {
        origin: ORIGIN,
        ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...headers,
      },
      ...(form ? { body: body.toString() } : {}),
    });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';');
      const [name = '', value = ''] = pair.split('=');
      if (/max-age=0/i.test(cookie) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    return { status: response.status, location: response.headers.get('location'), text: await response.text() };
  }
  return {
    request,
    get: (path: string) => request('GET', path),
    /** A form post with the session's token. */
    post: (path: string, form: Record<string, string | string[]> = {}) => request('POST', path, { csrf, ...form }),
    async signIn(username: string, password: string) {
      const response = await request('POST', '/admin/login', { username, password });
      expect(response.location).toBe('/admin');
      const home = await request('GET', '/admin');
      csrf = /name="csrf" value="([^"]+)"/.exec(home.text)?.[1] ?? '';
      if (!csrf) throw new Error('no CSRF token on the console page');
      return home;
    },
  };
}

const root = consoleClient(() => postern.webUrl);
const desk = consoleClient(() => postern.webUrl);

function keycloakForm(overrides: Record<string, string> = {}) {
  return {
    authsource: 'keycloak',
    server_url: keycloak.url,
    realm: 'mail',
    version: '26.0.0',
    client_id: 'postern',
    client_secret: CLIENT_SECRET,
    redirect_url: 'https://mail.example.org/login/sso/callback',
    attribute_field: 'mailcow_template',
    postern_token_auth_method: 'client_secret_post',
    login_provisioning: '1',
    import_users: '1',
    periodic_sync: '1',
    sync_interval: '15',
    postern_max_drop_percent: '20',
    ...overrides,
  };
}

beforeAll(async () => {
  keycloak = await startFakeKeycloak({
    clients: [{ clientId: 'postern', secret: CLIENT_SECRET }],
    users: [
      { username: 'ada', email: 'ada@example.org', emailVerified: true, attributes: { mailcow_template: ['staff'] } },
      { username: 'bo', email: 'bo@example.org', emailVerified: true, attributes: { mailcow_template: ['guest'] } },
    ],
  });
  postern = await startTestPostern('console_ops', {
    POSTERN_PUBLIC_URL: ORIGIN,
    POSTERN_BCRYPT_COST: '4',
    POSTERN_SECRET_KEY: 'console-ops-secret-key-0123456789abcdefghij',
    POSTERN_IDP_TIMEOUT_MS: '3000',
    POSTERN_BAN_USER_THRESHOLD: '3',
    POSTERN_BAN_SECONDS: '900',
    POSTERN_BAN_EXEMPT_NETWORKS: '10.99.0.0/16',
  });
  // This file starts every sync run itself and checks the run list; the minute cron would add a
  // real run of its own once import_users is saved, at a time the test does not choose.
  await postern.schedule.stop();
  const { db } = postern.deps;
  await seedDomain(db, 'example.org');
  await seedAdminAccount(postern, { username: 'root', password: ROOT_PASSWORD, superadmin: true });
  await seedAdminAccount(postern, {
    username: 'desk',
    password: DESK_PASSWORD,
    superadmin: false,
    domains: ['example.org'],
  });
  await root.signIn('root', ROOT_PASSWORD);
  await desk.signIn('desk', DESK_PASSWORD);
});

afterAll(async () => {
  await postern?.destroy();
  await keycloak?.close();
});

describe('identity provider page', () => {
  it('is for superadmins only: a domain admin has no entry and gets 403', async () => {
    expect((await desk.get('/admin')).text).not.toContain('href="/admin/identity-provider"');
    const page = await desk.get('/admin/identity-provider');
    expect(page.status).toBe(403);
    expect((await desk.post('/admin/identity-provider', keycloakForm())).status).toBe(403);
  });

  it('shows an empty Keycloak form with every key before anything is configured', async () => {
    const page = await root.get('/admin/identity-provider');
    expect(page.status).toBe(200);
    expect(page.text).toContain('No identity provider is configured yet');
    for (const key of ['server_url', 'realm', 'version', 'client_id', 'client_secret', 'sync_interval']) {
      expect(page.text).toContain(`<label for="f-${key}">`);
    }
    const generic = await root.get('/admin/identity-provider?type=generic-oidc');
    for (const key of ['postern_issuer_url', 'authorize_url', 'token_url', 'userinfo_url', 'client_scopes']) {
      expect(generic.text).toContain(`<label for="f-${key}">`);
    }
  });

  it('tests unsaved settings step by step, with the sample user and the template its attribute maps to', async () => {
    const page = await root.post('/admin/identity-provider/test', {
      ...keycloakForm(),
      sample_user: 'ada@example.org',
    });
    expect(page.status).toBe(200);
    const steps = [...page.text.matchAll(/<li data-step="([a-z_]+)" data-ok="(true|false)">/g)].map((m) => [
      m[1],
      m[2],
    ]);
    expect(steps).toEqual([
      ['discovery', 'true'],
      ['jwks', 'true'],
      ['client_credentials', 'true'],
      ['admin_api', 'true'],
      ['sample_user', 'true'],
      ['attribute_mapping', 'false'],
    ]);
    expect(page.text).toContain('found user &quot;ada&quot;');
    expect(page.text).toContain('the user has mailcow_template = &quot;staff&quot;');
    expect(page.text).not.toContain(CLIENT_SECRET);
    // Nothing was saved by a test.
    expect((await root.get('/admin/identity-provider')).text).toContain('No identity provider is configured yet');
  });

  it('refuses invalid settings with the field named, never echoing the secret', async () => {
    const page = await root.post('/admin/identity-provider', keycloakForm({ server_url: 'ftp://nowhere' }));
    expect(page.status).toBe(400);
    expect(page.text).toContain('id="f-server_url-error"');
    expect(page.text).toContain('server_url: must be an http(s) URL');
    expect(page.text).not.toContain(CLIENT_SECRET);
  });

  it('saves the settings, keeps the secret write-only, and audits the change as the signed-in admin', async () => {
    const saved = await root.post('/admin/identity-provider', keycloakForm());
    expect(saved).toMatchObject({ status: 303, location: '/admin/identity-provider?saved=1' });
    const page = await root.get('/admin/identity-provider?saved=1');
    expect(page.text).toContain('The identity provider settings were saved.');
    expect(page.text).toContain('Client secret (one is stored)');
    expect(page.text).not.toContain(CLIENT_SECRET);
    expect(page.text).toMatch(/id="f-realm" name="realm" value="mail"/);
    // An empty secret field keeps the stored secret.
    const again = await root.post('/admin/identity-provider', keycloakForm({ client_secret: '', sync_interval: '30' }));
    expect(again.status).toBe(303);
    const rows = await postern.deps.db.many<{ key: string; value: string }>(
      "SELECT `key`, value FROM identity_provider WHERE `key` IN ('sync_interval', 'client_secret')",
    );
    expect(Object.fromEntries(rows.map((r) => [r.key, r.value])).sync_interval).toBe('30');
    const tested = await root.post('/admin/identity-provider/test', keycloakForm({ client_secret: '' }));
    expect(tested.text).toContain('data-step="client_credentials" data-ok="true"');
    const audit = await queryAudit(postern.deps.db, { action: 'identity_provider.update', limit: 10 });
    expect(audit.map((entry) => entry.actor)).toEqual(['root', 'root']);
    expect(JSON.stringify(audit)).not.toContain(CLIENT_SECRET);
  });
});

describe('templates and mapping page', () => {
  let staffId = '';

  it('creates and edits a template: quota, protocol flags, ACLs, state; audited', async () => {
    const created = await root.post('/admin/templates', { name: 'Staff' });
    expect(created.status).toBe(303);
    staffId = /\/admin\/templates\/(\d+)\?saved=1$/.exec(created.location ?? '')?.[1] ?? '';
    expect(staffId).not.toBe('');
    const edited = await root.post(`/admin/templates/${staffId}`, {
      name: 'Staff',
      quota_mib: '2048',
      active: '1',
      imap_access: '1',
      smtp_access: '1',
      acl_spam_alias: '1',
    });
    expect(edited).toMatchObject({ status: 303, location: `/admin/templates/${staffId}?saved=1` });
    const template = await findMailboxTemplateById(postern.deps.db, Number(staffId));
    expect(template?.attributes).toMatchObject({
      quota: 2048 * 1024 * 1024,
      active: 1,
      imap_access: 1,
      smtp_access: 1,
      pop3_access: 0,
      acl_spam_alias: 1,
    });
    const page = await root.get(`/admin/templates/${staffId}`);
    expect(page.text).toMatch(/id="f-imap_access" name="imap_access" value="1" checked/);
    expect(page.text).toMatch(/id="f-pop3_access" name="pop3_access" value="1"\/>/);
    const audit = await queryAudit(postern.deps.db, { action: 'template.', limit: 10 });
    expect(audit.map((entry) => [entry.action, entry.actor])).toEqual([
      ['template.update', 'root'],
      ['template.create', 'root'],
    ]);
  });

  it('shows a domain admin the templates read-only, without the mapping, and refuses its posts', async () => {
    const page = await desk.get('/admin/templates');
    expect(page.status).toBe(200);
    expect(page.text).toContain('>Staff</a>');
    expect(page.text).not.toContain('id="template-create"');
    expect(page.text).not.toContain('id="mapping"');
    expect((await desk.post('/admin/templates', { name: 'Mine' })).status).toBe(403);
    expect((await desk.post('/admin/templates/mapping', { op: 'add', value: 'x', template: 'Staff' })).status).toBe(
      403,
    );
    expect((await desk.get(`/admin/templates/${staffId}`)).text).toMatch(/<fieldset disabled/);
  });

  it('edits the ordered mapping: add, reorder, remove, default; saved in the IdP settings and audited', async () => {
    for (const [value, template] of [
      ['guest', 'Default'],
      ['staff', 'Staff'],
      ['alumni', 'Default'],
    ] as const) {
      expect((await root.post('/admin/templates/mapping', { op: 'add', value, template })).status).toBe(303);
    }
    const duplicate = await root.post('/admin/templates/mapping', { op: 'add', value: 'staff', template: 'Default' });
    expect(duplicate.status).toBe(409);
    expect(duplicate.text).toContain('is already mapped');
    expect((await root.post('/admin/templates/mapping', { op: 'up', index: '1' })).status).toBe(303);
    expect((await root.post('/admin/templates/mapping', { op: 'remove', index: '2' })).status).toBe(303);
    expect((await root.post('/admin/templates/mapping', { op: 'default', template: 'Default' })).status).toBe(303);
    const rows = await postern.deps.db.many<{ key: string; value: string }>(
      "SELECT `key`, value FROM identity_provider WHERE `key` IN ('mappers', 'templates', 'default_template')",
    );
    expect(Object.fromEntries(rows.map((r) => [r.key, r.value]))).toEqual({
      mappers: '["staff","guest"]',
      templates: '["Staff","Default"]',
      default_template: 'Default',
    });
    const page = await root.get('/admin/templates');
    expect(
      [...page.text.matchAll(/<tr data-row="\d+"><td>\d+<\/td><td><code>([^<]+)<\/code><\/td><td>([^<]+)</g)].map(
        (m) => [m[1], m[2]],
      ),
    ).toEqual([
      ['staff', 'Staff'],
      ['guest', 'Default'],
    ]);
    const audit = await queryAudit(postern.deps.db, { action: 'identity_provider.update', actor: 'root', limit: 20 });
    expect(audit.length).toBeGreaterThanOrEqual(6);
  });

  it('previews a typed value and a sample IdP user: which template applies and why', async () => {
    const typed = await root.get('/admin/templates?value=staff');
    expect(typed.text).toContain('<strong id="preview-template">Template: Staff</strong>');
    expect(typed.text).toContain('Row 1 (&quot;staff&quot;) matches');
    const unknown = await root.get('/admin/templates?value=visitor');
    expect(unknown.text).toContain('Template: Default');
    expect(unknown.text).toContain('an existing mailbox keeps the template it has');
    const sample = await root.get('/admin/templates?sample_user=ada%40example.org');
    expect(sample.text).toContain('IdP user &quot;ada&quot; has mailcow_template = [&quot;staff&quot;]');
    expect(sample.text).toContain('Template: Staff');
    const missing = await root.get('/admin/templates?sample_user=nobody%40example.org');
    expect(missing.text).toContain('No IdP user has the email nobody@example.org.');
  });

  it('counts the mailboxes the mapping would change with a sync dry run against the Keycloak fake', async () => {
    const page = await root.post('/admin/templates/dry-run');
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/This mapping would change 2 mailboxes \(\s*0 updated, 2 created\)/);
    const runId = /dry run #(\d+)/.exec(page.text)?.[1];
    const run = await postern.deps.db.one<{ dry_run: number }>('SELECT dry_run FROM postern_sync_runs WHERE id = ?', [
      Number(runId),
    ]);
    expect(run?.dry_run).toBe(1);
    const mailboxes = await postern.deps.db.one<{ n: number }>('SELECT COUNT(*) AS n FROM mailbox');
    expect(Number(mailboxes?.n)).toBe(0);
  });
});

describe('bans page', () => {
  async function banUser(username: string) {
    for (const password of ['wrong-1', 'wrong-2', 'wrong-3']) {
      await postern.deps.limiter.recordFailure({ ip: '203.0.113.9', username, password });
    }
  }

  it('lists current bans with reason and expiry and the thresholds in force; lifting one is audited', async () => {
    await banUser('mallory@example.org');
    const page = await root.get('/admin/bans');
    expect(page.status).toBe(200);
    expect(page.text).toContain('data-ban="user:mallory@example.org"');
    expect(page.text).toContain('3 distinct wrong passwords for this username within 600 s');
    expect(page.text).toMatch(/\(in 1[45] min\)/);
    expect(page.text).toContain('900 s (POSTERN_BAN_SECONDS)');
    // Every threshold in force, as configured.
    const thresholds = /<dl id="thresholds">(.*?)<\/dl>/s.exec(page.text)?.[1]?.replace(/<[^>]+>/g, '|') ?? '';
    expect(thresholds).toContain(
      `${postern.deps.config.banIpThreshold} distinct wrong passwords within 600 s (POSTERN_BAN_IP_THRESHOLD)`,
    );
    expect(thresholds).toContain('3 distinct wrong passwords within 600 s (POSTERN_BAN_USER_THRESHOLD)');
    expect(thresholds).toContain('10.99.0.0/16 (POSTERN_BAN_EXEMPT_NETWORKS)');
    const lifted = await root.post('/admin/bans/lift', { scope: 'user', subject: 'mallory@example.org' });
    expect(lifted).toMatchObject({ status: 303, location: '/admin/bans?lifted=mallory%40example.org' });
    expect((await postern.deps.limiter.listBans()).some((ban) => ban.subject === 'mallory@example.org')).toBe(false);
    const after = await root.get(lifted.location ?? '');
    expect(after.text).toContain('The ban on mallory@example.org was lifted.');
    expect(after.text).not.toContain('data-ban="user:mallory@example.org"');
    const audit = await queryAudit(postern.deps.db, { action: 'ban.lift', limit: 5 });
    expect(audit.map((entry) => [entry.actor, entry.target])).toEqual([['root', 'mallory@example.org']]);
    const again = await root.post('/admin/bans/lift', { scope: 'user', subject: 'mallory@example.org' });
    expect(again.status).toBe(404);
  });

  it('is not for domain admins', async () => {
    expect((await desk.get('/admin/bans')).status).toBe(403);
    expect((await desk.post('/admin/bans/lift', { scope: 'user', subject: 'x@example.org' })).status).toBe(403);
    expect((await desk.get('/admin')).text).not.toContain('href="/admin/bans"');
  });
});

describe('sync page', () => {
  async function finished(path: string) {
    for (let i = 0; i < 100; i++) {
      const page = await root.get(path);
      if (!page.text.includes('data-status="running"')) return page;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`${path} is still running`);
  }

  it('runs a dry run against the Keycloak fake and shows its actions with reasons, filterable', async () => {
    const started = await root.post('/admin/sync/run', { mode: 'dry' });
    expect(started.status).toBe(303);
    const runPath = started.location ?? '';
    expect(runPath).toMatch(/^\/admin\/sync\/runs\/\d+$/);
    const page = await finished(runPath);
    expect(page.text).toContain('dry run: nothing was changed');
    expect(page.text).toMatch(/<th scope="row">created<\/th><td class="num" data-count="created">2<\/td>/);
    const rows = [
      ...page.text.matchAll(
        /<tr data-action="([a-z]+)"><td>[a-z]+<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td>/g,
      ),
    ].map((m) => m.slice(1));
    expect(rows).toEqual([
      ['create', 'ada@example.org', '', 'Staff', 'planned'],
      ['create', 'bo@example.org', '', 'Default', 'planned'],
    ]);
    const filtered = await root.get(`${runPath}?type=create&q=ADA`);
    expect(filtered.text.match(/<tr data-action=/g)).toHaveLength(1);
    const none = await root.get(`${runPath}?outcome=failed`);
    expect(none.text).toContain('No actions match.');
    const runId = Number(runPath.split('/').at(-1));
    expect(
      await readSyncProgress({ redis: postern.deps.redis, redisPrefix: postern.deps.config.redisPrefix }, runId),
    ).toMatchObject({
      phase: 'finished',
      counts: { created: 2, users: 2 },
    });
    expect(await postern.deps.db.one<{ n: number }>('SELECT COUNT(*) AS n FROM mailbox')).toEqual({ n: 0 });
  });

  it('shows a running run with its live counts from Redis, a refresh link and the progress script', async () => {
    const runId = await startSyncRun(postern.deps.db, { source: 'keycloak', triggeredBy: 'root', dryRun: true });
    await createSyncProgressWriter(
      { redis: postern.deps.redis, log: postern.deps.log, redisPrefix: postern.deps.config.redisPrefix },
      runId,
    )('listing', { users: 300, pages: 3, created: 7 });
    try {
      const page = await root.get(`/admin/sync/runs/${runId}`);
      expect(page.text).toContain('data-status="running"');
      expect(page.text).toContain('data-count="users">300<');
      expect(page.text).toContain('data-count="created">7<');
      expect(page.text).toContain(`<a href="/admin/sync/runs/${runId}">Refresh</a>`);
      expect(page.text).toContain('<script src="/admin/sync/progress.js" defer');
      const progress = await root.get(`/admin/sync/runs/${runId}/progress`);
      expect(JSON.parse(progress.text)).toEqual({
        id: runId,
        status: 'running',
        counts: { users: 300, pages: 3, created: 7 },
      });
      const script = await root.get('/admin/sync/progress.js');
      expect(script.text).toContain('data-progress-url');
    } finally {
      await postern.deps.db.execute(
        "UPDATE postern_sync_runs SET status = 'failed', finished_at = NOW() WHERE id = ?",
        [runId],
      );
    }
  });

  it('lists the history with filters and saves the sync settings (audited)', async () => {
    const history = await root.get('/admin/sync?kind=dry');
    expect(history.text.match(/<tr data-run=/g)?.length).toBeGreaterThanOrEqual(2);
    expect((await root.get('/admin/sync?kind=real')).text).toContain('No runs match.');
    expect((await root.get('/admin/sync?status=partial')).text).toContain('No runs match.');
    const saved = await root.post('/admin/sync/settings', {
      import_users: '1',
      periodic_sync: '1',
      sync_interval: '45',
      postern_deprovision: '1',
      postern_max_drop_percent: '10',
    });
    expect(saved).toMatchObject({ status: 303, location: '/admin/sync?saved=1' });
    const rows = await postern.deps.db.many<{ key: string; value: string }>(
      "SELECT `key`, value FROM identity_provider WHERE `key` IN ('sync_interval', 'postern_deprovision', 'postern_max_drop_percent', 'mappers')",
    );
    expect(Object.fromEntries(rows.map((r) => [r.key, r.value]))).toEqual({
      sync_interval: '45',
      postern_deprovision: '1',
      postern_max_drop_percent: '10',
      mappers: '["staff","guest"]',
    });
    const invalid = await root.post('/admin/sync/settings', { sync_interval: '0', postern_max_drop_percent: '10' });
    expect(invalid.status).toBe(400);
    expect(invalid.text).toContain('sync_interval');
  });

  it('is not for domain admins', async () => {
    expect((await desk.get('/admin/sync')).status).toBe(403);
    expect((await desk.post('/admin/sync/run', { mode: 'dry' })).status).toBe(403);
    expect((await desk.get('/admin/sync/runs/1')).status).toBe(403);
  });
});

describe('audit page', () => {
  it('finds the console changes above by event, actor and outcome', async () => {
    const lifts = await root.get('/admin/audit?action=ban.lift');
    expect(lifts.status).toBe(200);
    expect(lifts.text.match(/<tr data-audit="ban.lift">/g)).toHaveLength(1);
    expect(lifts.text).toContain('<td>root</td><td>ban.lift</td><td>success</td><td>mallory@example.org</td>');
    const templates = await root.get('/admin/audit?action=template.&actor=root');
    expect(templates.text.match(/<tr data-audit="template\.[a-z]+">/g)).toHaveLength(2);
    expect((await root.get('/admin/audit?action=template.&outcome=failure')).text).toContain('No entries match.');
    const invalid = await root.get('/admin/audit?action=DROP%20TABLE');
    expect(invalid.status).toBe(400);
    expect(invalid.text).toContain('action: must be an event such as ban.lift');
  });

  it('filters by target, client IP and time range (UTC)', async () => {
    const cli = systemActor('cli');
    await recordAudit(postern.deps.db, { actor: cli, action: 'test.ip', target: 'ip-one', ip: '203.0.113.9' });
    await recordAudit(postern.deps.db, { actor: cli, action: 'test.ip', target: 'ip-two', ip: '203.0.113.10' });
    const targets = (text: string) => [...text.matchAll(/<tr data-audit="test\.ip">.*?<\/tr>/gs)].length;
    const byIp = await root.get('/admin/audit?action=test.ip&ip=203.0.113.9');
    expect(byIp.status).toBe(200);
    expect(targets(byIp.text)).toBe(1);
    expect(byIp.text).toContain('ip-one');
    expect(byIp.text).not.toContain('ip-two');
    expect(targets((await root.get('/admin/audit?action=test.ip&target=ip-two')).text)).toBe(1);
    const now = new Date();
    const minute = (offset: number) => new Date(now.getTime() + offset * 60_000).toISOString().slice(0, 16);
    expect(targets((await root.get(`/admin/audit?action=test.ip&since=${minute(-5)}&until=${minute(5)}`)).text)).toBe(
      2,
    );
    expect((await root.get(`/admin/audit?action=test.ip&until=${minute(-5)}`)).text).toContain('No entries match.');
    expect((await root.get(`/admin/audit?action=test.ip&since=${minute(5)}`)).text).toContain('No entries match.');
    const bad = await root.get('/admin/audit?since=yesterday');
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('must be a date and time');
  });

  it('pages with an "older entries" link that keeps the filter', async () => {
    for (let i = 0; i < 55; i++)
      await recordAudit(postern.deps.db, { actor: systemActor('cli'), action: 'test.page', target: `t${i}` });
    const first = await root.get('/admin/audit?action=test.page');
    expect(first.text.match(/<tr data-audit="test.page">/g)).toHaveLength(50);
    const older = /<a href="([^"]+)" id="audit-older">/.exec(first.text)?.[1]?.replace(/&amp;/g, '&') ?? '';
    expect(older).toMatch(/^\/admin\/audit\?action=test\.page&before=\d+$/);
    const second = await root.get(older);
    expect(second.text.match(/<tr data-audit="test.page">/g)).toHaveLength(5);
    expect(second.text).not.toContain('id="audit-older"');
  });

  it('exports the same filter as CSV and as JSON lines', async () => {
    const csv = await root.get('/admin/audit/export?format=csv&action=template.');
    expect(csv.status).toBe(200);
    const lines = csv.text.trimEnd().split('\r\n');
    expect(lines[0]).toBe('id,at,actor,actor_kind,actor_role,action,outcome,target,domain,ip,detail,before,after');
    expect(lines.slice(1).map((line) => line.split(',')[5])).toEqual(['template.update', 'template.create']);
    const jsonl = await root.get('/admin/audit/export?format=jsonl&action=test.page');
    const entries = jsonl.text
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(entries).toHaveLength(55);
    expect(entries[0]).toMatchObject({
      actor: 'cli',
      actor_kind: 'system',
      action: 'test.page',
      target: 't54',
      outcome: 'success',
    });
  });

  it('shows a domain admin only entries about its domains, in the page and the export', async () => {
    await recordAudit(postern.deps.db, { actor: systemActor('cli'), action: 'test.scope', target: 'one@example.org' });
    await recordAudit(postern.deps.db, {
      actor: systemActor('cli'),
      action: 'test.scope',
      target: 'two@other.example',
    });
    const page = await desk.get('/admin/audit?action=test.scope');
    expect(page.status).toBe(200);
    expect(page.text).toContain('one@example.org');
    expect(page.text).not.toContain('two@other.example');
    const exported = await desk.get('/admin/audit/export?format=jsonl&action=test.scope');
    expect(
      exported.text
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line).target),
    ).toEqual(['one@example.org']);
    expect((await root.get('/admin/audit?action=test.scope')).text).toContain('two@other.example');
  });
});

describe('dashboard', () => {
  it('charts logins per service from sasl_log and shows bans, the last sync run and health to a superadmin', async () => {
    const { db } = postern.deps;
    for (const [service, username, ip, hoursAgo] of [
      ['imap', 'one@example.org', '192.0.2.1', 1],
      ['imap', 'two@example.org', '192.0.2.2', 3],
      ['smtp', 'one@example.org', '192.0.2.1', 30],
      ['imap', 'x@other.example', '192.0.2.9', 2],
    ] as const) {
      await db.execute(
        'REPLACE INTO sasl_log (service, app_password, username, real_rip, datetime) VALUES (?, 0, ?, ?, NOW() - INTERVAL ? HOUR)',
        [service, username, ip, hoursAgo],
      );
    }
    const page = await root.get('/admin');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<figure id="logins-24h">');
    expect(page.text).toMatch(/aria-label="Last 24 hours, by hour: 3 logins"/);
    expect(page.text).toMatch(/aria-label="Last 7 days, by day: 4 logins"/);
    expect(page.text.match(/<rect /g)?.length).toBeGreaterThanOrEqual(4);
    for (const name of ['MySQL', 'Redis', 'Identity provider']) {
      expect(page.text).toMatch(new RegExp(`<dt>${name}</dt><dd data-health="ok">`));
    }
    expect(page.text).toContain('discovery answers');
    expect(page.text).toMatch(/<p id="dash-bans">\d+ \(/);
    expect(page.text).toMatch(/<p id="dash-last-run"><a href="\/admin\/sync\/runs\/\d+">/);
  });

  it('charts wrong-password logins through the passdb per service and the ban they lead to', async () => {
    const total = (text: string, title: string, noun: string) =>
      Number(new RegExp(`aria-label="${title}: (\\d+) ${noun}"`).exec(text)?.[1]);
    const { db, hashPool } = postern.deps;
    await seedMailbox(db, {
      username: 'target@example.org',
      passwordHash: await hashPool.hash('right pw', 'BLF-CRYPT'),
    });
    // Counts from earlier tests still in the writer's one-second batch must land before the baseline.
    await postern.deps.loginStats.flush();
    const before = (await root.get('/admin')).text;
    for (const password of ['wrong-a', 'wrong-b', 'wrong-c']) {
      const answer = await postern.passdb({
        username: 'target@example.org',
        password,
        real_rip: '198.51.100.7',
        service: 'imap',
      });
      expect(answer.body.result).toBe('password_mismatch');
    }
    // The third distinct wrong password banned the user (threshold 3): refused, and counted too.
    const banned = await postern.passdb({
      username: 'target@example.org',
      password: 'wrong-d',
      real_rip: '198.51.100.7',
      service: 'pop3',
    });
    expect(banned.body.result).toBe('password_mismatch');
    expect((await postern.deps.limiter.listBans()).some((ban) => ban.subject === 'target@example.org')).toBe(true);
    await postern.deps.loginStats.flush();

    const page = (await root.get('/admin')).text;
    expect(page).toContain('<figure id="refused-24h">');
    for (const title of ['Refused, last 24 hours, by hour', 'Refused, last 7 days, by day']) {
      expect(total(page, title, 'refused logins') - total(before, title, 'refused logins')).toBe(4);
    }
    for (const title of ['Bans placed, last 24 hours, by hour', 'Bans placed, last 7 days, by day']) {
      expect(total(page, title, 'bans') - total(before, title, 'bans')).toBe(1);
    }
    // Read back from the shared counters in Redis, not this process's memory.
    const stats = await readHourlyStats(
      postern.deps.redis,
      postern.deps.config.redisPrefix,
      statsServices(KNOWN_SERVICES),
      1,
    );
    expect(stats.failures.imap?.[0]).toBeGreaterThanOrEqual(3);
    expect(stats.failures.pop3?.[0]).toBeGreaterThanOrEqual(1);
    expect(stats.bans[0]).toBeGreaterThanOrEqual(1);
  });

  it('shows a domain admin only its domains’ logins, without bans, sync or health', async () => {
    const page = await desk.get('/admin');
    // Refusal counts are every domain's: superadmins only.
    expect(page.text).not.toContain('id="refused-24h"');
    expect(page.text).not.toContain('id="bans-24h"');
    expect(page.text).toMatch(/aria-label="Last 24 hours, by hour: 2 logins"/);
    expect(page.text).toMatch(/aria-label="Last 7 days, by day: 3 logins"/);
    expect(page.text).not.toContain('id="health"');
    expect(page.text).not.toContain('id="dash-bans"');
  });
});
