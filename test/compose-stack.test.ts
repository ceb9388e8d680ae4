// compose.yaml's core run for real with plain podman: MariaDB, Redis, postern and Dovecot, each
// started as compose.yaml itself says (parsed here, so the tested config is the shipped one):
// its image (built from the Dockerfile compose names, only the base-image argument changed), its
// environment, its secrets as files under /run/secrets/, its named volumes, its networks with the
// service name as alias and its fixed address, its health check, its restart policy and grace
// period, started in depends_on order once the services it waits for are healthy. Then a domain
// and a mailbox are made through postern's admin API inside the stack and a user logs in over IMAP
// (STARTTLS, with the certificate from scripts/compose-secrets.sh) on Dovecot's published port.
// What differs from `docker compose up`, and why, is in README "The compose stack".
// scripts/test.sh runs this file once, in its machine-Node pass.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildImage, containerBase, podman, type Run, runLogged, waitFor } from './support/containers.js';
import { freePort } from './support/processes.js';

interface Service {
  build?: { context: string; dockerfile: string };
  image?: string;
  command?: string[];
  depends_on?: Record<string, { condition: 'service_healthy' | 'service_started' }>;
  environment?: Record<string, string>;
  secrets?: string[];
  volumes?: string[];
  ports?: string[];
  networks?: string[] | Record<string, { ipv4_address?: string } | null>;
  healthcheck?: { test: string[]; interval?: string; timeout?: string; retries?: number; start_period?: string };
  restart?: string;
  stop_grace_period?: string;
}
interface Compose {
  services: Record<string, Service>;
  networks: Record<string, { internal?: boolean; ipam?: { config: { subnet: string }[] } } | null>;
  volumes: Record<string, unknown>;
  secrets: Record<string, { file: string }>;
}

const compose = parse(readFileSync('compose.yaml', 'utf8')) as Compose;
/** The services run here; README "The compose stack" says why the others are not. */
const RUN = ['mariadb', 'redis', 'postern', 'dovecot'];
/**
 * Local stand-ins for the official images compose pulls (no registry is reachable here): Debian
 * 12's packages behind the part of the official entrypoints compose.yaml uses (see their files).
 */
const STAND_INS: Record<string, string> = {
  'mariadb:11.4': 'test/fixtures/containers/mariadb',
  'redis:7.4': 'test/fixtures/containers/redis',
};
// Podman 4.3's default CNI backend has no DNS on an `internal: true` network (the dnsname plugin
// refuses them); netavark with aardvark-dns resolves service names there, as compose's networks do.
const NETAVARK = ['--network-backend', 'netavark'];
const stack = (args: string[], timeoutMs = 60_000) => podman(args, timeoutMs, NETAVARK);

const project = `pst${randomBytes(3).toString('hex')}`;
const work = mkdtempSync(join(tmpdir(), 'postern-compose-'));
const secretsDir = join(work, 'secrets');
const containerOf = (service: string) => `${project}-${service}-1`;
const created = { containers: [] as string[], networks: [] as string[], volumes: [] as string[] };
const published = new Map<string, number>(); // "service:containerPort" -> host port on 127.0.0.1

function service(name: string): Service {
  const found = compose.services[name];
  if (!found) throw new Error(`compose.yaml has no service ${name}`);
  return found;
}

function networksOf(spec: Service): [string, { ipv4_address?: string }][] {
  if (Array.isArray(spec.networks)) return spec.networks.map((name) => [name, {}]);
  return Object.entries(spec.networks ?? {}).map(([name, options]) => [name, options ?? {}]);
}

/** The base image for a Dockerfile of compose: the local one matching its argument's default. */
async function localBaseFor(dockerfile: string): Promise<string> {
  const text = readFileSync(dockerfile, 'utf8');
  const from = /^FROM\s+\$\{?(\w+)\}?/m.exec(text)?.[1];
  const fallback = new RegExp(`^ARG\\s+${from}=(\\S+)`, 'm').exec(text)?.[1] ?? '';
  if (/^node:[\d.]+-trixie-slim$/.test(fallback)) return containerBase();
  const debian = /^debian:(\w+)-slim$/.exec(fallback);
  if (debian?.[1]) return containerBase('debian', debian[1]);
  throw new Error(`${dockerfile}: no local base for its default ${from}=${fallback}`);
}

