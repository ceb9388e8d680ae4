// The operator docs and monitoring files are part of the product: the alert rules and the Grafana
// dashboard may query only series postern exports, the metrics table lists every series of
// src/metrics.ts, and every text the troubleshooting table quotes is one the code really prints.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createMetrics } from '../src/metrics.js';
import { SHIPPED_LOGIN_RATE_CONF, startDovecot } from './support/dovecot.js';
import { startStubPassdbServer } from './support/stub-passdb-server.js';

const root = new URL('..', import.meta.url).pathname;
const read = (path: string) => readFileSync(join(root, path), 'utf8');

/** Every series name a scrape of postern can show: the registry's, histograms with their suffixes. */
async function exportedSeries(): Promise<Set<string>> {
  const metrics = createMetrics({ hashQueueDepth: () => 0, hashThreads: 1 });
  const names = new Set<string>();
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram') {
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
    }
  }
  return names;
}

/** Series Prometheus itself records for every scrape target (not exported by postern). */
const PROMETHEUS_SERIES = new Set(['up']);

const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression selects. Label matchers, grouping lists, ranges, strings,
 * numbers, Grafana's $variables and function names are removed first; what is left is selectors.
 */
function seriesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ')
    .replace(/\b\d+(\.\d+)?(e[+-]?\d+)?\b/gi, ' ');
  const names: string[] = [];
  for (const match of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?/g)) {
    const [token, call] = [match[0].replace(/\s*\($/, ''), match[1]];
    if (call || PROMQL_WORDS.has(token.toLowerCase())) continue;
    names.push(token);
  }
  return names;
}

function expectBalanced(expr: string): void {
  for (const [open, close] of ['()', '{}', '[]']) {
    let depth = 0;
    for (const char of expr) {
      if (char === open) depth += 1;
      if (char === close) depth -= 1;
      expect(depth, `unbalanced ${open}${close} in ${expr}`).toBeGreaterThanOrEqual(0);
    }
    expect(depth, `unbalanced ${open}${close} in ${expr}`).toBe(0);
  }
}

describe('seriesIn (the PromQL name extraction the checks below rely on)', () => {
  it.each([
    ['up{job="postern"} == 0', ['up']],
    [
      'histogram_quantile(0.99, sum by (instance, le) (rate(postern_auth_duration_seconds_bucket{result="ok"}[5m]))) > 1',
      ['postern_auth_duration_seconds_bucket'],
    ],
    [
      'postern_hash_pool_queue_depth > 4 * postern_hash_pool_threads',
      ['postern_hash_pool_queue_depth', 'postern_hash_pool_threads'],
    ],
    [
      'rate(postern_process_cpu_seconds_total{instance=~"$instance"}[$__rate_interval])',
      ['postern_process_cpu_seconds_total'],
    ],
    ['postern_process_resident_memory_bytes > 1.5e9', ['postern_process_resident_memory_bytes']],
    ['label_values(postern_process_start_time_seconds, instance)', ['postern_process_start_time_seconds', 'instance']],
  ])('finds the series of %s', (expr, expected) => {
    expect(seriesIn(expr)).toEqual(expected);
  });
});

describe('deploy/prometheus/alerts.yml', () => {
  const file = parse(read('deploy/prometheus/alerts.yml')) as {
    groups: { name: string; rules: Record<string, unknown>[] }[];
  };
  const rules = file.groups.flatMap((group) => group.rules);

  it('is a rules file of named groups whose alerts have an expression, a severity and a summary', () => {
    expect(file.groups.length).toBeGreaterThan(0);
    expect(rules.length).toBeGreaterThanOrEqual(6);
    const names = rules.map((rule) => rule.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const rule of rules) {
      expect(rule.alert).toMatch(/^Postern[A-Z][A-Za-z]+$/);
      expect(typeof rule.expr).toBe('string');
      expectBalanced(rule.expr as string);
      if (rule.for !== undefined) expect(rule.for).toMatch(/^\d+[smh]$/);
      expect(['critical', 'warning', 'info']).toContain((rule.labels as Record<string, string>).severity);
      expect((rule.annotations as Record<string, string>).summary).toBeTruthy();
    }
  });

  it('queries only series postern exports (and Prometheus’s own up)', async () => {
    const exported = await exportedSeries();
    for (const rule of rules) {
      const used = seriesIn(rule.expr as string);
      expect(used.length, `${rule.alert} selects no series`).toBeGreaterThan(0);
      for (const name of used) {
        expect(exported.has(name) || PROMETHEUS_SERIES.has(name), `${rule.alert}: ${name}`).toBe(true);
      }
    }
  });

  it('alerts on temporary failures: the internal_failure result postern records', async () => {
    const failures = rules.find((rule) => rule.alert === 'PosternTemporaryFailures');
    expect(failures?.expr).toContain('result="internal_failure"');
    expect(read('src/http/routes/dovecot.ts')).toContain("outcome: { result: 'internal_failure' }");
  });
});

