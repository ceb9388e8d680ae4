import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './load.js';

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('works with no environment at all, using development defaults', () => {
    const config = loadConfig({});
    expect(config.dbUrl).toBe('mysql://root@127.0.0.1:3306/postern');
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(config.internalListen).toEqual({ host: '127.0.0.1', port: 9082 });
    expect(config.webListen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(config.internalToken).toBeUndefined();
    expect(config.allowPlaintextHashes).toBe(false);
    expect(config.hashThreads).toBeGreaterThan(0);
  });

  it('reports every problem at once, each with its variable name', () => {
    const problems = problemsOf({
      POSTERN_DB_URL: 'postgres://x',
      POSTERN_INTERNAL_LISTEN: 'nowhere',
      POSTERN_BCRYPT_COST: '99',
      POSTERN_LOG_LEVEL: 'loud',
    });
    expect(problems).toHaveLength(4);
    expect(problems.join('\n')).toMatch(/POSTERN_DB_URL: expected a mysql URL/);
    expect(problems.join('\n')).toMatch(/POSTERN_INTERNAL_LISTEN: expected host:port/);
    expect(problems.join('\n')).toMatch(/POSTERN_BCRYPT_COST/);
    expect(problems.join('\n')).toMatch(/POSTERN_LOG_LEVEL/);
  });

  it('never echoes the value of a secret variable in a problem', () => {
    const problems = problemsOf({ POSTERN_INTERNAL_TOKEN: 'short-secret' });
    expect(problems).toEqual([expect.stringMatching(/^POSTERN_INTERNAL_TOKEN: /)]);
    expect(problems[0]).not.toContain('short-secret');
  });

  it('refuses a session cap shorter than the idle lifetime', () => {
    expect(problemsOf({ POSTERN_SESSION_TTL_SECONDS: '7200', POSTERN_SESSION_MAX_SECONDS: '3600' })).toEqual([
      'POSTERN_SESSION_MAX_SECONDS: must be at least POSTERN_SESSION_TTL_SECONDS (7200) (got 3600)',
    ]);
    expect(loadConfig({ POSTERN_SESSION_TTL_SECONDS: '3600' })).toMatchObject({
      sessionTtlSeconds: 3600,
      sessionMaxSeconds: 86_400,
    });
  });

  it('rejects unknown POSTERN_ variables so typos do not fall back to defaults', () => {
    expect(problemsOf({ POSTERN_DB_ULR: 'mysql://x' })).toEqual([
      expect.stringMatching(/^POSTERN_DB_ULR: unknown variable/),
    ]);
  });

  it('accepts the variables meant for the Lua script', () => {
    expect(() =>
      loadConfig({ POSTERN_AUTH_URL: 'http://127.0.0.1:9082/', POSTERN_AUTH_TIMEOUT_MS: '5000' }),
    ).not.toThrow();
  });

  it('reads secrets from *_FILE without the trailing newline', () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-config-'));
    const file = join(dir, 'token');
    writeFileSync(file, 'a-long-enough-internal-token\n');
    expect(loadConfig({ POSTERN_INTERNAL_TOKEN_FILE: file }).internalToken).toBe('a-long-enough-internal-token');
  });

  it('refuses a secret given both directly and as a file', () => {
    expect(
      problemsOf({ POSTERN_INTERNAL_TOKEN: 'a-long-enough-internal-token', POSTERN_INTERNAL_TOKEN_FILE: '/x' }),
    ).toEqual([expect.stringMatching(/either POSTERN_INTERNAL_TOKEN or POSTERN_INTERNAL_TOKEN_FILE/)]);
  });

  it('names an unreadable secrets file', () => {
    expect(problemsOf({ POSTERN_INTERNAL_TOKEN_FILE: '/nonexistent/token' })).toEqual([
      'POSTERN_INTERNAL_TOKEN_FILE: cannot read /nonexistent/token (ENOENT)',
    ]);
  });

  it('reads network lists, turning bare addresses into /32 or /128 networks', () => {
    const config = loadConfig({ POSTERN_SOGO_NETWORKS: '172.22.1.248, fd4d:6169:6c63:6f77::/64,::1' });
    expect(config.sogoNetworks).toEqual(['172.22.1.248/32', 'fd4d:6169:6c63:6f77::/64', '::1/128']);
    expect(loadConfig({}).banExemptNetworks).toEqual(['127.0.0.0/8', '::1/128']);
  });

  it.each(['10.0.0.0/33', 'fd00::/129', '300.1.1.1', 'mail.example.org', '10.0.0.0/8/1'])(
    'refuses the network %j, naming it',
    (entry) => {
      expect(problemsOf({ POSTERN_BAN_EXEMPT_NETWORKS: `127.0.0.0/8,${entry}` })).toEqual([
        expect.stringMatching(
          new RegExp(
            `^POSTERN_BAN_EXEMPT_NETWORKS: "${entry.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}" is not an IP address or CIDR network`,
          ),
        ),
      ]);
    },
  );

  it.each<Record<string, string>>([
    { POSTERN_INTERNAL_TLS_LISTEN: '0.0.0.0:9443' },
    {
      POSTERN_INTERNAL_TLS_CERT_FILE: '/etc/ssl/mail/cert.pem',
      POSTERN_INTERNAL_TLS_KEY_FILE: '/etc/ssl/mail/key.pem',
    },
    { POSTERN_INTERNAL_TLS_LISTEN: '0.0.0.0:9443', POSTERN_INTERNAL_TLS_CERT_FILE: '/etc/ssl/mail/cert.pem' },
  ])('refuses an internal TLS listener without its certificate and key, or those without it: %o', (env) => {
    expect(problemsOf(env)).toEqual([expect.stringMatching(/POSTERN_INTERNAL_TLS_LISTEN.*set all three or none/)]);
  });

  it('takes an internal TLS listener with its certificate and key files', () => {
    const config = loadConfig({
      POSTERN_INTERNAL_TLS_LISTEN: '0.0.0.0:9443',
      POSTERN_INTERNAL_TLS_CERT_FILE: '/etc/ssl/mail/cert.pem',
      POSTERN_INTERNAL_TLS_KEY_FILE: '/etc/ssl/mail/key.pem',
    });
    expect(config.internalTlsListen).toEqual({ host: '0.0.0.0', port: 9443 });
    expect(config.internalTlsCertFile).toBe('/etc/ssl/mail/cert.pem');
  });

  it('trusts the loopback proxy by default, named proxies when listed, and none when told so', () => {
    expect(loadConfig({}).trustedProxies).toEqual(['127.0.0.0/8', '::1/128']);
    expect(loadConfig({ POSTERN_TRUSTED_PROXIES: '172.22.1.0/24' }).trustedProxies).toEqual(['172.22.1.0/24']);
    expect(loadConfig({ POSTERN_TRUSTED_PROXIES: 'none' }).trustedProxies).toEqual([]);
    expect(problemsOf({ POSTERN_TRUSTED_PROXIES: 'nginx' })).toEqual([
      expect.stringMatching(/^POSTERN_TRUSTED_PROXIES: "nginx" is not an IP address or CIDR network/),
    ]);
  });

  it('parses IPv6 listen addresses', () => {
    expect(loadConfig({ POSTERN_INTERNAL_LISTEN: '[::1]:9090' }).internalListen).toEqual({ host: '::1', port: 9090 });
  });
});
