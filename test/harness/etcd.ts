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
  log(): string;
  stop(): Promise<void>;
}

export interface EtcdStartOptions {
  /** Serve clients over https with this PEM certificate and key (the certificate doubles as the CA). */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
}

const ETCD = '/usr/bin/etcd';

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
  const proc = startProcess(
    ETCD,
    [
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
    ],
    join(dir, 'etcd.log'),
  );
  const ca = tls ? readFileSync(tls.certFile) : undefined;
  const stop = async (): Promise<void> => {
    proc.signal('SIGCONT'); // a stopped process cannot act on SIGTERM
    await proc.stop(5000);
    removeDir(dir);
  };
  try {
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
  } catch (e) {
    const log = proc.log().slice(-2000);
    await stop();
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${log}`);
  }
  return {
    endpoint: `127.0.0.1:${clientPort}`,
    pid: proc.pid,
    dataDir: dir,
    signal: (sig) => proc.signal(sig),
    log: () => proc.log(),
    stop,
  };
}
