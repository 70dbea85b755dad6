/**
 * A standby cluster (Patroni's `standby_cluster`): a one-node pgwarden primary cluster on PostgreSQL and etcd, with a
 * permanent physical slot, and a two-node pgwarden cluster whose bootstrap.dcs names it in `standby_cluster`. The
 * standby cluster's first member clones the remote primary and becomes its standby leader (streaming through the
 * slot, read-only, GET /standby_leader 200, /primary 503); its second member replicates from the standby leader.
 * `pgwarden promote-cluster` (which removes `standby_cluster` from the dynamic configuration) promotes the standby
 * leader, and every row written on the primary cluster before is there.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { runCommand } from '../harness/patroni.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { PGWARDEN } from '../helpers/patroni-suite.js';

/** On failure, the agents' log tails go with the error. */
async function withLogs<T>(c: AgentCluster, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${c.logTails(60)}`);
  }
}

const describeWithNeeds = describeNeeding('postgres', 'etcd', 'bundle', 'root');

describeWithNeeds('pgwarden agents: a standby cluster replicating from a pgwarden primary cluster', () => {
  let etcd: EtcdServer | undefined;
  let source: AgentCluster | undefined;
  let standby: AgentCluster | undefined;
  const a = (): AgentCluster => {
    if (!source) throw new Error('no primary cluster');
    return source;
  };
  const b = (): AgentCluster => {
    if (!standby) throw new Error('no standby cluster');
    return standby;
  };
  const rows = async (c: AgentCluster, i: number): Promise<string> =>
    (await c.psql(i, "SELECT string_agg(id::text, ',' ORDER BY id) FROM t")).stdout.trim();

  beforeAll(async () => {
    etcd = await startEtcd();
  });

  afterAll(async () => {
    try {
      await standby?.stop();
    } finally {
      try {
        await source?.stop();
      } finally {
        await etcd?.stop();
      }
    }
  });

  it('runs a read-only standby leader and its replica, and promotes it once standby_cluster is removed', async () => {
    source = await startAgentCluster({
      etcdEndpoint: etcd?.endpoint ?? '',
      scope: 'sb-source',
      nodes: 1,
      bootstrapDcsExtra: 'slots:\n  standby_slot:\n    type: physical\n',
    });
    await a().waitReady({ timeoutMs: 90_000 });
    expect((await a().psql(0, 'CREATE TABLE t (id int); INSERT INTO t VALUES (1)')).code).toBe(0);
    const sourcePort = a().nodes[0]?.pgPort ?? 0;

    standby = await startAgentCluster({
      etcdEndpoint: etcd?.endpoint ?? '',
      scope: 'sb-standby',
      nodes: 2,
      bootstrapDcsExtra: [
        'standby_cluster:',
        '  host: 127.0.0.1',
        `  port: ${sourcePort}`,
        '  primary_slot_name: standby_slot',
        '  create_replica_methods: [basebackup]',
        '',
      ].join('\n'),
    });
    const roles = async (): Promise<(string | undefined)[]> =>
      Promise.all([0, 1].map(async (i) => (await b().status(i))?.role));
    // Boxed: waitFor takes a falsy result for "not yet", and index 0 is a valid answer.
    const { leader } = await withLogs(
      b(),
      waitFor(
        'a standby leader and a replica in the standby cluster',
        async () => {
          const r = await roles();
          const sl = r.indexOf('standby_leader');
          return sl >= 0 && r[1 - sl] === 'replica' ? { leader: sl } : undefined;
        },
        120_000,
        500,
      ),
    );
    const replica = 1 - leader;
    const leaderName = b().nodes[leader]?.name ?? '';

    // The standby leader streams from the remote primary through the configured slot; it is never writable.
    await waitFor(
      'the standby leader streaming from the primary cluster through standby_slot',
      async () =>
        (
          await a().psql(
            0,
            `SELECT count(*) FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE r.application_name = '${leaderName}' AND s.slot_name = 'standby_slot' AND r.state = 'streaming'`,
          )
        ).stdout.trim() === '1',
      60_000,
    );
    expect((await a().psql(0, 'INSERT INTO t VALUES (2)')).code).toBe(0);
    for (const i of [leader, replica]) {
      await waitFor(`rows 1,2 on ${b().nodes[i]?.name}`, async () => (await rows(b(), i)) === '1,2', 30_000);
    }
    expect((await b().psql(leader, 'SELECT pg_is_in_recovery()')).stdout.trim()).toBe('t');
    expect((await b().psql(leader, 'INSERT INTO t VALUES (99)')).code).not.toBe(0);
    expect((await b().rest(leader, '/standby_leader')).status).toBe(200);
    expect((await b().rest(leader, '/primary')).status).toBe(503);
    expect((await b().rest(replica, '/standby_leader')).status).toBe(503);
    const patroni = JSON.parse((await b().rest(leader, '/patroni')).body) as Record<string, unknown>;
    expect(patroni['role']).toBe('standby_leader');
    expect(patroni['replication_state']).toBe('streaming');
    // The replica of the standby cluster streams from the standby leader, not from the remote primary.
    await waitFor(
      'the replica streaming from the standby leader',
      async () =>
        (
          await b().psql(
            leader,
            `SELECT count(*) FROM pg_stat_replication WHERE application_name = '${b().nodes[replica]?.name ?? ''}' AND state = 'streaming'`,
          )
        ).stdout.trim() === '1',
      60_000,
    );

    // Promotion with the CLI.
    expect((await a().psql(0, 'INSERT INTO t VALUES (3)')).code).toBe(0);
    await waitFor(`row 3 on the standby leader`, async () => (await rows(b(), leader)) === '1,2,3', 30_000);
    // `pgwarden promote-cluster` (patronictl 4.1.4's): PATCH /config {"standby_cluster": null} on the leader, then it
    // waits until the leader runs as primary.
    const promote = await runCommand(
      process.execPath,
      [PGWARDEN, '-c', b().nodes[leader]?.configFile ?? '', 'promote-cluster', '--force'],
      { timeoutMs: 120_000, cwd: b().dir },
    );
    expect(promote.code, promote.stderr + promote.stdout).toBe(0);
    expect(promote.stdout).toMatch(/cluster is successfully promoted/);
    await waitFor(
      'the former standby leader promoted',
      async () => (await b().status(leader))?.role === 'primary',
      60_000,
      500,
    );
    expect((await b().psql(leader, 'SELECT pg_is_in_recovery()')).stdout.trim()).toBe('f');
    expect(await rows(b(), leader)).toBe('1,2,3');
    expect((await b().psql(leader, 'INSERT INTO t VALUES (4)')).code).toBe(0);
    await waitFor(
      'the new write on the replica of the promoted cluster',
      async () => (await rows(b(), replica)) === '1,2,3,4',
      60_000,
    );
    expect((await b().rest(leader, '/primary')).status).toBe(200);
  }, 300_000);
});
