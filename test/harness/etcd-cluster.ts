/**
 * A multi-member etcd 3.4 cluster on loopback for integration tests (member discovery, a member going away): the
 * first member starts a new cluster, each further one joins it the way an operator grows a cluster
 * (`POST /v3/cluster/member/add`, then etcd started with `--initial-cluster-state existing`). Free ports, one temp
 * dir, every process stopped by pid in `stop()`.
 */
import { join } from 'node:path';
import { etcdPost, ETCD } from './etcd.js';
import { freePort, removeDir, startProcess, tempDir, waitFor, type Managed } from './process.js';

export interface EtcdMember {
  readonly name: string;
  /** `127.0.0.1:PORT` of its client URL. */
  readonly endpoint: string;
  readonly peerUrl: string;
  /** SIGKILL, and wait for the process to be gone. */
  kill(): Promise<void>;
}

export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  /** Adds one member to the running cluster and waits until it serves clients. */
  add(): Promise<EtcdMember>;
  /** The member IDs and client URLs etcd lists (asked from `via`). */
  memberList(via: EtcdMember): Promise<{ readonly id: string; readonly clientURLs: readonly string[] }[]>;
  stop(): Promise<void>;
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${endpoint}/health`, { signal: AbortSignal.timeout(2000) });
    return ((await res.json()) as { health?: unknown }).health === 'true';
  } catch {
    return false;
  }
}

export async function startEtcdCluster(size: number): Promise<EtcdCluster> {
  const dir = tempDir('etcd-cluster');
  const token = `pgwarden-${process.pid}-${Date.now()}`;
  const members: EtcdMember[] = [];
  const procs: Managed[] = [];
  const initial: string[] = [];

  const start = async (): Promise<EtcdMember> => {
    const clientPort = await freePort();
    let peerPort = await freePort();
    while (peerPort === clientPort) peerPort = await freePort();
    const name = `m${members.length + 1}`;
    const client = `http://127.0.0.1:${clientPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const first = members.length === 0;
    if (!first) {
      // etcd refuses (503, "unhealthy cluster") while a member that just joined is not yet counted as active.
      await waitFor(
        `etcd to accept member ${name}`,
        () => etcdPost(members[0]!.endpoint, '/v3/cluster/member/add', { peerURLs: [peerUrl] }, 5000),
        30_000,
        500,
      );
    }
    initial.push(`${name}=${peerUrl}`);
    const args = [
      ...['--name', name, '--data-dir', join(dir, name)],
      ...['--listen-client-urls', client, '--advertise-client-urls', client],
      ...['--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl],
      ...['--initial-cluster', initial.join(','), '--initial-cluster-state', first ? 'new' : 'existing'],
      ...['--initial-cluster-token', token, '--logger', 'zap', '--log-outputs', 'stderr'],
    ];
    const proc = startProcess(ETCD, args, join(dir, `${name}.log`));
    procs.push(proc);
    const endpoint = `127.0.0.1:${clientPort}`;
    await waitFor(
      `etcd member ${name} on ${client}`,
      async () => {
        if (proc.child.exitCode !== null || proc.child.signalCode !== null)
          throw new Error(`etcd ${name} exited:\n${proc.log().slice(-2000)}`);
        return healthy(endpoint);
      },
      60_000,
      100,
    );
    const member: EtcdMember = {
      name,
      endpoint,
      peerUrl,
      async kill() {
        const child = proc.child;
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        proc.signal('SIGKILL');
        await exited;
      },
    };
    members.push(member);
    return member;
  };

  const stop = async (): Promise<void> => {
    try {
      for (const p of procs) await p.stop(5000);
    } finally {
      removeDir(dir);
    }
  };

  try {
    for (let i = 0; i < size; i++) await start();
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    members,
    add: start,
    async memberList(via) {
      const res = await etcdPost(via.endpoint, '/v3/cluster/member/list', {}, 5000);
      const list = Array.isArray(res['members']) ? (res['members'] as Record<string, unknown>[]) : [];
      return list.map((m) => ({
        id: String(m['ID']),
        clientURLs: Array.isArray(m['clientURLs']) ? (m['clientURLs'] as string[]) : [],
      }));
    },
    stop,
  };
}
