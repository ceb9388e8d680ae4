// compose.yaml run for real with plain podman: MariaDB, Redis, postern, Dovecot, and nginx, SOGo
// and memcached in postern's network namespace, each started as compose.yaml itself says (parsed
// here, so the tested config is the shipped one): its image (built from the Dockerfile compose
// names, only the base-image argument changed, or a local stand-in for an official image), its
// environment, its secrets as files under /run/secrets/, its volumes, its networks with the
// service name and compose's aliases, its fixed address or the namespace it joins, its health
// check, its restart policy and grace period, started in depends_on order once the services it
// waits for are healthy (or running). Then a domain and a mailbox are made through postern's admin
// API inside the stack, a user logs in over IMAP (STARTTLS, with the certificate from
// scripts/compose-secrets.sh) on Dovecot's published port, and signs in at the portal through
// nginx's TLS listener on postern's published 443 and is handed to SOGo, which reads the mailbox
// from Dovecot with the webmail session's secret.
// What differs from `docker compose up`, and why, is in README "The compose stack".
// scripts/test.sh runs this file once, in its machine-Node pass.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Agent, getGlobalDispatcher, setGlobalDispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildImage, containerBase, podman, type Run, runLogged, waitFor } from './support/containers.js';
import { portalBrowser } from './support/portal-browser.js';
import { freePort } from './support/processes.js';

interface NetworkOptions {
  ipv4_address?: string;
  aliases?: string[];
}
interface Service {
  build?: { context: string; dockerfile: string };
  image?: string;
  command?: string[];
  depends_on?: Record<string, { condition: 'service_healthy' | 'service_started' }>;
  environment?: Record<string, string>;
  secrets?: string[];
  volumes?: string[];
  ports?: string[];
  networks?: string[] | Record<string, NetworkOptions | null>;
  healthcheck?: { test: string[]; interval?: string; timeout?: string; retries?: number; start_period?: string };
  restart?: string;
  stop_grace_period?: string;
  network_mode?: string;
}
interface Compose {
  services: Record<string, Service>;
  networks: Record<string, { internal?: boolean; ipam?: { config: { subnet: string }[] } } | null>;
  volumes: Record<string, unknown>;
  secrets: Record<string, { file: string }>;
}

const compose = parse(readFileSync('compose.yaml', 'utf8')) as Compose;
/** The services run here; README "The compose stack" says why the others are not. */
const RUN = ['mariadb', 'redis', 'postern', 'dovecot', 'memcached', 'sogo', 'nginx'];
/**
 * Local stand-ins for the official images compose pulls (no registry is reachable here): Debian
 * 12's packages behind the part of the official entrypoints compose.yaml uses (see their files).
 */