async function imageFor(name: string): Promise<string> {
  const spec = service(name);
  const tag = `localhost/postern-compose-${name}:suite`;
  if (spec.build) {
    const dockerfile = join(spec.build.context, spec.build.dockerfile);
    await buildImage({ dockerfile, context: spec.build.context, tag, baseImage: await localBaseFor(dockerfile) });
    return tag;
  }
  const standIn = STAND_INS[spec.image ?? ''];
  if (!standIn) throw new Error(`no local stand-in for ${name}'s image ${spec.image}`);
  await buildImage({
    dockerfile: join(standIn, 'Containerfile'),
    context: standIn,
    tag,
    baseImage: await containerBase('debian', 'bookworm'),
  });
  return tag;
}

/** `podman run` arguments for a compose service, derived from compose.yaml only. */
async function runArguments(name: string, image: string): Promise<string[]> {
  const spec = service(name);
  const args = ['run', '--detach', '--name', containerOf(name)];
  for (const [network, options] of networksOf(spec)) {
    const ip = options.ipv4_address ? `,ip=${options.ipv4_address}` : '';
    args.push('--network', `${project}_${network}:alias=${name}${ip}`);
  }
  for (const secret of spec.secrets ?? []) {
    const file = compose.secrets[secret]?.file;
    if (!file?.startsWith('./secrets/')) throw new Error(`secret ${secret}: not a file under ./secrets/`);
    args.push('--volume', `${join(secretsDir, file.slice('./secrets/'.length))}:/run/secrets/${secret}:ro`);
  }
  for (const volume of spec.volumes ?? []) {
    const [source = '', ...rest] = volume.split(':');
    const named = !source.startsWith('.') && !source.startsWith('/');
    args.push('--volume', [named ? `${project}_${source}` : resolve(source), ...rest].join(':'));
  }
  for (const [key, value] of Object.entries(spec.environment ?? {})) args.push('--env', `${key}=${value}`);
  for (const port of spec.ports ?? []) {
    // "0.0.0.0:143:143": the container port as compose has it, on a free port of 127.0.0.1.
    const containerPort = port.split(':').at(-1) ?? '';
    const hostPort = await freePort();
    published.set(`${name}:${containerPort}`, hostPort);
    args.push('--publish', `127.0.0.1:${hostPort}:${containerPort}`);
  }
  const health = spec.healthcheck;
  if (health) {
    const [kind, ...command] = health.test;
    // podman 4.3 reads a JSON array as exec form (it adds the CMD itself), a string as CMD-SHELL.
    args.push('--health-cmd', kind === 'CMD' ? JSON.stringify(command) : command.join(' '));
    if (health.interval) args.push('--health-interval', health.interval);
    if (health.timeout) args.push('--health-timeout', health.timeout);
    if (health.retries !== undefined) args.push('--health-retries', String(health.retries));
    if (health.start_period) args.push('--health-start-period', health.start_period);
  }
  if (spec.restart) args.push('--restart', spec.restart);
  if (spec.stop_grace_period) args.push('--stop-timeout', String(Number.parseInt(spec.stop_grace_period, 10)));
  return [...args, image, ...(spec.command ?? [])];
}

/** RUN in depends_on order (compose's start order). */
function startOrder(): string[] {
  const order: string[] = [];
  const visit = (name: string, path: string[]) => {
    if (order.includes(name)) return;
    if (path.includes(name)) throw new Error(`depends_on cycle: ${[...path, name].join(' -> ')}`);
    for (const dependency of Object.keys(service(name).depends_on ?? {})) {
      if (!RUN.includes(dependency)) throw new Error(`${name} depends on ${dependency}, which is not run here`);
      visit(dependency, [...path, name]);
    }
    order.push(name);
  };
  for (const name of RUN) visit(name, []);
  return order;
}

async function healthy(name: string): Promise<boolean> {
  // No systemd here for podman's health timers: run the check the way the timer would.
  return (await stack(['healthcheck', 'run', containerOf(name)])).code === 0;
}

async function failure(what: string, run: Run, name?: string): Promise<Error> {
  const logs = name ? await stack(['logs', '--tail', '40', containerOf(name)]) : undefined;
  return new Error(
    `${what} failed (${run.code}):\n${run.stderr.slice(-3000)}${logs ? `\n--- logs:\n${logs.stdout}${logs.stderr}` : ''}`,
  );
}

const secret = (name: string) => readFileSync(join(secretsDir, name), 'utf8').trim();