describe('deploy/grafana/postern-dashboard.json', () => {
  const dashboard = JSON.parse(read('deploy/grafana/postern-dashboard.json')) as {
    title: string;
    uid: string;
    panels: { id: number; title: string; targets: { expr: string; refId: string }[] }[];
    templating: { list: { name: string; query?: string | { query: string } }[] };
  };

  it('is a dashboard with panels, each with at least one query', () => {
    expect(dashboard.title).toBe('postern');
    expect(dashboard.uid).toBe('postern');
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(8);
    expect(new Set(dashboard.panels.map((panel) => panel.id)).size).toBe(dashboard.panels.length);
    for (const panel of dashboard.panels) {
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets) expectBalanced(target.expr);
    }
  });

  it('queries only series postern exports, in every panel and variable', async () => {
    const exported = await exportedSeries();
    const exprs = dashboard.panels.flatMap((panel) => panel.targets.map((target) => [panel.title, target.expr]));
    for (const variable of dashboard.templating.list) {
      const query = typeof variable.query === 'object' ? variable.query.query : undefined;
      // label_values(metric, label): the second argument is a label name, not a series.
      if (query) exprs.push([`$${variable.name}`, query.replace(/,\s*\w+\)$/, ')')]);
    }
    for (const [where, expr = ''] of exprs) {
      const used = seriesIn(expr);
      expect(used.length, `${where} selects no series`).toBeGreaterThan(0);
      for (const name of used) expect(exported.has(name), `${where}: ${name}`).toBe(true);
    }
  });
});

describe('docs/operations.md', () => {
  const doc = read('docs/operations.md');
  const metricsSection = doc.split('## Metrics')[1] ?? '';

  it('lists every series src/metrics.ts defines, and names only series postern exports', async () => {
    const own = [...read('src/metrics.ts').matchAll(/name: '(postern_[a-z_]+)'/g)].map((match) => match[1]);
    expect(own.length).toBeGreaterThanOrEqual(7);
    for (const name of own) expect(metricsSection).toContain(`\`${name}\``);
    const exported = await exportedSeries();
    const named = [...metricsSection.matchAll(/`(postern_[a-z_0-9]+)`/g)].map((match) => match[1] ?? '');
    for (const name of named) expect(exported.has(name), name).toBe(true);
  });

  it('names every alert of the rules file', () => {
    const file = parse(read('deploy/prometheus/alerts.yml')) as { groups: { rules: { alert: string }[] }[] };
    for (const rule of file.groups.flatMap((group) => group.rules)) expect(metricsSection).toContain(rule.alert);
  });
});

function filesUnder(dir: string, pattern: RegExp): string[] {
  return readdirSync(join(root, dir)).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(join(root, path)).isDirectory()) return filesUnder(path, pattern);
    return pattern.test(entry) ? [path] : [];
  });
}

/**
 * Texts the code builds from parts, and where each part is. (The outage log writes
 * `${backend} unavailable` and friends; db.ts names the backend.)
 */
/** The outage log's template literal, as written in its source: `${backend} <rest>`. */
const outageText = (rest: string) => ['`', '$', `{backend} ${rest}`, '`'].join('');

const BUILT_TEXTS: Record<string, { file: string; contains: string[] }[]> = {
  'MySQL unavailable': [
    { file: 'src/storage/outage-log.ts', contains: [outageText('unavailable')] },
    { file: 'src/storage/db.ts', contains: ["backend: 'MySQL'"] },
  ],
  'MySQL still unavailable': [
    { file: 'src/storage/outage-log.ts', contains: [outageText('still unavailable')] },
    { file: 'src/storage/db.ts', contains: ["backend: 'MySQL'"] },
  ],
  'MySQL available again': [
    { file: 'src/storage/outage-log.ts', contains: [outageText('available again')] },
    { file: 'src/storage/db.ts', contains: ["backend: 'MySQL'"] },
  ],
};

