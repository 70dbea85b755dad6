/**
 * A TCP relay on 127.0.0.1 that a test can cut and restore: a partition between processes on one host without
 * network namespaces. Cut: every relayed connection is reset and new ones are closed at once (the peers see a
 * connection error, as behind a refusing firewall); restore: connections are relayed again.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface CuttableRelay {
  /** The port it listens on (127.0.0.1). */
  readonly port: number;
  /** Where it relays to; may be set after the relay is created (before the first connection). */
  target: { host: string; port: number } | undefined;
  readonly isCut: boolean;
  cut(): void;
  restore(): void;
  stop(): Promise<void>;
}

export async function startCuttableRelay(target?: { host: string; port: number }): Promise<CuttableRelay> {
  const open = new Set<Socket>();
  let cut = false;
  const server: Server = createServer((client) => {
    const to = relay.target;
    if (cut || !to) {
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection(to);
    open.add(client);
    open.add(upstream);
    const close = (): void => {
      open.delete(client);
      open.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('relay has no port');
  const relay: CuttableRelay = {
    port: address.port,
    target,
    get isCut() {
      return cut;
    },
    cut() {
      cut = true;
      for (const s of open) s.resetAndDestroy();
      open.clear();
    },
    restore() {
      cut = false;
    },
    async stop() {
      for (const s of open) s.destroy();
      open.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return relay;
}
