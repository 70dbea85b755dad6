/**
 * A standby cluster whose remote primary cluster fails over to a new timeline (Patroni 4.1.4's
 * `_handle_rewind_or_reinitialize` against `get_remote_member`): pgwarden primary cluster A (two members) and a
 * two-member pgwarden standby cluster B following A's primary. A's replica is stopped, a row written on A's primary
 * reaches B only, then A's primary is killed and A's replica, started again, is promoted on timeline 2, forked before
 * that row. Once B's `standby_cluster` names A's new primary, B's standby leader and its replica are found diverged
 * from the remote primary, are rewound from it (pg_rewind) and follow timeline 2: every row of the new primary is
 * there, the new writes arrive, and the standby leader never becomes writable.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';

/** On failure, the agents' log tails go with the error. */
async function withLogs<T>(clusters: readonly (AgentCluster | undefined)[], p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    const tails = clusters.map((c) => c?.logTails(80) ?? '').join('\n');
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${tails}`);
  }
}

const describeWithNeeds = describeNeeding('postgres', 'etcd', 'bundle', 'root');

describeWithNeeds('pgwarden agents: a standby cluster after its remote primary cluster failed over', () => {
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
  const rowsOn = (c: AgentCluster, i: number, want: string, timeoutMs = 60_000): Promise<true> =>
    withLogs(
      [source, standby],
      waitFor(
        `rows ${want} on ${c.nodes[i]?.name}`,
        async () => (await rows(c, i)) === want || undefined,
        timeoutMs,
      ),
    );

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

  it('rewinds the standby leader and its replica from the new remote primary and follows its timeline', async () => {
    source = await startAgentCluster({
      etcdEndpoint: etcd?.endpoint ?? '',
      scope: 'tl-source',
      nodes: 2,
      ttl: 10,
    });
    const oldName = await a().waitReady({ timeoutMs: 90_000 });
    const old = a().nodes.findIndex((n) => n.name === oldName);
    const next = 1 - old;
    expect((await a().psql(old, 'CREATE TABLE t (id int); INSERT INTO t VALUES (1)')).code).toBe(0);
    await rowsOn(a(), next, '1');

    standby = await startAgentCluster({
      etcdEndpoint: etcd?.endpoint ?? '',
      scope: 'tl-standby',
      nodes: 2,
      bootstrapDcsExtra: [
        'standby_cluster:',
        '  host: 127.0.0.1',
        `  port: ${a().nodes[old]?.pgPort ?? 0}`,
        '  create_replica_methods: [basebackup]',
      ].join('\n'),
    });
    const { leader } = await withLogs(
      [b()],
      waitFor(
        'a standby leader and a replica in the standby cluster',
        async () => {
          const r = await Promise.all([0, 1].map(async (i) => (await b().status(i))?.role));
          const sl = r.indexOf('standby_leader');
          return sl >= 0 && r[1 - sl] === 'replica' ? { leader: sl } : undefined;
        },
        120_000,
        500,
      ),
    );
    const replica = 1 - leader;
    await rowsOn(b(), leader, '1');
    await rowsOn(b(), replica, '1');

    // Row 2 reaches the standby cluster but never A's replica, which is then promoted: timeline 2 forks before it.
    await a().terminate(next);
    expect((await a().psql(old, 'INSERT INTO t VALUES (2)')).code).toBe(0);
    await rowsOn(b(), leader, '1,2');
    await rowsOn(b(), replica, '1,2');
    await a().kill9(old);
    a().start(next);
    await withLogs(
      [a()],
      waitFor(
        'the former replica promoted',
        async () => (await a().status(next))?.role === 'primary',
        120_000,
        500,
      ),
    );
    expect((await a().psql(next, 'SELECT timeline_id FROM pg_control_checkpoint()')).stdout.trim()).not.toBe(
      '1',
    );
    expect((await a().psql(next, 'INSERT INTO t VALUES (3)')).code).toBe(0);

    // The standby cluster is pointed at the new primary (PATCH /config on its standby leader).
    const patch = await fetch(`http://127.0.0.1:${b().nodes[leader]?.restPort ?? 0}/config`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ standby_cluster: { port: a().nodes[next]?.pgPort ?? 0 } }),
    });
    expect(patch.status).toBe(200);

    await rowsOn(b(), leader, '1,3', 120_000);
    await rowsOn(b(), replica, '1,3', 120_000);
    const tl = async (i: number): Promise<number | undefined> => (await b().status(i))?.timeline;
    await withLogs(
      [b()],
      waitFor(
        'both standby members on timeline 2',
        async () => (await tl(leader)) === 2 && (await tl(replica)) === 2,
        60_000,
      ),
    );
    const logs = b().logTails(100000);
    expect(logs).toMatch(/running pg_rewind from remote_member/);
    expect((await b().status(leader))?.role).toBe('standby_leader');
    expect((await b().psql(leader, 'SELECT pg_is_in_recovery()')).stdout.trim()).toBe('t');

    // New writes on the new remote primary reach both members of the standby cluster.
    expect((await a().psql(next, 'INSERT INTO t VALUES (4)')).code).toBe(0);
    await rowsOn(b(), leader, '1,3,4');
    await rowsOn(b(), replica, '1,3,4');
  }, 600_000);
});
