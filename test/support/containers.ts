// podman for the container tests (test/container.test.ts, test/compose-stack.test.ts): this
// machine's runtime (runc: crun fails on its hybrid cgroups), the local base images of
// scripts/container-base.sh (no public image registry is reachable here) and image builds with
// only the base-image argument changed. Base making and builds hold one lock file, so two test
// files building the same image at once take turns and the second is served by podman's layer
// cache instead of doing the work twice.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';

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
  const built = await locked(
    'podman',
    [
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
      options.context,
    ],
    20 * 60_000,
  );
  if (built.code !== 0)
    throw new Error(
      `podman build of ${options.dockerfile} failed:\n${built.stdout.slice(-4000)}\n${built.stderr.slice(-4000)}`,
    );
}
