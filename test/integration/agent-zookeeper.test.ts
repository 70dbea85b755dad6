/**
 * Three pgwarden agents on real PostgreSQL 15 and ZooKeeper 3.8: bootstrap (1 leader + 2 streaming replicas,
 * checked via REST and real patronictl reading ZooKeeper with kazoo), then kill -9 of the leader agent and its
 * postmaster: a replica takes over once the leader's ephemeral lock node expires with its session.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startZooKeeper, type ZooKeeperServer } from '../harness/zookeeper.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { createDcs } from '../../src/dcs/registry.js';
import type { Cluster } from '../../src/model/cluster.js';

const TTL = 20;

const describeWithNeeds = describeNeeding('postgres', 'zookeeper', 'patronictl', 'bundle', 'root');

describeWithNeeds('pgwarden agents on ZooKeeper: bootstrap and failover after kill -9', () => {
  let zk: ZooKeeperServer | undefined;
  let cluster: AgentCluster | undefined;
  let firstLeader = '';
  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };
  const indexOf = (name: string): number => c().nodes.findIndex((n) => n.name === name);
  const readDcs = async (): Promise<Cluster> => {
    const dcs = await createDcs(
      { kind: 'zookeeper', hosts: [zk?.endpoint ?? ''] },
      { namespace: '/service', scope: c().scope, ttl: 30, retryTimeout: 5, ctl: true },
    );
    try {
      return await dcs.getCluster();
    } finally {
      await dcs.close();
    }
  };

  beforeAll(async () => {
    zk = await startZooKeeper();
  }, 90_000);

  afterAll(async () => {
    try {
      await cluster?.stop();
    } finally {
      await zk?.stop();
    }
  });

  it('bootstraps one leader and two streaming replicas that real patronictl lists', async () => {
    const t0 = Date.now();
    cluster = await startAgentCluster({
      dcs: 'zookeeper',
      etcdEndpoint: zk?.endpoint ?? '',
      scope: 'zkagents',
      ttl: TTL,
      loopWait: 2,
      retryTimeout: 5,
    });
    firstLeader = await c().waitReady({ timeoutMs: 90_000 });
    console.log(`zookeeper bootstrap: 1 leader + 2 streaming replicas after ${Date.now() - t0} ms`);

    const res = await waitFor(
      'patronictl list with 1 Leader and 2 Replicas running',
      async () => {
        const r = await c().patronictl(['list']);
        const rows = r.stdout.split('\n').filter((l) => /\|\s*pg\d\s*\|/.test(l));
        const leaders = rows.filter((l) => /\|\s*Leader\s*\|\s*running\s*\|/.test(l));
        const replicas = rows.filter((l) => /\|\s*Replica\s*\|\s*(running|streaming)\s*\|/.test(l));
        return r.code === 0 && leaders.length === 1 && replicas.length === 2 ? r : false;
      },
      20_000,
      500,
    );
    console.log(res.stdout);
    expect(res.stdout).toContain(`| ${firstLeader} `);

    const view = await readDcs();
    expect(view.leader?.name).toBe(firstLeader);
    expect(view.initialize).toMatch(/^\d{10,}$/);
    expect(view.members.map((m) => m.name).sort()).toEqual(['pg1', 'pg2', 'pg3']);

    const li = indexOf(firstLeader);
    expect((await c().psql(li, 'CREATE TABLE t (id int); INSERT INTO t VALUES (1)')).code).toBe(0);
    for (let i = 0; i < 3; i++) {
      if (i === li) continue;
      await waitFor(
        `row replicated to ${c().nodes[i]?.name}`,
        async () => (await c().psql(i, 'SELECT count(*) FROM t')).stdout.trim() === '1',
        15_000,
      );
    }
  }, 120_000);

  it('fails over after kill -9 of the leader agent and its postmaster', async () => {
    expect(firstLeader).not.toBe('');
    const li = indexOf(firstLeader);
    const t0 = Date.now();
    await c().kill9(li);
    const promoted = await waitFor(
      'a survivor to be promoted',
      async () => {
        const ps = (await c().primaries()).filter((p) => p !== firstLeader);
        return ps.length === 1 ? { name: ps[0], at: Date.now() } : false;
      },
      (TTL + 20) * 1000,
      100,
    );
    const second = await c().waitReady({ timeoutMs: 30_000, exclude: [firstLeader] });
    const elapsed = Date.now() - t0;
    const promotedAfter = promoted.at - t0;
    console.log(
      `zookeeper failover: ${second} promoted ${promotedAfter} ms after kill -9 of ${firstLeader}, ` +
        `the other replica streaming from it ${elapsed - promotedAfter} ms later`,
    );
    expect(second).toBe(promoted.name);
    expect(second).not.toBe(firstLeader);
    // The session expires ttl after the last heartbeat; the survivors then race at once (watch), plus load.
    expect(promotedAfter).toBeLessThan((TTL + 8) * 1000);
    // The new leader creates the members' slots before promoting: no failed START_REPLICATION, which would
    // cost the replica wal_retrieve_retry_interval (5 s).
    expect(elapsed - promotedAfter).toBeLessThan(4500);
    const ni = indexOf(second);
    const w = await c().psql(ni, 'INSERT INTO t VALUES (2); SELECT count(*) FROM t');
    expect(w.code).toBe(0);
    expect(w.stdout.trim()).toBe('2');
    expect((await c().status(ni))?.timeline).toBe(2);
    const view = await waitFor(
      'the DCS to name the new leader',
      async () => {
        const v = await readDcs();
        return v.leader?.name === second ? v : false;
      },
      10_000,
    );
    expect(view.leader?.name).toBe(second);
  }, 90_000);
});