const STAND_INS: Record<string, string> = {
  'mariadb:11.4': 'test/fixtures/containers/mariadb',
  'redis:7.4': 'test/fixtures/containers/redis',
  'nginx:1.27': 'test/fixtures/containers/nginx',
  'memcached:1.6': 'test/fixtures/containers/memcached',
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

/** `network_mode: service:X`: the service whose network namespace this one joins. */
function namespaceOf(spec: Service): string | undefined {
  if (spec.network_mode === undefined) return undefined;
  const joined = /^service:(\S+)$/.exec(spec.network_mode)?.[1];
  if (!joined) throw new Error(`network_mode ${spec.network_mode}: only service:NAME is run here`);
  return joined;
}

/** What a service waits for: its depends_on, and (as compose adds it) the service whose namespace it joins. */
function dependenciesOf(spec: Service): [string, 'service_healthy' | 'service_started'][] {
  const listed = Object.entries(spec.depends_on ?? {}).map(
    ([name, { condition }]) => [name, condition] as [string, 'service_healthy' | 'service_started'],
  );
  const joined = namespaceOf(spec);
  if (joined && !listed.some(([name]) => name === joined)) listed.push([joined, 'service_started']);
  return listed;
}

function networksOf(spec: Service): [string, NetworkOptions][] {
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
  const joined = namespaceOf(spec);
  if (joined) args.push('--network', `container:${containerOf(joined)}`);
  for (const [network, options] of networksOf(spec)) {
    const ip = options.ipv4_address ? `,ip=${options.ipv4_address}` : '';
    const aliases = [name, ...(options.aliases ?? [])].map((alias) => `alias=${alias}`).join(',');
    args.push('--network', `${project}_${network}:${aliases}${ip}`);
  }
  for (const secret of spec.secrets ?? []) {
    const file = compose.secrets[secret]?.file;
    if (!file?.startsWith('./secrets/')) throw new Error(`secret ${secret}: not a file under ./secrets/`);
    args.push('--volume', `${join(secretsDir, file.slice('./secrets/'.length))}:/run/secrets/${secret}:ro`);
  }
  for (const volume of spec.volumes ?? []) {
    const [source = '', ...rest] = volume.split(':');
    const named = !source.startsWith('.') && !source.startsWith('/');
    // ./secrets/ is the directory scripts/compose-secrets.sh filled for this run.
    const path = source.startsWith('./secrets/')
      ? join(secretsDir, source.slice('./secrets/'.length))
      : resolve(source);
    args.push('--volume', [named ? `${project}_${source}` : path, ...rest].join(':'));
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
    for (const [dependency] of dependenciesOf(service(name))) {
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

/** Whether a service has a health check: compose's, or its image's HEALTHCHECK. */
async function hasHealthCheck(name: string): Promise<boolean> {
  if (service(name).healthcheck) return true;
  const check = await stack(['container', 'inspect', '--format', '{{json .Config.Healthcheck}}', containerOf(name)]);
  return !['', 'null', '{}'].includes(check.stdout.trim());
}

/** compose's `service_started`: the container runs. */
async function running(name: string): Promise<boolean> {
  const state = await stack(['container', 'inspect', '--format', '{{.State.Status}}', containerOf(name)]);
  return state.stdout.trim() === 'running';
}

/** Ready as compose counts it once started: healthy when it has a health check, else running. */
async function ready(name: string): Promise<boolean> {
  return (await hasHealthCheck(name)) ? healthy(name) : running(name);
}

/** The last lines each service logged, for the message of a failed step or check. */
async function logTails(...names: string[]): Promise<string> {
  const tails = await Promise.all(
    names.map(async (name) => {
      const logs = await stack(['logs', '--tail', '40', containerOf(name)]);
      return `--- ${name}:\n${logs.stdout}${logs.stderr}`;
    }),
  );
  return tails.join('\n');
}

async function failure(what: string, run: Run, name?: string): Promise<Error> {
  const logs = name ? `\n${await logTails(name)}` : '';
  return new Error(`${what} failed (${run.code}):\n${run.stderr.slice(-3000)}${logs}`);
}

const secret = (name: string) => readFileSync(join(secretsDir, name), 'utf8').trim();
/** The mailbox the admin-API test makes (the webmail test signs in as it). */
let mailbox: { user: string; password: string } | undefined;
/** compose.yaml's POSTERN_PUBLIC_URL: nginx's server_name, the Origin postern accepts. */
const PUBLIC_URL = service('postern').environment?.POSTERN_PUBLIC_URL ?? '';

/**
 * nginx's TLS listener, as postern's published 443: fetch() then verifies nginx's certificate
 * (secrets/tls/cert.pem) for the public host name. The host name goes in SNI and the
 * certificate check; the connection goes to the published port on 127.0.0.1.
 */
function throughNginx<T>(use: (url: string) => Promise<T>): Promise<T> {
  const port = published.get('postern:443');
  if (!port) throw new Error("postern publishes no port 443 (nginx's)");
  const previous = getGlobalDispatcher();
  const agent = new Agent({ connect: { ca: secret('tls/cert.pem'), servername: new URL(PUBLIC_URL).hostname } });
  setGlobalDispatcher(agent);
  return use(`https://127.0.0.1:${port}`).finally(async () => {
    setGlobalDispatcher(previous);
    await agent.close();
  });
}

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
    for (const [dependency, condition] of dependenciesOf(service(name))) {
      const [what, check] =
        condition === 'service_healthy'
          ? ['healthy', () => healthy(dependency)]
          : ['running', () => running(dependency)];
      await waitFor(`${dependency} ${what} (${name} waits for it)`, check, 180_000).catch(async (error: Error) => {
        throw await failure(error.message, { code: 1, stdout: '', stderr: '' }, dependency);
      });
    }
    // Listed first: a container podman created but could not start is removed as well.
    created.containers.push(containerOf(name));
    const started = await stack(await runArguments(name, images.get(name) ?? ''));
    if (started.code !== 0) throw await failure(`podman run ${name}`, started);
  }
  for (const name of order)
    await waitFor(`${name} ready`, () => ready(name), 120_000).catch(async (error: Error) => {
      throw await failure(error.message, { code: 1, stdout: '', stderr: '' }, name);
    });
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

/** STARTTLS (verifying the stack's certificate), LOGIN, and when it succeeds SELECT INBOX (and APPEND `message`). */
async function imapOverStartTls(
  user: string,
  password: string,
  message?: string,
): Promise<{ login: string; select?: string; append?: string }> {
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
    let append: string | undefined;
    if (message !== undefined) {
      const body = Buffer.from(message.replace(/\r?\n/g, '\r\n'), 'utf8');
      secure.write(`a3 APPEND INBOX {${body.length}}\r\n`);
      expect(await reader.line()).toMatch(/^\+/);
      secure.write(Buffer.concat([body, Buffer.from('\r\n')]));
      append = await reader.tagged('a3');
    }
    secure.write('a4 LOGOUT\r\n');
    secure.end();
    return { login, select, ...(append === undefined ? {} : { append }) };
  } finally {
    plain.destroy();
  }
}

describe('the compose stack (mariadb, redis, postern, dovecot, memcached, sogo, nginx) in podman', () => {
  it('wires the services as compose.yaml does: its networks, aliases, fixed address, shared namespace, health checks', async () => {
    const posternId = (
      await stack(['container', 'inspect', '--format', '{{.Id}}', containerOf('postern')])
    ).stdout.trim();
    for (const name of RUN) {
      const inspected = await stack(['inspect', containerOf(name)]);
      expect(inspected.code).toBe(0);
      const [info] = JSON.parse(inspected.stdout) as {
        State: { Status: string; Health?: { Status: string } };
        HostConfig: { NetworkMode: string };
        NetworkSettings: { Networks?: Record<string, { IPAddress: string; Aliases: string[] | null }> };
      }[];
      expect(info?.State.Status, name).toBe('running');
      if (await hasHealthCheck(name)) expect(info?.State.Health?.Status, name).toBe('healthy');
      if (namespaceOf(service(name))) {
        // nginx, SOGo and memcached: in postern's network namespace, on no network of their own.
        expect(info?.HostConfig.NetworkMode, name).toBe(`container:${posternId}`);
        continue;
      }
      const attached = info?.NetworkSettings.Networks ?? {};
      expect(Object.keys(attached).sort(), name).toEqual(
        networksOf(service(name))
          .map(([network]) => `${project}_${network}`)
          .sort(),
      );
      for (const [network, options] of networksOf(service(name))) {
        const on = attached[`${project}_${network}`];
        for (const alias of [name, ...(options.aliases ?? [])])
          expect(on?.Aliases ?? [], `${name} on ${network}`).toContain(alias);
        if (options.ipv4_address) expect(on?.IPAddress).toBe(options.ipv4_address);
      }
    }
    const backend = await stack(['network', 'inspect', `${project}_backend`, '--format', '{{.Internal}}']);
    expect(backend.stdout.trim()).toBe('true');
    // Dovecot's ports and postern's 443 (nginx's, in postern's namespace) are published; postern's
    // internal listener is reachable on backend and over the namespace's loopback only.
    expect([...published.keys()].sort()).toEqual(
      [...RUN.flatMap((name) => (service(name).ports ?? []).map((port) => `${name}:${port.split(':').at(-1)}`))].sort(),
    );
    expect([...published.keys()].some((key) => key.endsWith(':9082'))).toBe(false);
  });

  it('runs `postern check` inside postern: MariaDB and Redis reached by their service names', async () => {
    // A fresh process that resolves and dials the services. On this host's podman (aardvark-dns
    // 1.4) a lookup of a service name sometimes stalls for 10 s while the machine is loaded (one
    // probe: `mariadb` resolved in 10,013 ms, a TCP connect to its address took 2 ms, the next
    // lookups 1-2 ms), longer than the check's connect timeouts, so the check says ETIMEDOUT.
    // A FAIL is therefore retried for up to 60 s, each failed report printed: wiring that is
    // wrong never passes, a stall that passes stays visible in the log.
    const run = () => stack(['exec', containerOf('postern'), 'node', '/app/dist/main.js', 'check']);
    let check = await run();
    await waitFor(
      'a passing postern check',
      async () => {
        if (check.code === 0) return true;
        console.warn(`postern check failed, retrying:\n${check.stdout}${check.stderr}`);
        check = await run();
        return check.code === 0;
      },
      60_000,
    ).catch(() => undefined); // the expectations below say what is still wrong
    expect(check.stdout).toContain('OK   mysql: database `mailcow` at mariadb:3306');
    expect(check.stdout).toMatch(/^OK {3}mysql schema: /m);
    expect(check.stdout).toMatch(/^OK {3}redis: .*redis:6379/m);
    expect(check.stdout).not.toMatch(/^FAIL/m);
    expect(check.code).toBe(0);
  }, 120_000);

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
    mailbox = { user: 'erin@example.org', password };
    const good = await imapOverStartTls('erin@example.org', password);
    const why = /^a1 OK /.test(good.login) ? '' : await logTails('dovecot', 'postern', 'mariadb');
    expect(good.login, why).toMatch(/^a1 OK /);
    expect(good.select).toMatch(/^a2 OK /);
    const wrong = await imapOverStartTls('erin@example.org', `not ${password}`);
    expect(wrong.login).toMatch(/^a1 NO \[AUTHENTICATIONFAILED\]/);
    expect(wrong.select).toBeUndefined();
  }, 60_000);

  it("serves postern's portal through nginx on postern's published 443, with the stack's certificate", async () => {
    await throughNginx(async (url) => {
      // A running container is all compose waits for (nginx has no health check): until it listens.
      await waitFor(
        'nginx answering on 443',
        () =>
          fetch(`${url}/login`).then(
            () => true,
            () => false,
          ),
        30_000,
      );
      const login = await fetch(`${url}/login`);
      expect(login.status, await login.clone().text()).toBe(200);
      expect(await login.text()).toMatch(/<form[^>]+action="\/login"/);
      // SOGo's static files, from the sogo_web volume SOGo's image filled and nginx mounts.
      const style = await fetch(`${url}/SOGo.woa/WebServerResources/css/styles.css`);
      expect(style.status).toBe(200);
      expect((await style.text()).length).toBeGreaterThan(1000);
      // /SOGo without a session: nginx's auth_request to postern's internal listener (loopback,
      // with the token of secrets/nginx_postern_auth.conf) says 401, nginx sends the browser to sign in.
      const anonymous = await fetch(`${url}/SOGo/so/`, { redirect: 'manual' });
      expect(anonymous.status).toBe(302);
      expect(anonymous.headers.get('location')).toBe('/sogo-auth');
    });
  });

  it('hands the mailbox signed in at the portal to SOGo, which opens it in Dovecot with the webmail secret', async () => {
    if (!mailbox) throw new Error('the admin-API test made no mailbox');
    const { user, password } = mailbox;
    // A message for SOGo to show, put into the INBOX over IMAP with the mailbox password.
    const subject = `webmail proof ${randomBytes(4).toString('hex')}`;
    const delivered = await imapOverStartTls(
      user,
      password,
      `From: sender@example.net\nTo: ${user}\nSubject: ${subject}\nDate: Mon, 2 Jan 2023 10:00:00 +0000\nMessage-ID: <${randomBytes(6).toString('hex')}@example.net>\n\nHello from the stack test.\n`,
    );
    expect(delivered.append).toMatch(/^a3 OK /);
    // SOGo is up: nginx started only once SOGo's compose health check passed (sogod listens).
    await throughNginx(async (url) => {
      // Sign-in at the portal, /sogo-auth mints the handoff, nginx's auth_request redeems it.
      const browser = portalBrowser(url, { origin: new URL(PUBLIC_URL).origin });
      const signedIn = await browser.signIn(user, password);
      expect(signedIn.status, signedIn.text).toBe(303);
      const handoff = await browser.get('/sogo-auth');
      expect(handoff.status, handoff.text).toBe(303);
      expect(handoff.location).toBe('/SOGo/so/');
      // SOGo takes the user postern vouched for and sends the browser on to that user's mail view.
      let page = await browser.get('/SOGo/so/');
      const visited: string[] = [];
      for (let hops = 0; page.status === 302 && page.location && hops < 8; hops++) {
        visited.push(new URL(page.location, url).pathname);
        page = await browser.get(visited.at(-1) ?? '');
      }
      expect(page.status, page.text.slice(0, 2000)).toBe(200);
      expect(visited.at(-1)).toBe(`/SOGo/so/${user}/Mail/view`);
      expect(page.text).toContain('<title sg-default="Mail | SOGo">');
      // The INBOX as SOGo's mail view lists it (its own XHR): SOGo read it from Dovecot.
      const cookie = [...browser.jar].map(([name, value]) => `${name}=${value}`).join('; ');
      const listed = await fetch(`${url}/SOGo/so/${user}/Mail/0/folderINBOX/view`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json' },
        body: JSON.stringify({ sortingAttributes: { sort: 'arrival', asc: 0 } }),
      });
      const inbox = await listed.text();
      expect(listed.status, inbox).toBe(200);
      expect((JSON.parse(inbox) as { uids: number[] }).uids).toHaveLength(1);
      expect(inbox).toContain(subject);
    });
    // That IMAP login came from SOGo at postern's backend address (POSTERN_SOGO_NETWORKS), over
    // TLS, and postern accepted the webmail session's secret for it, not a password.
    const dovecotLog = await stack(['logs', containerOf('dovecot')]);
    expect(`${dovecotLog.stdout}${dovecotLog.stderr}`).toMatch(
      new RegExp(`imap-login: Info: Login: user=<${user}>, method=PLAIN, rip=172\\.30\\.82\\.10, .*, TLS`),
    );
    const posternLog = await stack(['logs', containerOf('postern')]);
    const logins = `${posternLog.stdout}${posternLog.stderr}`
      .split('\n')
      .filter((line) => line.includes('"msg":"passdb"'))
      .map((line) => JSON.parse(line) as { user: string; rip: string; result: string; via?: string });
    expect(logins).toContainEqual(
      expect.objectContaining({ user, rip: '172.30.82.10', result: 'ok', via: 'webmail_session' }),
    );
  }, 60_000);
});
