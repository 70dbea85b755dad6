/**
 * The killed primary comes back: three pgwarden agents on PostgreSQL 15 and etcd, kill -9 of the leader agent and
 * its postmaster, failover, a write on the new leader, then the killed agent is started again on its existing data
 * directory. With use_pg_rewind (bootstrap.dcs) and data checksums it runs crash recovery, finds its timeline
 * diverged from the new leader's, runs pg_rewind and rejoins as a streaming replica that has the new write.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';

const TTL = 20;

const describeWithNeeds = describeNeeding('pg_rewind', 'etcd', 'bundle', 'root');

describeWithNeeds('pgwarden agents: a killed primary rejoins with pg_rewind', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };
  const indexOf = (name: string): number => c().nodes.findIndex((n) => n.name === name);

  beforeAll(async () => {
    etcd = await startEtcd();
  });

  afterAll(async () => {
    try {
      await cluster?.stop();
    } finally {
      await etcd?.stop();
    }
  });

  it('restarts the killed leader as a streaming replica of the new leader after pg_rewind', async () => {
    cluster = await startAgentCluster({
      etcdEndpoint: etcd?.endpoint ?? '',
      scope: 'rejoin',
      ttl: TTL,
      loopWait: 2,
      retryTimeout: 5,
    });
    const first = await c().waitReady({ timeoutMs: 90_000 });
    const fi = indexOf(first);
    expect((await c().psql(fi, 'CREATE TABLE t (id int); INSERT INTO t VALUES (1)')).code).toBe(0);
    for (let i = 0; i < 3; i++) {
      if (i === fi) continue;
      await waitFor(
        `row replicated to ${c().nodes[i]?.name}`,
        async () => (await c().psql(i, 'SELECT count(*) FROM t')).stdout.trim() === '1',
        15_000,
      );
    }

    const t0 = Date.now();
    await c().kill9(fi);
    const second = await c().waitReady({ timeoutMs: (TTL + 20) * 1000, exclude: [first] });
    const failoverMs = Date.now() - t0;
    console.log(`failover: ${second} is primary ${failoverMs} ms after kill -9 of ${first}`);
    expect(second).not.toBe(first);
    const si = indexOf(second);
    expect((await c().psql(si, 'INSERT INTO t VALUES (2)')).code).toBe(0);

    const t1 = Date.now();
    c().start(fi);
    const leader = await c().waitReady({ timeoutMs: 60_000 });
    const rejoinMs = Date.now() - t1;
    console.log(
      `rejoin: ${first} is a streaming replica of ${leader} ${rejoinMs} ms after its agent restarted`,
    );
    expect(leader).toBe(second);
    const st = await c().status(fi);
    expect(st?.role).toBe('replica');
    expect(st?.state).toBe('running');
    const ls = await c().status(si);
    expect(ls?.replication?.some((r) => r.application_name === first && r.state === 'streaming')).toBe(true);

    // The row written on the new leader while the old one was down, and one written now, reach it.
    expect((await c().psql(si, 'INSERT INTO t VALUES (3)')).code).toBe(0);
    await waitFor(
      `rows 1..3 on ${first}`,
      async () =>
        (await c().psql(fi, "SELECT string_agg(id::text, ',' ORDER BY id) FROM t")).stdout.trim() === '1,2,3',
      15_000,
    );
    expect((await c().psql(fi, 'SELECT pg_is_in_recovery()')).stdout.trim()).toBe('t');
    const log = readFileSync(c().nodes[fi]?.logFile ?? '', 'utf8');
    expect(log).toContain('doing crash recovery in a single user mode');
    expect(log).toContain(`running pg_rewind from ${second}`);
    expect(log).toContain('pg_rewind exit code=0');
  }, 150_000);
});
