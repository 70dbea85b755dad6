/**
 * One cluster of three pgwarden agents (restapi.authentication on) per DCS for a describe.each over etcd3 and
 * ZooKeeper: registers beforeAll/afterAll and hands the tests the CLI runners (pgwarden and real patronictl with the
 * node's configuration), raw REST calls with or without Basic auth, and a fresh DCS view.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd } from '../harness/etcd.js';
import type { Need } from '../harness/requirements.js';
import { runCommand, type CommandResult } from '../harness/patroni.js';
import { startZooKeeper } from '../harness/zookeeper.js';
import { createDcs } from '../../src/dcs/registry.js';
import type { Cluster } from '../../src/model/cluster.js';

export type Kind = 'etcd3' | 'zookeeper';

/** What the agent clusters of this suite need from the machine (test/harness/requirements.ts). */
export const AGENT_SUITE_NEEDS: readonly Need[] = [
  'postgres',
  'etcd',
  'zookeeper',
  'patronictl',
  'bundle',
  'root',
];

const PGWARDEN = resolve(import.meta.dirname, '..', '..', 'bin', 'run.js');
export const AUTH = { username: 'admin', password: 'api-secret' } as const;
export const BASIC = `Basic ${Buffer.from(`${AUTH.username}:${AUTH.password}`).toString('base64')}`;

export interface Answer {
  readonly status: number;
  readonly body: string;
}

export const show = (what: string, r: CommandResult): string =>
  `${what} exited ${String(r.code)}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

/** The lines after the last table border (the result lines). */
export function afterTable(stdout: string): string[] {
  const lines = stdout.trimEnd().split('\n');
  const last = lines.map((l) => l.startsWith('+')).lastIndexOf(true);
  return lines.slice(last + 1);
}

export interface AgentSuite {
  readonly kind: Kind;
  readonly scope: string;
  cluster(): AgentCluster;
  port(name: string): number;
  indexOf(name: string): number;
  /** `pgwarden -c CONFIG ...` (default: node 1's configuration, which holds restapi.authentication). */
  pgwarden(args: readonly string[], config?: string): Promise<CommandResult>;
  patronictl(args: readonly string[], config?: string): Promise<CommandResult>;
  /** A CLI configuration next to the cluster: scope, namespace, the DCS, then `extra` YAML. */
  ctlConfig(file: string, extra: string): string;
  readDcs(): Promise<Cluster>;
  /** One primary and streaming replicas; the leader's name. */
  leaderName(): Promise<string>;
  /** A REST call; `authorization` null sends no header. */
  call(
    port: number,
    method: string,
    path: string,
    body?: unknown,
    authorization?: string | null,
  ): Promise<Answer & { readonly wwwAuthenticate: string | null }>;
  diag(): string;
}

export function agentSuite(kind: Kind, scope: string): AgentSuite {
  let server: { readonly endpoint: string; stop(): Promise<void> } | undefined;
  let agents: AgentCluster | undefined;
  const endpoint = (): string => server?.endpoint ?? '';
  const cluster = (): AgentCluster => {
    if (!agents) throw new Error('no cluster (see beforeAll)');
    return agents;
  };
  const env = (): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: cluster().dir,
    LANG: 'C.UTF-8',
    PGPASSWORD: 'zalando',
  });
  const nodeConfig = (): string => cluster().nodes[0]?.configFile ?? '';

  beforeAll(async () => {
    server = kind === 'zookeeper' ? await startZooKeeper() : await startEtcd();
    agents = await startAgentCluster({
      dcs: kind,
      etcdEndpoint: server.endpoint,
      scope,
      ttl: 20,
      loopWait: 2,
      retryTimeout: 5,
      restapiAuth: AUTH,
    });
    await agents.waitReady({ timeoutMs: 120_000 });
  }, 180_000);

  afterAll(async () => {
    try {
      await agents?.stop();
    } finally {
      await server?.stop();
    }
  }, 120_000);

  return {
    kind,
    scope,
    cluster,
    port(name) {
      const n = cluster().nodes.find((x) => x.name === name);
      if (!n) throw new Error(`no node ${name}`);
      return n.restPort;
    },
    indexOf: (name) => cluster().nodes.findIndex((n) => n.name === name),
    pgwarden: (args, config = nodeConfig()) =>
      runCommand(process.execPath, [PGWARDEN, '-c', config, ...args], {
        timeoutMs: 90_000,
        cwd: cluster().dir,
        env: env(),
      }),
    patronictl: (args, config = nodeConfig()) =>
      runCommand('/usr/bin/patronictl', ['-c', config, ...args], {
        timeoutMs: 90_000,
        cwd: cluster().dir,
        env: env(),
      }),
    ctlConfig(file, extra) {
      const dcs =
        kind === 'zookeeper'
          ? `zookeeper:\n  hosts:\n  - ${endpoint()}\n`
          : `etcd3:\n  hosts: ${endpoint()}\n`;
      const path = join(cluster().dir, file);
      writeFileSync(path, `scope: ${scope}\nnamespace: ${cluster().namespace}\n${dcs}${extra}`);
      return path;
    },
    async readDcs() {
      const dcs = await createDcs(
        kind === 'zookeeper'
          ? { kind, hosts: [endpoint()] }
          : { kind, hosts: [endpoint()], protocol: 'http' },
        { namespace: cluster().namespace, scope, ttl: 30, retryTimeout: 5, ctl: true },
      );
      try {
        return await dcs.getCluster();
      } finally {
        await dcs.close();
      }
    },
    leaderName: () => cluster().waitReady({ timeoutMs: 60_000 }),
    async call(port, method, path, body, authorization = BASIC) {
      const headers: Record<string, string> = {};
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (authorization !== null) headers['authorization'] = authorization;
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(60_000),
      });
      return {
        status: res.status,
        body: await res.text(),
        wwwAuthenticate: res.headers.get('www-authenticate'),
      };
    },
    diag: () => cluster().logTails(30),
  };
}