beforeAll(async () => {
  const made = await runLogged('bash', ['scripts/compose-secrets.sh', secretsDir], 60_000);
  if (made.code !== 0) throw await failure('scripts/compose-secrets.sh', made);

  const order = startOrder();
  const images = new Map<string, string>();
  for (const name of order) images.set(name, await imageFor(name));

  const networks = [...new Set(order.flatMap((name) => networksOf(service(name)).map(([network]) => network)))];
  for (const network of networks) {
    const spec = compose.networks[network] ?? {};
    const args = ['network', 'create'];
    if (spec.internal) args.push('--internal');
    for (const { subnet } of spec.ipam?.config ?? []) args.push('--subnet', subnet);
    const result = await stack([...args, `${project}_${network}`]);
    if (result.code !== 0) throw await failure(`network ${network}`, result);
    created.networks.push(`${project}_${network}`);
  }
  for (const volume of Object.keys(compose.volumes)) {
    const result = await stack(['volume', 'create', `${project}_${volume}`]);
    if (result.code !== 0) throw await failure(`volume ${volume}`, result);
    created.volumes.push(`${project}_${volume}`);
  }

  for (const name of order) {
    for (const [dependency, { condition }] of Object.entries(service(name).depends_on ?? {})) {
      if (condition === 'service_healthy')
        await waitFor(`${dependency} healthy (${name} waits for it)`, () => healthy(dependency), 180_000).catch(
          async (error: Error) => {
            throw await failure(error.message, { code: 1, stdout: '', stderr: '' }, dependency);
          },
        );
    }
    // Listed first: a container podman created but could not start is removed as well.
    created.containers.push(containerOf(name));
    const started = await stack(await runArguments(name, images.get(name) ?? ''));
    if (started.code !== 0) throw await failure(`podman run ${name}`, started);
  }
  for (const name of order) await waitFor(`${name} healthy`, () => healthy(name), 120_000);
}, 40 * 60_000);

afterAll(async () => {
  for (const container of [...created.containers].reverse()) {
    if (process.env.TEST_CONTAINER_LOGS) {
      const logs = await stack(['logs', container]);
      process.stdout.write(`--- ${container}\n${logs.stdout}${logs.stderr}`);
    }
    await stack(['rm', '--force', '--volumes', '--time', '0', container]);
  }
  for (const network of created.networks) await stack(['network', 'rm', '--force', network]);
  for (const volume of created.volumes) await stack(['volume', 'rm', '--force', volume]);
  rmSync(work, { recursive: true, force: true });
}, 120_000);

/** A line-at-a-time reader over a socket (CRLF), swappable for its TLS successor. */
function lineReader(socket: Socket) {
  let buffer = '';
  let wake: (() => void) | null = null;
  const onData = (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    wake?.();
  };
  socket.on('data', onData);
  return {
    async line(): Promise<string> {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const end = buffer.indexOf('\r\n');
        if (end >= 0) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          return line;
        }
        if (Date.now() > deadline || socket.destroyed) throw new Error(`IMAP: no complete line (have "${buffer}")`);
        await new Promise<void>((done) => {
          wake = done;
          setTimeout(done, 200);
        });
      }
    },
    async tagged(tag: string): Promise<string> {
      for (;;) {
        const line = await this.line();
        if (line.startsWith(`${tag} `)) return line;
      }
    },
    detach() {
      socket.off('data', onData);
    },
  };
}

/** STARTTLS (verifying the stack's certificate), LOGIN, and when it succeeds SELECT INBOX. */
async function imapOverStartTls(user: string, password: string): Promise<{ login: string; select?: string }> {
  const port = published.get('dovecot:143');
  if (!port) throw new Error('Dovecot publishes no port 143');
  const plain = connect({ host: '127.0.0.1', port });
  await new Promise<void>((done, fail) => plain.once('connect', done).once('error', fail));
  try {
    const before = lineReader(plain);
    expect(await before.line()).toMatch(/^\* OK /);
    plain.write('a0 STARTTLS\r\n');
    expect(await before.tagged('a0')).toMatch(/^a0 OK/);
    before.detach();
    const secure = tlsConnect({ socket: plain, servername: 'mail.example.org', ca: secret('tls/cert.pem') });
    await new Promise<void>((done, fail) => secure.once('secureConnect', done).once('error', fail));
    const reader = lineReader(secure as unknown as Socket);
    const quote = (value: string) => `"${value.replace(/[\\"]/g, '\\$&')}"`;
    secure.write(`a1 LOGIN ${quote(user)} ${quote(password)}\r\n`);
    const login = await reader.tagged('a1');
    if (!login.startsWith('a1 OK')) return { login };
    secure.write('a2 SELECT INBOX\r\n');
    const select = await reader.tagged('a2');
    secure.write('a3 LOGOUT\r\n');
    secure.end();
    return { login, select };
  } finally {
    plain.destroy();
  }
}

