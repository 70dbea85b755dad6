/**
 * DCS load at rest (issue 15): what an idle agent asks of etcd and of ZooKeeper, pgwarden next to Patroni 4.1.4
 * (and Patroni 3.0.2 on etcd3), and how many 3-member clusters one DCS server could carry at that rate.
 *
 * Method. All clusters of one DCS run at the same time on the same server (ttl 30 / loop_wait 10, Patroni's
 * defaults), each behind a counting proxy of its own (dcs-load-proxy.ts) that counts the requests its three agents
 * send, by call type: so every cluster also sees the others' writes, as clusters sharing a DCS do. Patroni is
 * told `etcd3.use_proxies` so it keeps talking through its proxy (without it, it would discover and use etcd's own
 * client URL; this also spares it the periodic member-list call, so Patroni's count is, if anything, low). After
 * SETTLE_MS the counters are reset and read again WINDOW_MS later. etcd's own `grpc_server_handled_total` over the
 * same window is recorded next to the proxies' sum (the proxies count a watch when it opens, etcd when it ends).
 *
 * Cost per request, measured here: after the idle window, with the clusters stopped, bursts of one call type at a
 * time (etcd: LeaseKeepAlive, Put, Range through the JSON gateway, as the agents call them; ZooKeeper: exists and
 * setData) against the same server, its CPU seconds (utime + stime of the server process, /proc/<pid>/stat) over
 * the burst minus its idle rate, divided by the number of calls. Pings and reads are priced as `exists`, writes as
 * `setData`, a txn as a put, other etcd calls as a range. The projection divides one CPU core of the DCS server by
 * a 3-member cluster's CPU seconds per second at rest; it leaves out everything but the requests (watch fan-out,
 * fsync, memory), so it compares the implementations, it does not size a production server.
 *
 * Asserted: pgwarden's calls per idle agent are no more than Patroni 4.1.4's on both DCSs, give or take one call
 * per agent over the window: both refresh the lease once per loop_wait (etcd3), and where a window of twelve cycles
 * cuts them can add or drop one. Measured (two runs on 2026-12-03, all clusters side by side): etcd3 14.7 and 13.3
 * calls per agent in 120 s against Patroni 4.1.4's 16.0 and 13.3 (both 12 keepalives; pgwarden before issue 15:
 * about 26, a keys-only range read every cycle besides); ZooKeeper 14.7 against 136.0 (Patroni 4.1.4 reads the
 * whole cluster every cycle).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EtcdGateway } from '../../src/dcs/etcd3/gateway.js';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { startPatroniCluster, type PatroniCluster } from '../harness/patroni.js';
import { describeNeeding } from '../harness/requirements.js';
import { startZooKeeper, type ZooKeeperServer } from '../harness/zookeeper.js';
import { startCountingProxy, type CountingProxy } from './dcs-load-proxy.js';
import { benchFigures } from './figures.js';

const TIMING = { ttl: 30, loopWait: 10, retryTimeout: 10 };
const SETTLE_MS = 20_000;
/** Twelve HA cycles: at one call or so per cycle, a shorter window would compare rounding. */
const WINDOW_MS = 120_000;
const AGENTS = 3;
/** What a window can cut off at either end: one call per agent (see the header). */
const RESOLUTION_PER_MINUTE = 1 / (WINDOW_MS / 60_000);
/** Calls per burst when pricing one call type. */
const BURST = 1500;
type Impl = 'pgwarden' | 'patroni-4.1.4' | 'patroni-3.0.2';
type Dcs = 'etcd3' | 'zookeeper';

interface Load {
  readonly impl: Impl;
  /** Calls of the whole 3-member cluster in the window, by call type. */
  readonly calls: Record<string, number>;
  /** The same per agent per minute. */
  readonly perAgentPerMinute: number;
}

const CLK_TCK = 100;

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const total = (calls: Record<string, number>): number => Object.values(calls).reduce((a, b) => a + b, 0);

