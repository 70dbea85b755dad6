/**
 * `list --all` over a large namespace (issue 14): 1,000 generated clusters of 3 members each (initialize, config,
 * leader, status, history and three member keys per cluster, member values as Patroni 4.1.4 writes them), on etcd3
 * and on ZooKeeper. Measured per DCS, runs interleaved (etcd3, ZooKeeper, etcd3, ...): the whole process's wall
 * time (`node bin/run.js list --all`, pretty and `-f json`) and its peak RSS (/usr/bin/time), plus the DCS requests
 * one run sends (a counting proxy). Targets: median at most 1 s on etcd3 and 2 s on ZooKeeper. BENCH_RUNS sets the
 * runs (default 7). Figures to the console and .bench/list-all.json.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import zookeeper from 'node-zookeeper-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { etcdPost, startEtcd, type EtcdServer } from '../harness/etcd.js';
import { runCommand } from '../harness/patroni.js';
import { removeDir, tempDir } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { startZooKeeper, type ZooKeeperServer } from '../harness/zookeeper.js';
import { startCountingProxy } from './dcs-load-proxy.js';
import { benchFigures } from './figures.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const CLUSTERS = 1000;
const NAMESPACE = 'fleet';
const TARGET_MS = { etcd3: 1000, zookeeper: 2000 } as const;
const { NODE_ENV: _vitestNodeEnv, ...USER_ENV } = process.env;

const scopeName = (i: number): string => `cluster-${String(i).padStart(4, '0')}`;

/** The keys of one generated cluster, relative to its prefix. */
function clusterKeys(i: number): [string, string][] {
  const member = (m: number): string =>
    JSON.stringify({
      conn_url: `postgres://10.0.${i % 250}.${m + 1}:5432/postgres`,
      api_url: `http://10.0.${i % 250}.${m + 1}:8008/patroni`,
      state: m === 0 ? 'running' : 'streaming',
      role: m === 0 ? 'primary' : 'replica',
      version: '4.1.4',
      xlog_location: 67108960 + m,
      receive_lsn: m === 0 ? undefined : 67108960,
      replay_lsn: m === 0 ? undefined : 67108960,
      timeline: 1,
      proxy_url: undefined,
    });
  return [
    ['initialize', String(7710821883631976000n + BigInt(i))],
    [
      'config',
      JSON.stringify({ ttl: 30, loop_wait: 10, retry_timeout: 10, postgresql: { use_pg_rewind: true } }),
    ],
    ['leader', `${scopeName(i)}-m0`],
    ['status', JSON.stringify({ optime: 67108960, slots: {}, retain_slots: [] })],
    ['history', '[]'],
    ...[0, 1, 2].map((m): [string, string] => [`members/${scopeName(i)}-m${m}`, member(m)]),
  ];
}

async function fillEtcd(endpoint: string): Promise<void> {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const puts = Array.from({ length: CLUSTERS }, (_, i) =>
    clusterKeys(i).map(([k, v]) => ({
      request_put: { key: b64(`/${NAMESPACE}/${scopeName(i)}/${k}`), value: b64(v) },
    })),
  ).flat();
  // etcd takes at most 128 operations per transaction.
  for (let at = 0; at < puts.length; at += 120) {
    await etcdPost(endpoint, '/v3/kv/txn', { success: puts.slice(at, at + 120) }, 30_000);
  }
}

async function fillZooKeeper(endpoint: string): Promise<void> {
  const client = zookeeper.createClient(endpoint, { sessionTimeout: 30_000 });
  await new Promise<void>((resolve) => {
    client.once('connected', () => resolve());
    client.connect();
  });
  const create = (path: string, value: string | null): Promise<void> =>
    new Promise((resolve, reject) =>
      client.create(path, value === null ? null : Buffer.from(value), zookeeper.CreateMode.PERSISTENT, (e) =>
        e ? reject(e) : resolve(),
      ),
    );
  try {
    await create(`/${NAMESPACE}`, null);
    await Promise.all(
      Array.from({ length: CLUSTERS }, async (_, i) => {
        const base = `/${NAMESPACE}/${scopeName(i)}`;
        await create(base, null);
        await create(`${base}/members`, null);
        await Promise.all(clusterKeys(i).map(([k, v]) => create(`${base}/${k}`, v)));
      }),
    );
  } finally {
    client.close();
  }
}

interface Sample {
  readonly ms: number;
  readonly rssMiB: number;
  readonly bytes: number;
}