describe('the compose stack (mariadb, redis, postern, dovecot) in podman', () => {
  it('wires the services as compose.yaml does: its networks, aliases, fixed address, health checks', async () => {
    for (const name of RUN) {
      const inspected = await stack(['inspect', containerOf(name)]);
      expect(inspected.code).toBe(0);
      const [info] = JSON.parse(inspected.stdout) as {
        State: { Health?: { Status: string } };
        NetworkSettings: { Networks: Record<string, { IPAddress: string; Aliases: string[] | null }> };
      }[];
      expect(info?.State.Health?.Status, name).toBe('healthy');
      const attached = info?.NetworkSettings.Networks ?? {};
      expect(Object.keys(attached).sort(), name).toEqual(
        networksOf(service(name))
          .map(([network]) => `${project}_${network}`)
          .sort(),
      );
      for (const [network, options] of networksOf(service(name))) {
        const on = attached[`${project}_${network}`];
        expect(on?.Aliases ?? [], `${name} on ${network}`).toContain(name);
        if (options.ipv4_address) expect(on?.IPAddress).toBe(options.ipv4_address);
      }
    }
    const backend = await stack(['network', 'inspect', `${project}_backend`, '--format', '{{.Internal}}']);
    expect(backend.stdout.trim()).toBe('true');
    // Only Dovecot's ports are published; postern's internal listener is reachable on backend only.
    expect([...published.keys()].sort()).toEqual(
      [...RUN.flatMap((name) => (service(name).ports ?? []).map((port) => `${name}:${port.split(':').at(-1)}`))].sort(),
    );
    expect([...published.keys()].some((key) => key.endsWith(':9082'))).toBe(false);
  });

  it('runs `postern check` inside postern: MariaDB and Redis reached by their service names', async () => {
    const check = await stack(['exec', containerOf('postern'), 'node', '/app/dist/main.js', 'check']);
    expect(check.stdout).toContain('OK   mysql: database `mailcow` at mariadb:3306');
    expect(check.stdout).toMatch(/^OK {3}mysql schema: /m);
    expect(check.stdout).toMatch(/^OK {3}redis: .*redis:6379/m);
    expect(check.stdout).not.toMatch(/^FAIL/m);
    expect(check.code).toBe(0);
  });

  it('makes a domain and a mailbox through the admin API, then logs in over IMAP through Dovecot', async () => {
    // An API key as mailcow's UI makes one (its `api` table, which postern's migration created),
    // written with the MariaDB root password of the stack's secret.
    const key = `${randomBytes(6).toString('hex')}-${randomBytes(6).toString('hex')}`.toUpperCase();
    const inserted = await stack([
      'exec',
      '--env',
      `MYSQL_PWD=${secret('mariadb_root_password')}`,
      containerOf('mariadb'),
      'mariadb',
      '-uroot',
      'mailcow',
      '-e',
      `INSERT INTO api (api_key, allow_from, access) VALUES ('${key}', '127.0.0.1', 'rw')`,
    ]);
    expect(inserted.stderr).toBe('');
    expect(inserted.code).toBe(0);
    const password = `pw-${randomBytes(9).toString('hex')}`;
    // From inside postern's namespace, to its web listener, as a script on the host would through nginx.
    const script = `(async () => {
      const post = async (path, body) => {
        const response = await fetch('http://127.0.0.1:8080/api/v1' + path, {
          method: 'POST',
          headers: { 'x-api-key': process.env.KEY, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return response.status;
      };
      const domain = await post('/domains', { domain: 'example.org' });
      const mailbox = await post('/mailboxes', { local_part: 'erin', domain: 'example.org', password: process.env.PW });
      process.stdout.write(JSON.stringify({ domain, mailbox }));
    })()`;
    const made = await stack([
      'exec',
      '--env',
      `KEY=${key}`,
      '--env',
      `PW=${password}`,
      containerOf('postern'),
      'node',
      '-e',
      script,
    ]);
    expect(made.stderr).toBe('');
    expect(JSON.parse(made.stdout)).toEqual({ domain: 201, mailbox: 201 });

    // Dovecot's Lua asks postern at 172.30.82.10:9082 over backend; its SQL userdb reads the
    // mailbox from `mariadb`; the maildir goes to the vmail volume.
    const good = await imapOverStartTls('erin@example.org', password);
    expect(good.login).toMatch(/^a1 OK /);
    expect(good.select).toMatch(/^a2 OK /);
    const wrong = await imapOverStartTls('erin@example.org', `not ${password}`);
    expect(wrong.login).toMatch(/^a1 NO \[AUTHENTICATIONFAILED\]/);
    expect(wrong.select).toBeUndefined();
  }, 60_000);
});