describe('docs/troubleshooting.md', () => {
  const doc = read('docs/troubleshooting.md');
  // Where real texts live: postern's code, our Lua, mailcow's Lua as shipped (a fixture), the
  // shipped alert rules, and the end-to-end tests' assertions on what real Dovecot answers
  // (regex escapes removed).
  const corpus = [
    ...filesUnder('src', /\.tsx?$/).filter((path) => !/\.test\.tsx?$/.test(path)),
    ...filesUnder('lua', /\.lua$/),
    'test/fixtures/mailcow/passwd-verify.lua',
    'deploy/prometheus/alerts.yml',
    ...filesUnder('test/e2e', /\.test\.ts$/),
  ]
    .map((path) => read(path).replace(/\\(.)/g, '$1'))
    .join('\n');
  const symptoms = doc
    .split('\n')
    .filter((line) => line.startsWith('| ') && !line.startsWith('| Symptom') && !line.startsWith('|---'))
    .map((line) => line.slice(2).split(' | ')[0] ?? '');

  it('has a table row per symptom in each part', () => {
    expect(symptoms.length).toBeGreaterThanOrEqual(30);
    for (const heading of ['## Mail logins', '## Web sign-in', '## Start-up, upgrades, shutdown']) {
      expect(doc).toContain(heading);
    }
  });

  it('quotes only texts that postern, the Lua passdbs or real Dovecot print', () => {
    const quoted = symptoms.flatMap((cell) => [
      ...[...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1] ?? ''),
      ...[...cell.matchAll(/"([^"]+)"/g)].map((match) => match[1] ?? ''),
    ]);
    expect(quoted.length).toBeGreaterThanOrEqual(30);
    for (const text of quoted) {
      const built = BUILT_TEXTS[text];
      if (built) {
        for (const part of built) for (const piece of part.contains) expect(read(part.file)).toContain(piece);
        continue;
      }
      // "…" stands for a value the code fills in: each side must be there.
      for (const piece of text.split('…').map((part) => part.trim())) {
        if (piece) expect(corpus.includes(piece), `"${piece}" is printed nowhere`).toBe(true);
      }
    }
  });
});

/** `doveconf -n` of a config: the settings that differ from Dovecot's defaults, and its warnings. */
function doveconf(configPath: string): { settings: string; stderr: string } {
  const result = spawnSync('doveconf', ['-n', '-c', configPath], { encoding: 'utf8' });
  if (result.error || result.status !== 0) throw new Error(`doveconf failed: ${result.stderr || result.error}`);
  return { settings: result.stdout, stderr: result.stderr };
}

const serviceBlock = (settings: string, name: string) =>
  settings.match(new RegExp(`^service ${name} \\{\\n([\\s\\S]*?)^\\}`, 'm'))?.[1] ?? '';

describe('deploy/dovecot/conf.d/99-postern-login-rate.conf (the shipped process reuse)', () => {
  const path = 'deploy/dovecot/conf.d/99-postern-login-rate.conf';
  const text = read(path);

  it("is accepted by Debian's Dovecot 2.3 without a warning and reuses login and imap processes", () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-login-rate-'));
    try {
      const config = join(dir, 'dovecot.conf');
      writeFileSync(config, `protocols = imap\nssl = no\n!include ${join(root, path)}\n`);
      const { settings, stderr } = doveconf(config);
      expect(stderr).toBe('');
      expect(serviceBlock(settings, 'imap-login')).toMatch(/^\s*service_count = 0$/m);
      expect(serviceBlock(settings, 'imap')).toMatch(/^\s*service_count = 0$/m);
      expect(serviceBlock(settings, 'imap')).toMatch(/^\s*process_min_avail = 2$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says why, the one-uid caveat and the Dovecot 2.4 names in its comments', () => {
    expect(text).toMatch(/fork/);
    expect(text).toMatch(/one system uid/);
    expect(text).toMatch(/restart_request_count = unlimited/);
  });

  it("is in the Dovecot image (deploy/dovecot/Dockerfile) where Debian's dovecot.conf includes it", () => {
    expect(read('deploy/dovecot/Dockerfile')).toContain(`COPY ${path} /etc/dovecot/conf.d/99-postern-login-rate.conf`);
  });

  it('is what every test Dovecot runs, unless a test asks for per-login processes', async () => {
    expect(SHIPPED_LOGIN_RATE_CONF).toBe(join(root, path));
    const stub = await startStubPassdbServer();
    const shipped = await startDovecot({ authUrl: stub.url, submission: false });
    const perLogin = await startDovecot({ authUrl: stub.url, submission: false, loginProcesses: 'per-login' });
    try {
      expect(serviceBlock(doveconf(shipped.configPath).settings, 'imap')).toMatch(/^\s*service_count = 0$/m);
      expect(serviceBlock(doveconf(perLogin.configPath).settings, 'imap')).not.toMatch(/service_count/);
    } finally {
      await shipped.stop();
      await perLogin.stop();
      await stub.close();
    }
  });
});