function runOnce(config: string, args: readonly string[]): Sample {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(
    '/usr/bin/time',
    ['-f', 'RSS_KB=%M', process.execPath, join(ROOT, 'bin', 'run.js'), '-c', config, ...args],
    { encoding: 'utf8', cwd: ROOT, timeout: 60_000, env: USER_ENV, maxBuffer: 64 * 1024 * 1024 },
  );
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`list ${args.join(' ')} failed (${String(r.status)}): ${r.stderr}`);
  const tables = (r.stdout.match(/^\+ Cluster: /gm) ?? []).length;
  const rows = args.includes('json') ? (JSON.parse(r.stdout) as unknown[]).length : tables;
  if (rows !== (args.includes('json') ? CLUSTERS * 3 : CLUSTERS))
    throw new Error(`list ${args.join(' ')}: ${rows} rows/tables`);
  return {
    ms,
    rssMiB: Number(/RSS_KB=(\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1024,
    bytes: r.stdout.length,
  };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const describeWithNeeds = describeNeeding('etcd', 'zookeeper', 'bundle', 'time');

describeWithNeeds('list --all over 1,000 clusters of 3 members', () => {
  let etcd: EtcdServer | undefined;
  let zk: ZooKeeperServer | undefined;
  let dir = '';
  const configs = { etcd3: '', zookeeper: '' };
  const figures = benchFigures('list-all');

  const writeConfig = (file: string, dcs: string): string => {
    const path = join(dir, file);
    writeFileSync(path, `scope: ${scopeName(0)}\nnamespace: /${NAMESPACE}\n${dcs}`);
    return path;
  };

  beforeAll(async () => {
    dir = tempDir('list-all-bench');
    [etcd, zk] = await Promise.all([startEtcd(), startZooKeeper()]);
    const t0 = Date.now();
    await Promise.all([fillEtcd(etcd.endpoint), fillZooKeeper(zk.endpoint)]);
    figures.record('namespace', {
      clusters: CLUSTERS,
      membersPerCluster: 3,
      keysPerCluster: clusterKeys(0).length,
      generatedInMs: Date.now() - t0,
    });
    configs.etcd3 = writeConfig('etcd3.yml', `etcd3:\n  hosts: ${etcd.endpoint}\n`);
    configs.zookeeper = writeConfig('zookeeper.yml', `zookeeper:\n  hosts:\n  - ${zk.endpoint}\n`);
  }, 300_000);

  afterAll(async () => {
    await Promise.all([etcd?.stop(), zk?.stop()]);
    if (dir) removeDir(dir);
  }, 60_000);

  it('each run reads the namespace with one range read on etcd3, the tree level by level on ZooKeeper', async () => {
    const counted: Record<string, Record<string, number>> = {};
    for (const [kind, server, protocol] of [
      ['etcd3', etcd!, 'etcd'],
      ['zookeeper', zk!, 'zookeeper'],
    ] as const) {
      const proxy = await startCountingProxy(server.endpoint, protocol);
      try {
        const config =
          kind === 'etcd3'
            ? writeConfig('etcd3-proxy.yml', `etcd3:\n  hosts: ${proxy.endpoint}\n  use_proxies: true\n`)
            : writeConfig('zookeeper-proxy.yml', `zookeeper:\n  hosts:\n  - ${proxy.endpoint}\n`);
        // Not spawnSync: the proxy forwards on this process's event loop.
        const r = await runCommand(
          process.execPath,
          [join(ROOT, 'bin', 'run.js'), '-c', config, 'list', '--all'],
          {
            timeoutMs: 60_000,
            env: USER_ENV,
          },
        );
        expect(r.code, r.stderr).toBe(0);
        expect((r.stdout.match(/^\+ Cluster: /gm) ?? []).length).toBe(CLUSTERS);
        counted[kind] = proxy.counts();
      } finally {
        await proxy.close();
      }
    }
    figures.record('requests', counted);
    console.log(`DCS requests of one list --all: ${JSON.stringify(counted)}`);
    expect(counted['etcd3']?.['Range']).toBe(1);
  }, 120_000);

  it(`list --all: median at most ${TARGET_MS.etcd3} ms on etcd3 and ${TARGET_MS.zookeeper} ms on ZooKeeper`, async () => {
    const cases = [
      ['etcd3', ['list', '--all']],
      ['zookeeper', ['list', '--all']],
      ['etcd3', ['list', '--all', '-f', 'json']],
      ['zookeeper', ['list', '--all', '-f', 'json']],
      ['etcd3', ['topology', '--all']],
      ['zookeeper', ['topology', '--all']],
    ] as const;
    const samples = cases.map(() => [] as Sample[]);
    for (let run = 0; run < RUNS; run++) {
      cases.forEach(([kind, args], i) => samples[i]!.push(runOnce(configs[kind], args)));
    }
    const rows = cases.map(([kind, args], i) => ({
      dcs: kind,
      command: args.join(' '),
      medianMs: Math.round(median(samples[i]!.map((s) => s.ms))),
      minMs: Math.round(Math.min(...samples[i]!.map((s) => s.ms))),
      maxMs: Math.round(Math.max(...samples[i]!.map((s) => s.ms))),
      medianPeakRssMiB: Math.round(median(samples[i]!.map((s) => s.rssMiB)) * 10) / 10,
      outputBytes: samples[i]![0]!.bytes,
      runs: RUNS,
    }));
    figures.record('wallTime', rows);
    console.log(
      [
        '| DCS | command | median | min | max | peak RSS (median) | output |',
        '|---|---|---|---|---|---|---|',
        ...rows.map(
          (r) =>
            `| ${r.dcs} | ${r.command} | ${r.medianMs} ms | ${r.minMs} ms | ${r.maxMs} ms | ${r.medianPeakRssMiB} MiB | ${r.outputBytes} B |`,
        ),
      ].join('\n'),
    );
    for (const r of rows.filter((x) => x.command === 'list --all'))
      expect(r.medianMs, `${r.dcs} ${r.command}`).toBeLessThanOrEqual(TARGET_MS[r.dcs]);
  }, 900_000);
});