/** etcd's count of finished gRPC calls, all methods. */
async function grpcHandled(endpoint: string): Promise<number> {
  const text = await (await fetch(`http://${endpoint}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('grpc_server_handled_total{'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop() ?? 0), 0);
}

/** CPU seconds of `pid` per call of `run`, its idle rate over the same time taken off. */
async function pricePerCall(pid: number, calls: number, run: () => Promise<void>): Promise<number> {
  const idleStart = cpuSeconds(pid);
  await sleep(3000);
  const idleRate = (cpuSeconds(pid) - idleStart) / 3;
  const t0 = performance.now();
  const c0 = cpuSeconds(pid);
  await run();
  const seconds = (performance.now() - t0) / 1000;
  return Math.max(0, cpuSeconds(pid) - c0 - idleRate * seconds) / calls;
}

/** Runs `call` `n` times, `parallel` at a time. */
async function burst(n: number, parallel: number, call: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) await call(next++);
    }),
  );
}

/** The cost (CPU s) of one call of each type, as priced by `costOf`, for a cluster's calls per second. */
function clusterCpuPerSecond(calls: Record<string, number>, costOf: (type: string) => number): number {
  let cpu = 0;
  for (const [type, n] of Object.entries(calls)) cpu += (n / (WINDOW_MS / 1000)) * costOf(type);
  return cpu;
}

function table(dcs: Dcs, loads: readonly Load[]): string {
  const types = [...new Set(loads.flatMap((l) => Object.keys(l.calls)))].sort();
  const rows = loads.map((l) => {
    const perAgent = types.map((t) => `${t} ${((l.calls[t] ?? 0) / AGENTS).toFixed(1)}`).join(', ');
    return `  ${l.impl.padEnd(14)} ${(total(l.calls) / AGENTS).toFixed(1).padStart(5)} calls per agent (${perAgent}); ${l.perAgentPerMinute.toFixed(2)} a minute`;
  });
  return `${dcs}: calls per idle agent in ${WINDOW_MS / 1000} s (ttl 30 / loop_wait 10)\n${rows.join('\n')}`;
}

const figures = benchFigures('dcs-load');
const describeWithNeeds = describeNeeding(
  'postgres',
  'etcd',
  'zookeeper',
  'patroni',
  'patroni4',
  'bundle',
  'root',
);

describeWithNeeds('DCS load of idle agents, pgwarden next to Patroni 4.1.4', () => {
  let etcd: EtcdServer | undefined;
  let zk: ZooKeeperServer | undefined;
  const proxies: CountingProxy[] = [];
  let patronis: PatroniCluster[] = [];
  let ours: AgentCluster | undefined;

  beforeAll(async () => {
    etcd = await startEtcd();
    zk = await startZooKeeper();
  });

  async function stopClusters(): Promise<void> {
    const all: Promise<void>[] = [...patronis.map((p) => p.stop()), ...(ours ? [ours.stop()] : [])];
    patronis = [];
    ours = undefined;
    const results = await Promise.allSettled(all);
    for (const p of proxies.splice(0)) await p.close();
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  afterAll(async () => {
    try {
      await stopClusters();
    } finally {
      try {
        await zk?.stop();
      } finally {
        await etcd?.stop();
      }
    }
  });

  /** Starts one cluster per implementation behind its own proxy, lets them settle, counts over the window. */
  async function measure(
    dcs: Dcs,
    server: string,
    impls: readonly Impl[],
    around?: { start(): Promise<void>; end(): Promise<void> },
  ): Promise<Load[]> {
    const protocol = dcs === 'etcd3' ? 'etcd' : 'zookeeper';
    const mine = await Promise.all(impls.map(() => startCountingProxy(server, protocol)));
    proxies.push(...mine);
    await Promise.all(
      impls.map(async (impl, i) => {
        const endpoint = mine[i]?.endpoint ?? '';
        const scope = `load-${impl.replace(/\./g, '')}-${dcs}`;
        if (impl === 'pgwarden') {
          ours = await startAgentCluster({
            dcs,
            etcdEndpoint: endpoint,
            scope,
            ...TIMING,
            ...(dcs === 'etcd3' ? { dcsExtra: 'use_proxies: true' } : {}),
          });
          await ours.waitReady({ timeoutMs: 180_000 });
        } else {
          patronis.push(
            await startPatroniCluster({
              dcs,
              dcsEndpoint: endpoint,
              scope,
              ...TIMING,
              useProxies: true,
              ...(impl === 'patroni-4.1.4' ? { patroniVersion: '4.1.4' as const } : {}),
            }),
          );
        }
      }),
    );
    await sleep(SETTLE_MS);
    await around?.start();
    for (const p of mine) p.reset();
    const t0 = Date.now();
    await sleep(WINDOW_MS);
    const minutes = (Date.now() - t0) / 60_000;
    await around?.end();
    return impls.map((impl, i) => {
      const calls = mine[i]?.counts() ?? {};
      return { impl, calls, perAgentPerMinute: total(calls) / AGENTS / minutes };
    });
  }

  /** 3-member clusters one CPU core of the DCS server carries at rest, by implementation. */
  function projection(loads: readonly Load[], costOf: (type: string) => number): Record<string, unknown> {
    return Object.fromEntries(
      loads.map((l) => {
        const cpu = clusterCpuPerSecond(l.calls, costOf);
        return [
          l.impl,
          {
            requestsPerSecondPerCluster: total(l.calls) / (WINDOW_MS / 1000),
            cpuSecondsPerSecondPerCluster: cpu,
            clustersPerCore: cpu > 0 ? Math.floor(1 / cpu) : null,
          },
        ];
      }),
    );
  }

  const of = (loads: readonly Load[], impl: Impl): Load => {
    const l = loads.find((x) => x.impl === impl);
    if (!l) throw new Error(`no figures for ${impl}`);
    return l;
  };

  it('etcd3: pgwarden makes no more calls per idle agent than Patroni 4.1.4', async () => {
    const server = etcd?.endpoint ?? '';
    let handled = 0;
    const loads = await measure('etcd3', server, ['pgwarden', 'patroni-4.1.4', 'patroni-3.0.2'], {
      start: async () => {
        handled = -(await grpcHandled(server));
      },
      end: async () => {
        handled += await grpcHandled(server);
      },
    });
    await stopClusters();
    console.log(table('etcd3', loads));

    // Price each call type against the same etcd, through the JSON gateway.
    const pid = etcd?.pid ?? 0;
    const g = new EtcdGateway({ endpoints: [server], protocol: 'http', retryTimeout: 10 });
    const lease = (await g.leaseGrant(60)).ID ?? '0';
    const price = {
      LeaseKeepAlive: await pricePerCall(pid, BURST, () => burst(BURST, 4, () => g.leaseKeepAlive(lease))),
      Put: await pricePerCall(pid, BURST, () =>
        burst(BURST, 4, (i) => g.put(`/bench/load/status`, `{"optime":${i}}`)),
      ),
      Range: await pricePerCall(pid, BURST, () =>
        burst(BURST, 4, () => g.range('/bench/load/', Buffer.from('/bench/load0').toString('base64'), true)),
      ),
    };
    g.close();
    const costOf = (type: string): number =>
      type === 'LeaseKeepAlive'
        ? price.LeaseKeepAlive
        : type === 'Put' || type === 'Txn'
          ? price.Put
          : price.Range;
    const projected = projection(loads, costOf);
    const perThousand = Object.fromEntries(Object.entries(price).map(([k, v]) => [k, v * 1000]));
    console.log(
      `etcd CPU seconds per 1000 calls: ${JSON.stringify(perThousand)}; clusters per etcd core: ${JSON.stringify(projected)}`,
    );
    figures.record('etcd3', {
      windowSeconds: WINDOW_MS / 1000,
      loads,
      etcdGrpcHandledInWindow: handled,
      cpuSecondsPer1000Calls: perThousand,
      projection: projected,
    });
    expect(of(loads, 'pgwarden').perAgentPerMinute).toBeLessThanOrEqual(
      of(loads, 'patroni-4.1.4').perAgentPerMinute + RESOLUTION_PER_MINUTE,
    );
  }, 900_000);

  it('ZooKeeper: pgwarden makes no more requests per idle agent than Patroni 4.1.4', async () => {
    const server = zk?.endpoint ?? '';
    const loads = await measure('zookeeper', server, ['pgwarden', 'patroni-4.1.4']);
    await stopClusters();
    console.log(table('zookeeper', loads));

    const pid = zk?.pid ?? 0;
    const zkLib = (await import('node-zookeeper-client')).default;
    const client = zkLib.createClient(server, { sessionTimeout: 30_000 });
    await new Promise<void>((resolve) => {
      client.once('connected', () => resolve());
      client.connect();
    });
    const path = '/bench-load';
    await new Promise<void>((resolve) =>
      client.create(path, Buffer.from('x'), zkLib.CreateMode.PERSISTENT, () => resolve()),
    );
    const price = {
      exists: await pricePerCall(pid, BURST, () =>
        burst(BURST, 4, () => new Promise<void>((r) => client.exists(path, () => r()))),
      ),
      setData: await pricePerCall(pid, BURST, () =>
        burst(
          BURST,
          4,
          (i) => new Promise<void>((r) => client.setData(path, Buffer.from(String(i)), -1, () => r())),
        ),
      ),
    };
    client.close();
    const writes = new Set(['setData', 'create', 'create2', 'delete', 'multi', 'createTTL']);
    const costOf = (type: string): number => (writes.has(type) ? price.setData : price.exists);
    const projected = projection(loads, costOf);
    const perThousand = Object.fromEntries(Object.entries(price).map(([k, v]) => [k, v * 1000]));
    console.log(
      `ZooKeeper CPU seconds per 1000 requests: ${JSON.stringify(perThousand)}; clusters per ZooKeeper core: ${JSON.stringify(projected)}`,
    );
    figures.record('zookeeper', {
      windowSeconds: WINDOW_MS / 1000,
      loads,
      cpuSecondsPer1000Calls: perThousand,
      projection: projected,
    });
    expect(of(loads, 'pgwarden').perAgentPerMinute).toBeLessThanOrEqual(
      of(loads, 'patroni-4.1.4').perAgentPerMinute + RESOLUTION_PER_MINUTE,
    );
  }, 900_000);
});
