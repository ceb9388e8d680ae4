// compose.yaml, checked without running it: dclint validates it against the compose JSON schema
// and its rules, and the structure keeps the promises of the README: every file it mounts or
// builds from exists and is the one the suite runs, every secret is defined and made by
// scripts/compose-secrets.sh, secrets come as *_FILE, the internal listener is on an internal
// network only and never published, start order follows health checks, data lives in volumes.
// test/compose-stack.test.ts runs the containers.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { POSTERN_PASSDB_LUA } from './support/dovecot.js';
import { internalAuthInclude, POSTERN_SOGO_NGINX_CONF } from './support/nginx.js';

interface Service {
  build?: { context: string; dockerfile: string };
  image?: string;
  depends_on?: Record<string, { condition: string }>;
  environment?: Record<string, string>;
  secrets?: string[];
  volumes?: string[];
  ports?: string[];
  networks?: string[] | Record<string, { ipv4_address?: string } | null>;
  network_mode?: string;
  healthcheck?: { test: string[] };
  profiles?: string[];
}
interface Compose {
  services: Record<string, Service>;
  networks: Record<string, { internal?: boolean; ipam?: { config: { subnet: string }[] } }>;
  volumes: Record<string, unknown>;
  secrets: Record<string, { file: string }>;
}

const compose = parse(readFileSync('compose.yaml', 'utf8')) as Compose;
const services = Object.entries(compose.services);
const INTERNAL_PORT = 9082;

/** The image's own default POSTERN_INTERNAL_LISTEN port (compose does not override it). */
function internalPortOfImage(): number {
  const match = readFileSync('Dockerfile', 'utf8').match(/POSTERN_INTERNAL_LISTEN=0\.0\.0\.0:(\d+)/);
  return Number(match?.[1]);
}

