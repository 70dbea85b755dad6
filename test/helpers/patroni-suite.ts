/**
 * One real Patroni 3.0.2 cluster (3 nodes, restapi.authentication on, ttl 20 / loop_wait 2) per DCS for a
 * describe.each over etcd3 and ZooKeeper: registers beforeAll/afterAll and hands the tests pgwarden and patronictl
 * runners (`-c` node 1's patroni.yml by default) and a fresh DCS view.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { startEtcd } from '../harness/etcd.js';
import {
  runCommand,
  runPatronictl,
  startPatroniCluster,
  type CommandResult,
  type PatroniCluster,
  type PatroniDcs,
} from '../harness/patroni.js';
import { removeDir, tempDir } from '../harness/process.js';
import type { Need } from '../harness/requirements.js';
import { startZooKeeper } from '../harness/zookeeper.js';
import { createDcs } from '../../src/dcs/registry.js';
import type { Cluster } from '../../src/model/cluster.js';

export const PGWARDEN = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'bin', 'run.js');
/** What the Patroni clusters of this suite (and the pgwarden CLI run against them) need from the machine. */
export const PATRONI_SUITE_NEEDS: readonly Need[] = [
  'postgres',
  'etcd',
  'zookeeper',
  'patroni',
  'patronictl',
  'bundle',
  'root',
];
export const LAB_AUTH = { username: 'admin', password: 'lab-secret' } as const;

export function show(label: string, r: CommandResult): string {
  return `----- ${label} (exit ${String(r.code)})\n--- stdout:\n${r.stdout}--- stderr:\n${r.stderr}`;
}

/** The lines after the member table (result lines), without the table itself. */
export function afterTable(stdout: string): string[] {
  const lines = stdout.trimEnd().split('\n');
  const last = lines.map((l) => l.startsWith('+')).lastIndexOf(true);
  return lines.slice(last + 1);
}

export interface PatroniSuite {
  lab(): PatroniCluster;
  /** node 1's patroni.yml */
  cfg(): string;
  home(): string;
  env(): NodeJS.ProcessEnv;
  endpoint(): string;
  pgwarden(args: readonly string[], config?: string): Promise<CommandResult>;
  patronictl(args: readonly string[], config?: string): Promise<CommandResult>;
  readDcs(): Promise<Cluster>;
  showConfig(): Promise<string>;
}

export function patroniSuite(kind: PatroniDcs): PatroniSuite {
  let server: { readonly endpoint: string; stop(): Promise<void> } | undefined;
  let cluster: PatroniCluster | undefined;
  let home = '';
  let env: NodeJS.ProcessEnv = {};
  const lab = (): PatroniCluster => {
    if (!cluster) throw new Error('the Patroni cluster did not start (see beforeAll)');
    return cluster;
  };
  const cfg = (): string => lab().configFile(0);
  const pgwarden = (args: readonly string[], config = cfg()): Promise<CommandResult> =>
    runCommand(process.execPath, [PGWARDEN, '-c', config, ...args], { env, timeoutMs: 90_000, cwd: home });

  beforeAll(async () => {
    home = tempDir('ctl-actions-home');
    env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8', PGPASSWORD: 'zalando' };
    if (process.env.TZ !== undefined) env.TZ = process.env.TZ;
    server = kind === 'etcd3' ? await startEtcd() : await startZooKeeper();
    cluster = await startPatroniCluster({
      dcs: kind,
      dcsEndpoint: server.endpoint,
      restapiAuth: LAB_AUTH,
      nodes: 3,
      scope: 'lab',
      ttl: 20,
      loopWait: 2,
      retryTimeout: 5,
    });
  }, 300_000);

  afterAll(async () => {
    const errors: string[] = [];
    try {
      await cluster?.stop();
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    }
    try {
      await server?.stop();
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    }
    if (home) removeDir(home);
    if (errors.length > 0) throw new Error(errors.join('\n'));
  }, 120_000);

  return {
    lab,
    cfg,
    home: () => home,
    env: () => env,
    endpoint: () => server?.endpoint ?? '',
    pgwarden,
    patronictl: (args, config = cfg()) => runPatronictl(['-c', config, ...args], { env, timeoutMs: 90_000 }),
    async readDcs() {
      const endpoint = server?.endpoint ?? '';
      const dcs = await createDcs(
        kind === 'zookeeper' ? { kind, hosts: [endpoint] } : { kind, hosts: [endpoint], protocol: 'http' },
        { namespace: '/service', scope: 'lab', ttl: 30, retryTimeout: 5, ctl: true },
      );
      try {
        return await dcs.getCluster();
      } finally {
        await dcs.close();
      }
    },
    showConfig: async () => (await pgwarden(['show-config'])).stdout,
  };
}
