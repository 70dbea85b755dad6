/**
 * `list --all` / `topology --all` on a real namespace of several clusters (issue 14), on etcd3 and on ZooKeeper:
 * a running two-node pgwarden cluster (PostgreSQL 15) and three more clusters written through the DCS as agents
 * write them (Patroni 3.0.2 and 4.1.4 member keys, tags, a cluster with no leader). In every format the output of
 * `--all` says what `list CLUSTER` says of each cluster, in name order: the same text for the tables, the same
 * rows for json, yaml and tsv (one document, the union of the columns).
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd } from '../harness/etcd.js';
import { runCommand, type CommandResult } from '../harness/patroni.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { startZooKeeper } from '../harness/zookeeper.js';
import type { Dcs } from '../../src/dcs/dcs.js';
import { createDcs } from '../../src/dcs/registry.js';

const PGWARDEN = resolve(import.meta.dirname, '..', '..', 'bin', 'run.js');
const NAMESPACE = '/fleet';
const FORMATS = ['pretty', 'tsv', 'json', 'yaml'] as const;
const show = (what: string, r: CommandResult): string =>
  `${what} exited ${String(r.code)}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

const describeWithNeeds = describeNeeding('postgres', 'etcd', 'zookeeper', 'bundle', 'root');

function memberJson(port: number, version: string, role: string, tags?: Record<string, unknown>): string {
  return JSON.stringify({
    conn_url: `postgres://127.0.0.1:${port}/postgres`,
    api_url: `http://127.0.0.1:${port + 3000}/patroni`,
    state: role === 'replica' ? 'streaming' : 'running',
    role,
    version,
    xlog_location: 50331808,
    receive_lsn: 50331808,
    replay_lsn: 50331808,
    timeline: 1,
    ...(tags ? { tags } : {}),
  });
}

/** Records per row of a TSV document, empty cells left out. */
function tsvRows(text: string): Record<string, string>[] {
  const [head, ...lines] = text.trimEnd().split('\n');
  const header = (head ?? '').split('\t');
  return lines.map((l) =>
    Object.fromEntries(
      l
        .split('\t')
        .map((v, i) => [header[i] ?? '?', v] as const)
        .filter(([, v]) => v !== ''),
    ),
  );
}

/** What the outputs of `list NAME` for each cluster, in order, say as one document of `format`. */
function combined(format: string, outs: readonly string[]): unknown {
  if (format === 'json') return outs.flatMap((o) => JSON.parse(o) as unknown[]);
  if (format === 'yaml') return outs.flatMap((o) => parseYaml(o) as unknown[]);
  if (format === 'tsv') return outs.flatMap(tsvRows);
  return outs.join('');
}
function parsed(format: string, out: string): unknown {
  if (format === 'json') return JSON.parse(out) as unknown;
  if (format === 'yaml') return parseYaml(out) as unknown;
  if (format === 'tsv') return tsvRows(out);
  return out;
}