describe('compose.yaml', () => {
  it('passes dclint (compose JSON schema and rules) with no error and no warning', async () => {
    const result = await new Promise<{ code: number; out: string }>((done) =>
      execFile('node_modules/.bin/dclint', ['--max-warnings', '0', 'compose.yaml'], (error, stdout, stderr) =>
        done({ code: error ? Number(error.code ?? 1) : 0, out: stdout + stderr }),
      ),
    );
    expect(result.out).not.toMatch(/error|warning/);
    expect(result.code).toBe(0);
  });

  it('has the services of the stack, keycloak and the second replica behind their profiles', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      ['dovecot', 'keycloak', 'mariadb', 'memcached', 'nginx', 'postern', 'postern-2', 'redis', 'sogo'].sort(),
    );
    expect(compose.services.keycloak?.profiles).toEqual(['keycloak']);
    expect(compose.services['postern-2']?.profiles).toEqual(['replicas']);
    for (const [name, service] of services) {
      if (name !== 'keycloak' && name !== 'postern-2') expect(service.profiles, name).toBeUndefined();
    }
  });

  it('runs the second replica as postern runs: same image, database, Redis, secrets, on the backend network only', () => {
    const postern = compose.services.postern as Service;
    const second = compose.services['postern-2'] as Service;
    expect(second.build).toEqual(postern.build);
    expect(second.environment).toEqual(postern.environment);
    expect(second.secrets).toEqual(postern.secrets);
    expect(second.depends_on).toEqual(postern.depends_on);
    expect(second.ports).toBeUndefined();
    expect(Object.keys(second.networks ?? {})).toEqual(['backend']);
  });

  it('mounts and builds only files that exist: the very ones the suite runs', () => {
    for (const [name, service] of services) {
      for (const volume of service.volumes ?? []) {
        const [source] = volume.split(':');
        if (!source?.startsWith('./')) {
          expect(compose.volumes, `${name}: named volume ${source}`).toHaveProperty(source ?? '');
          continue;
        }
        if (source.startsWith('./secrets/')) continue; // made by scripts/compose-secrets.sh (next test)
        expect(existsSync(source), `${name} mounts ${source}`).toBe(true);
      }
      if (service.build) {
        expect(service.build.context).toBe('.');
        expect(existsSync(service.build.dockerfile), `${name} builds ${service.build.dockerfile}`).toBe(true);
        expect(service.image, `${name}: build or image, not both`).toBeUndefined();
      }
    }
    const mounted = (service: string) =>
      (compose.services[service]?.volumes ?? []).map((v) => resolve(v.split(':')[0] ?? ''));
    expect(mounted('nginx')).toContain(POSTERN_SOGO_NGINX_CONF);
    expect(compose.services.postern?.build?.dockerfile).toBe('Dockerfile');
    expect(compose.services.dovecot?.build?.dockerfile).toBe('deploy/dovecot/Dockerfile');
    // The Dovecot image is made of the Lua and the configuration the Dovecot tests run.
    const dovecotfile = readFileSync('deploy/dovecot/Dockerfile', 'utf8');
    const copied = [...dovecotfile.matchAll(/^COPY (\S+) /gm)].map((m) => resolve(m[1] ?? ''));
    expect(copied).toContain(POSTERN_PASSDB_LUA);
    expect(copied).toContain(resolve('deploy/dovecot/conf.d/auth-postern.conf.ext'));
    for (const file of copied) expect(existsSync(file), file).toBe(true);
  });

  it('defines every secret a service names, and scripts/compose-secrets.sh makes every secret file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-compose-secrets-'));
    try {
      const made = spawnSync('bash', ['scripts/compose-secrets.sh', join(dir, 'secrets')], { encoding: 'utf8' });
      expect(made.status, made.stderr).toBe(0);
      for (const [name, secret] of Object.entries(compose.secrets)) {
        expect(secret.file, name).toMatch(/^\.\/secrets\//);
        expect(existsSync(join(dir, secret.file)), `${name}: ${secret.file}`).toBe(true);
      }
      for (const [name, service] of services) {
        for (const secret of service.secrets ?? [])
          expect(compose.secrets, `${name}: ${secret}`).toHaveProperty(secret);
        for (const volume of service.volumes ?? []) {
          const source = volume.split(':')[0] ?? '';
          if (source.startsWith('./secrets/')) expect(existsSync(join(dir, source)), `${name}: ${source}`).toBe(true);
        }
      }
      // nginx's include carries the very token postern and Dovecot get, in the line the suite's nginx runs.
      const token = readFileSync(join(dir, 'secrets/postern_internal_token'), 'utf8');
      expect(readFileSync(join(dir, 'secrets/nginx_postern_auth.conf'), 'utf8')).toBe(internalAuthInclude(token));
      expect(compose.services.nginx?.volumes).toContain(
        './secrets/nginx_postern_auth.conf:/etc/nginx/postern-internal-auth.conf:ro',
      );
      expect(readFileSync(POSTERN_SOGO_NGINX_CONF, 'utf8')).toMatch(
        /^\s*include \/etc\/nginx\/postern-internal-auth\.conf;$/m,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('passes secrets as files: every *_FILE names a secret of its service, no secret value is inline', () => {
    for (const [name, service] of services) {
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        if (key.endsWith('_FILE')) {
          const secret = value.replace(/^\/run\/secrets\//, '');
          expect(value, `${name}: ${key}`).toMatch(/^\/run\/secrets\//);
          expect(service.secrets ?? [], `${name}: ${key}`).toContain(secret);
        } else {
          expect(key, `${name}: ${key} should be ${key}_FILE`).not.toMatch(/PASSWORD|TOKEN|SECRET|_KEY$|DB_URL/);
        }
      }
    }
  });

  it('keeps the internal listener on the internal network and never publishes it', () => {
    expect(internalPortOfImage()).toBe(INTERNAL_PORT);
    const postern = compose.services.postern as Service;
    expect(postern.environment?.POSTERN_INTERNAL_LISTEN).toBeUndefined();
    // Services sharing postern's network namespace publish through postern; none may publish 9082.
    for (const [name, service] of services) {
      for (const port of service.ports ?? []) {
        const container = Number(port.split(':').at(-1)?.split('/')[0]);
        if (name === 'postern' || service.network_mode === 'service:postern')
          expect(container, name).not.toBe(INTERNAL_PORT);
      }
      if (service.network_mode === 'service:postern') expect(service.ports, name).toBeUndefined();
    }
    expect(compose.networks.backend?.internal).toBe(true);
    // Dovecot reaches the internal listener on the backend network, by IP (its HTTP client does no DNS).
    // Both replicas, postern first (the Lua's order of preference).
    const addresses = ['postern', 'postern-2'].map((name) => {
      const networks = compose.services[name]?.networks as Record<string, { ipv4_address?: string } | null>;
      const address = networks.backend?.ipv4_address;
      expect(address, name).toMatch(/^172\.30\.82\.\d+$/);
      return address;
    });
    expect(compose.services.dovecot?.environment?.POSTERN_AUTH_URL).toBe(
      addresses.map((address) => `http://${address}:${INTERNAL_PORT}/`).join(','),
    );
    expect(Object.keys(compose.services.dovecot?.networks ?? {})).toContain('backend');
    // MariaDB and Redis only on the backend network, never published.
    for (const name of ['mariadb', 'redis']) {
      expect(compose.services[name]?.networks, name).toEqual(['backend']);
      expect(compose.services[name]?.ports, name).toBeUndefined();
    }
  });

  it('starts each service after the health checks of what it needs', () => {
    expect(compose.services.postern?.depends_on).toEqual({
      mariadb: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
    });
    expect(compose.services.dovecot?.depends_on?.postern).toEqual({ condition: 'service_healthy' });
    expect(compose.services.nginx?.depends_on?.postern).toEqual({ condition: 'service_healthy' });
    for (const [name, service] of services) {
      for (const [needed, { condition }] of Object.entries(service.depends_on ?? {})) {
        const other = compose.services[needed];
        const hasHealthcheck =
          other?.healthcheck !== undefined ||
          (other?.build !== undefined && /^HEALTHCHECK /m.test(readFileSync(other.build.dockerfile, 'utf8')));
        expect(condition, `${name} → ${needed}`).toBe(hasHealthcheck ? 'service_healthy' : 'service_started');
      }
    }
  });

  it('keeps the data that must survive in named volumes', () => {
    const mountsOf = (name: string) => compose.services[name]?.volumes ?? [];
    expect(mountsOf('mariadb')).toContain('mariadb_data:/var/lib/mysql');
    expect(mountsOf('redis')).toContain('redis_data:/data');
    expect(mountsOf('dovecot')).toContain('vmail:/var/vmail');
  });
});
