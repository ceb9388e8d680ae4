// Helpers for the real services tests start (Dovecot, nginx, SOGo, memcached): free loopback
// ports, probing a TCP port, and child processes with their output kept and a sure stop.
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { type AddressInfo, connect, createServer } from 'node:net';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A port on 127.0.0.1 that was free a moment ago (the OS picks it; we release it for the caller). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolvePort(port));
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:<port> right now. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolveConnect) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolveConnect(true);
    });
    socket.once('error', () => resolveConnect(false));
  });
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** SIGTERM, then SIGKILL if the child is still there after 5 s. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), sleep(5000).then(() => true)]);
  if (timedOut) {
    child.kill('SIGKILL');
    await exited;
  }
}

/** What one or more children wrote to stdout and stderr, in arrival order. */
export interface ChildOutput {
  text: string;
}

export interface LoggedChild {
  child: ChildProcess;
  output: ChildOutput;
  /** Stops the child (stopChild), drops its kill-on-exit hook, then runs `afterStop`. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Spawns a child with stdout and stderr appended to `output` (pass one object to several
 * children to log them together), killed with SIGKILL should the test process exit first.
 */
export function spawnLogged(
  command: string,
  args: readonly string[],
  options: Omit<SpawnOptions, 'stdio'> = {},
  { output = { text: '' }, afterStop }: { output?: ChildOutput; afterStop?: () => void } = {},
): LoggedChild {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  const collect = (chunk: Buffer) => {
    output.text += chunk.toString('utf8');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let stopped = false;
  return {
    child,
    output,
    async stop() {
      if (stopped) return;
      stopped = true;
      process.removeListener('exit', killOnExit);
      await stopChild(child);
      afterStop?.();
    },
  };
}
