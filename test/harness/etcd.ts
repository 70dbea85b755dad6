/**
 * A single-node etcd 3.4 (/usr/bin/etcd) on loopback for integration tests: free ports, temp data dir, stopped
 * by pid. Flags as in ../shared/reference/etcd-up.sh.
 */
import { get as httpsGet } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, removeDir, startProcess, tempDir, waitFor } from './process.js';

export interface EtcdServer {
  /** `127.0.0.1:PORT` of the client URL. */
  readonly endpoint: string;
  readonly pid: number;
  readonly dataDir: string;
  /** Signals the etcd process group (SIGSTOP/SIGCONT for fault tests). */
  signal(sig: NodeJS.Signals): void;
  /** Ends etcd with `sig` (SIGTERM: a clean stop, SIGKILL: a crash) and waits for it to exit; the data dir stays. */
  kill(sig: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts etcd again on the same ports and data dir (after `kill`) and waits until it is healthy. */
  restart(): Promise<void>;
  log(): string;
  stop(): Promise<void>;
}

export interface EtcdStartOptions {
  /** Serve clients over https with this PEM certificate and key (the certificate doubles as the CA). */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
}

export const ETCD = '/usr/bin/etcd';

async function healthy(clientUrl: string, ca?: Buffer): Promise<boolean> {
  try {
    let text: string;
    if (ca) {
      text = await new Promise<string>((resolve, reject) => {
        const req = httpsGet(`${clientUrl}/health`, { ca, timeout: 2000 }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve(body));
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
      });
    } else {
      const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(2000) });
      text = await res.text();
    }
    return (JSON.parse(text) as { health?: unknown }).health === 'true';
  } catch {
    return false;
  }
}

export async function startEtcd(options: EtcdStartOptions = {}): Promise<EtcdServer> {
  const clientPort = await freePort();
  let peerPort = await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  const dir = tempDir('etcd');
  const name = `etcd${clientPort}`;
  const tls = options.tls;
  const client = `${tls ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name',
    name,
    '--data-dir',
    join(dir, 'data'),
    '--listen-client-urls',
    client,
    '--advertise-client-urls',
    client,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    `${name}=${peer}`,
    '--initial-cluster-state',
    'new',
    '--initial-cluster-token',
    name,
    '--quota-backend-bytes',
    String(256 * 1024 * 1024),
    '--logger',
    'zap',
    '--log-outputs',
    'stderr',
    ...(tls ? ['--cert-file', tls.certFile, '--key-file', tls.keyFile] : []),
  ];
  let proc = startProcess(ETCD, args, join(dir, 'etcd.log'));
  const ca = tls ? readFileSync(tls.certFile) : undefined;
  const stop = async (): Promise<void> => {
    proc.signal('SIGCONT'); // a stopped process cannot act on SIGTERM
    await proc.stop(5000);
    removeDir(dir);
  };
  const waitHealthy = async (): Promise<void> => {
    const state = await waitFor(
      `etcd on ${client}`,
      async () => {
        if (proc.child.exitCode !== null || proc.child.signalCode !== null) return 'exited';
        return (await healthy(client, ca)) ? 'up' : false;
      },
      30_000,
      100,
    );
    if (state === 'exited') throw new Error(`etcd on ${client} exited during start-up`);
  };
  try {
    await waitHealthy();
  } catch (e) {
    const log = proc.log().slice(-2000);
    await stop();
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${log}`);
  }
  return {
    endpoint: `127.0.0.1:${clientPort}`,
    get pid() {
      return proc.pid;
    },
    dataDir: dir,
    signal: (sig) => proc.signal(sig),
    async kill(sig) {
      const child = proc.child;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      proc.signal('SIGCONT');
      proc.signal(sig);
      await exited;
    },
    async restart() {
      const child = proc.child;
      if (child.exitCode === null && child.signalCode === null)
        throw new Error(`etcd on ${client} still runs`);
      proc = startProcess(ETCD, args, join(dir, 'etcd.log'));
      await waitHealthy();
    },
    log: () => proc.log(),
    stop,
  };
}

/**
 * One request to etcd's v3 JSON gateway, for the tests' own probes (independent of the adapter under test): the
 * JSON answer, or an error for an HTTP error status. `path` is e.g. `/v3/kv/range`; keys go base64-encoded.
 */
export async function etcdPost(
  endpoint: string,
  path: string,
  body: unknown,
  timeoutMs = 1000,
): Promise<Record<string, unknown>> {
  const res = await fetch(`http://${endpoint}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!res.ok) throw new Error(`etcd ${path}: HTTP ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}
