// A TCP proxy in front of a real service, so a test can cut the service off (connections
// refused and existing ones reset) and bring it back, or hold what clients send (the service
// looks slow) and let it through later, without stopping the shared server.
import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** Refuse new connections and reset the open ones. */
  cut(): Promise<void>;
  /** Accept connections again on the same port (no-op while open). */
  restore(): Promise<void>;
  /** Keep what clients send from here on, without forwarding it, until release(). */
  hold(): void;
  /** Bytes clients sent since hold() that the service has not seen yet. */
  readonly heldBytes: number;
  /** Forward what was held, then pass everything through again. */
  release(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  let held: { socket: net.Socket; chunk: Buffer }[] | undefined;

  const open = () =>
    new Promise<void>((resolve, reject) => {
      if (server) return resolve();
      server = net.createServer((client) => {
        const upstream = net.connect(target.port, target.host);
        sockets.add(client);
        sockets.add(upstream);
        const drop = () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        client.on('error', drop).on('close', drop);
        upstream.on('error', drop).on('close', drop);
        client.on('data', (chunk: Buffer) => {
          if (held) held.push({ socket: upstream, chunk });
          else upstream.write(chunk);
        });
        client.on('end', () => upstream.end());
        upstream.pipe(client);
      });
      server.once('error', (error) => {
        server = undefined;
        reject(error);
      });
      const listening = server;
      listening.listen(port, '127.0.0.1', () => {
        port = (listening.address() as net.AddressInfo).port;
        resolve();
      });
    });

  const shut = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.resetAndDestroy();
      sockets.clear();
      if (!server) return resolve();
      server.close(() => resolve());
      server = undefined;
    });

  await open();
  return {
    get port() {
      return port;
    },
    cut: shut,
    restore: open,
    hold() {
      held ??= [];
    },
    get heldBytes() {
      return (held ?? []).reduce((sum, { chunk }) => sum + chunk.length, 0);
    },
    release() {
      const pending = held ?? [];
      held = undefined;
      for (const { socket, chunk } of pending) if (!socket.destroyed) socket.write(chunk);
    },
    close: shut,
  };
}
