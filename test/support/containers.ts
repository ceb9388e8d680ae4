// podman for the container tests (test/container.test.ts, test/compose-stack.test.ts): this
// machine's runtime (runc: crun fails on its hybrid cgroups), the local base images of
// scripts/container-base.sh (no public image registry is reachable here) and image builds with
// only the base-image argument changed. Base making and builds hold one lock file, so two test
// files building the same image at once take turns and the second is served by podman's layer
// cache instead of doing the work twice. A build is also keyed by the hash of its inputs (the
// Dockerfile, .dockerignore, the base image's id and every file under its COPY sources), so an
// unchanged image is tagged again instead of rebuilt: podman 4.3 needs about 30 s even for a
// fully cached build of the repository root, walking the whole context.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

export const PODMAN_RUNTIME = ['--runtime', '/usr/sbin/runc'];
const BUILD_LOCK = '.cache/container-build.lock';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** podman with this machine's runtime (and `global` options before the command); never rejects. */
export function podman(args: string[], timeoutMs = 60_000, global: string[] = []): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'podman',
      [...PODMAN_RUNTIME, ...global, ...args],
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A long command whose output goes to the test's log only when it fails. */
export function runLogged(command: string, args: string[], timeoutMs: number, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    if (input !== undefined) child.stdin?.end(input);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

/** Polls `check` every second (hooks cannot use expect.poll); throws after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function locked(command: string, args: string[], timeoutMs: number): Promise<Run> {
  mkdirSync('.cache', { recursive: true });
  return runLogged('flock', [BUILD_LOCK, command, ...args], timeoutMs);
}

/**
 * The local base image (scripts/container-base.sh): with no argument Debian trixie with the
 * LTS Node.js (the Dockerfile's NODE_IMAGE), with `debian SUITE` a plain Debian SUITE.
 */
export async function containerBase(...args: string[]): Promise<string> {
  const base = await locked('bash', ['scripts/container-base.sh', ...args], 15 * 60_000);
  if (base.code !== 0)
    throw new Error(`scripts/container-base.sh ${args.join(' ')} failed:\n${base.stderr.slice(-4000)}`);
  return base.stdout.trim().split('\n').at(-1) ?? '';
}

/** The build argument a Dockerfile's first FROM takes its image from (`ARG X=…` / `FROM ${X}`). */
export function baseImageArgument(dockerfile: string): string {
  const from = /^FROM\s+\$\{?(\w+)\}?/m.exec(readFileSync(dockerfile, 'utf8'));
  if (!from?.[1]) throw new Error(`${dockerfile}: its first FROM is not a build argument`);
  return from[1];
}

function hashTree(hash: ReturnType<typeof createHash>, context: string, path: string): void {
  const full = join(context, path);
  if (statSync(full).isDirectory()) {
    for (const entry of readdirSync(full).sort()) hashTree(hash, context, join(path, entry));
    return;
  }
  hash
    .update(`${relative(context, full)}\0`)
    .update(readFileSync(full))
    .update('\0');
}

/** Hash of what a build of `dockerfile` reads: more than .dockerignore admits, never less. */
function buildInputsHash(dockerfile: string, context: string, baseImageId: string, argument: string): string {
  const text = readFileSync(dockerfile, 'utf8');
  const hash = createHash('sha256').update(`${argument}=${baseImageId}\0`).update(text);
  try {
    hash.update(readFileSync(join(context, '.dockerignore')));
  } catch {
    hash.update('no .dockerignore');
  }
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (!/^(COPY|ADD)$/i.test(words[0] ?? '') || words.some((word) => word.startsWith('--from'))) continue;
    const paths = words.slice(1).filter((word) => !word.startsWith('--'));
    for (const source of paths.slice(0, -1)) hashTree(hash, context, source);
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * `podman build` of `dockerfile` in `context`, the base-image argument set to `baseImage` and
 * nothing else changed. `--format docker` keeps HEALTHCHECK (the OCI image format has no such
 * field); `--network=host` reaches the package registries.
 */
export async function buildImage(options: {
  dockerfile: string;
  context: string;
  tag: string;
  baseImage: string;
}): Promise<void> {
  const argument = baseImageArgument(options.dockerfile);
  const baseId = (await podman(['image', 'inspect', '--format', '{{.Id}}', options.baseImage])).stdout.trim();
  if (!baseId) throw new Error(`no base image ${options.baseImage}`);
  const slug = relative('.', options.dockerfile)
    .replace(/[^a-zA-Z0-9]+/g, '-')
    .toLowerCase();
  const keyed = `localhost/postern-test-build:${slug}-${buildInputsHash(options.dockerfile, options.context, baseId, argument)}`;
  const build = [
    'podman',
    ...PODMAN_RUNTIME,
    'build',
    '--network=host',
    '--format',
    'docker',
    '--build-arg',
    `${argument}=${options.baseImage}`,
    '-f',
    options.dockerfile,
    '-t',
    options.tag,
    '-t',
    keyed,
    options.context,
  ];
  // Under the lock: tag the image built from the same inputs, or build it.
  const built = await locked(
    'bash',
    [
      '-c',
      'if podman image exists "$1"; then podman tag "$1" "$2"; else shift 2; exec "$@"; fi',
      'build',
      keyed,
      options.tag,
      ...build,
    ],
    20 * 60_000,
  );
  if (built.code !== 0)
    throw new Error(
      `podman build of ${options.dockerfile} failed:\n${built.stdout.slice(-4000)}\n${built.stderr.slice(-4000)}`,
    );
}