describeWithNeeds.each(['etcd3', 'zookeeper'] as const)('list --all on %s', (kind) => {
  let server: { readonly endpoint: string; stop(): Promise<void> } | undefined;
  let cluster: AgentCluster | undefined;
  const writers: Dcs[] = [];
  let config = '';

  const pgwarden = (args: readonly string[]): Promise<CommandResult> =>
    runCommand(process.execPath, [PGWARDEN, '-c', config, ...args], {
      timeoutMs: 90_000,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: cluster?.dir ?? '/', LANG: 'C.UTF-8' },
    });

  /** A cluster written as its agents would: initialize, config, members, the leader lock (held by the first). */
  async function writeCluster(
    scope: string,
    version: string,
    members: readonly [string, number, Record<string, unknown>?][],
    withLeader: boolean,
  ): Promise<void> {
    const target =
      kind === 'zookeeper'
        ? { kind, hosts: [server!.endpoint] }
        : { kind, hosts: [server!.endpoint], protocol: 'http' as const };
    for (const [i, [name, port, tags]] of members.entries()) {
      const dcs = await createDcs(target, {
        namespace: NAMESPACE,
        scope,
        name,
        // Nothing refreshes these writers' etcd lease: it must outlive the file on a loaded machine (a member key
        // gone after 60 s made `orphan`, which has nothing else, disappear from the later tests).
        ttl: 3600,
        retryTimeout: 10,
        ctl: false,
      });
      writers.push(dcs);
      const primary = i === 0 && withLeader;
      const role = primary ? (version === '3.0.2' ? 'master' : 'primary') : 'replica';
      expect(await dcs.touchMember(memberJson(port, version, role, tags))).toBe(true);
      if (primary) {
        expect(await dcs.initialize(true, `7710821883631976${port}`)).toBe(true);
        expect(await dcs.setConfigValue('{"ttl":60,"loop_wait":10}')).toBe(true);
        expect(await dcs.attemptToAcquireLeader()).toBe(true);
      }
    }
  }

  beforeAll(async () => {
    server = kind === 'zookeeper' ? await startZooKeeper() : await startEtcd();
    cluster = await startAgentCluster({
      dcs: kind,
      etcdEndpoint: server.endpoint,
      namespace: NAMESPACE,
      scope: 'main',
      nodes: 2,
    });
    await writeCluster(
      'legacy',
      '3.0.2',
      [
        ['l1', 6001],
        ['l2', 6002, { nofailover: true }],
      ],
      true,
    );
    await writeCluster(
      'edge',
      '4.1.4',
      [
        ['e1', 6101],
        ['e2', 6102],
        ['e3', 6103, { replicatefrom: 'e2' }],
      ],
      true,
    );
    await writeCluster('orphan', '4.1.4', [['o1', 6201]], false);
    const dcs =
      kind === 'zookeeper'
        ? `zookeeper:\n  hosts:\n  - ${server.endpoint}\n`
        : `etcd3:\n  hosts: ${server.endpoint}\n`;
    config = join(cluster.dir, 'ctl.yml');
    writeFileSync(config, `scope: main\nnamespace: ${NAMESPACE}\n${dcs}`);
    await cluster.waitReady({ timeoutMs: 120_000 });
  }, 240_000);

  afterAll(async () => {
    try {
      await Promise.all(writers.map((d) => d.close().catch(() => undefined)));
      await cluster?.stop();
    } finally {
      await server?.stop();
    }
  }, 120_000);

  const NAMES = ['edge', 'legacy', 'main', 'orphan'];

  it.each([...FORMATS.map((f) => ['list', f] as const), ['topology', 'topology'] as const])(
    '%s --all (-f %s) says what list says of each cluster, in name order',
    { timeout: 180_000 },
    async (command, format) => {
      const formatArgs = command === 'list' ? ['-f', format] : [];
      // The running cluster's WAL positions may move between two reads: compare until they agree.
      await waitFor(
        `${command} --all -f ${format} to equal one ${command} per cluster`,
        async () => {
          const all = await pgwarden([command, '--all', ...formatArgs]);
          expect(all.code, show('--all', all)).toBe(0);
          const each: string[] = [];
          for (const name of NAMES) {
            const one = await pgwarden([command, name, ...formatArgs]);
            expect(one.code, show(name, one)).toBe(0);
            each.push(one.stdout);
          }
          if (format === 'pretty' || format === 'topology') {
            expect([...all.stdout.matchAll(/^\+ Cluster: (\w+) /gm)].map((m) => m[1])).toEqual(NAMES);
          } else if (format === 'tsv') {
            expect(all.stdout.split('\n').filter((l) => l.startsWith('Cluster\t'))).toHaveLength(1);
          }
          expect(parsed(format, all.stdout)).toEqual(combined(format, each));
          return true;
        },
        90_000,
        1_000,
      );
    },
  );

  it('-W refreshes the whole namespace', { timeout: 60_000 }, async () => {
    // Until interrupted: stopped by the runner's timeout after a few refreshes (2 s apart); the screen being
    // printed when it is killed may be cut short, so only screens followed by the next one count.
    const r = await runCommand(process.execPath, [PGWARDEN, '-c', config, 'list', '--all', '-W', '-t'], {
      timeoutMs: 14_000,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: cluster?.dir ?? '/', LANG: 'C.UTF-8' },
    });
    const complete = r.stdout.split('\x1b[2J\x1b[1;1H').slice(1, -1);
    expect(complete.length, show('-W', r)).toBeGreaterThanOrEqual(2);
    for (const s of complete) {
      expect(s).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n/);
      expect([...s.matchAll(/^\+ Cluster: (\w+) /gm)].map((m) => m[1])).toEqual(NAMES);
    }
  });
});
