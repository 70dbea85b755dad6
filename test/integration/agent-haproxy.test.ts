/**
 * HAProxy in front of three pgwarden agents, configured as Patroni's documentation does (OPTIONS /primary for the
 * read-write port, OPTIONS /replica for the read-only port): writes through the rw port land on the leader, reads
 * through the ro port reach a replica, and after kill -9 of the leader agent and its postmaster writes through the
 * rw port resume on the new leader.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { startHaproxy, type Haproxy } from '../harness/haproxy.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';

const TTL = 20;

interface Answer {
  readonly port: number;
  readonly inRecovery: boolean;
  readonly value?: string;
}

/** One statement on a fresh connection through `port` (superuser, md5 over 127.0.0.1). */
async function through(port: number, sql: string): Promise<Answer> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password: 'zalando',
    database: 'postgres',
    connectionTimeoutMillis: 2000,
    statement_timeout: 5000,
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const info = await client.query<{ port: number; r: boolean }>(
      'SELECT inet_server_port() AS port, pg_is_in_recovery() AS r',
    );
    // A multi-statement string answers one result per statement: the last one carries `v`.
    const res: unknown = await client.query(sql);
    const results = (Array.isArray(res) ? res : [res]) as readonly pg.QueryResult<{ v?: unknown }>[];
    const row = info.rows[0];
    const v = results[results.length - 1]?.rows[0]?.v;
    return {
      port: Number(row?.port),
      inRecovery: row?.r === true,
      ...(typeof v === 'string' || typeof v === 'number' ? { value: String(v) } : {}),
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

const describeWithNeeds = describeNeeding('postgres', 'etcd', 'haproxy', 'bundle', 'root');

describeWithNeeds('HAProxy in front of pgwarden agents (Patroni docs setup)', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  let haproxy: Haproxy | undefined;
  let leader = '';
  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };
  const h = (): Haproxy => {
    if (!haproxy) throw new Error('no haproxy');
    return haproxy;
  };
  const pgPortOf = (name: string): number => c().nodes.find((n) => n.name === name)?.pgPort ?? -1;

  beforeAll(async () => {
    etcd = await startEtcd();
  });

  afterAll(async () => {
    try {
      await haproxy?.stop();
    } finally {
      try {
        await cluster?.stop();
      } finally {
        await etcd?.stop();
      }
    }
  });

  it('routes writes on the rw port to the leader and reads on the ro port to a replica', async () => {
    cluster = await startAgentCluster({
      etcdEndpoint: etcd?.endpoint ?? '',
      scope: 'haproxy',
      ttl: TTL,
      loopWait: 2,
      retryTimeout: 5,
    });
    leader = await c().waitReady({ timeoutMs: 90_000 });
    haproxy = await startHaproxy({ servers: c().nodes, inter: '1s', fall: 2, rise: 1 });

    let last = '';
    const w = await waitFor(
      'a write through the rw port',
      async () => {
        try {
          return await through(h().rwPort, 'CREATE TABLE t (id int); INSERT INTO t VALUES (1)');
        } catch (e) {
          last = e instanceof Error ? e.message : String(e);
          return false;
        }
      },
      15_000,
      200,
    ).catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}: ${last}`);
    });
    expect(w.inRecovery).toBe(false);
    expect(w.port).toBe(pgPortOf(leader));

    const replicaPorts = c()
      .nodes.filter((n) => n.name !== leader)
      .map((n) => n.pgPort);
    const seen = new Set<number>();
    await waitFor(
      'reads through the ro port on both replicas, with the row',
      async () => {
        const r = await through(h().roPort, 'SELECT count(*) AS v FROM t').catch(() => undefined);
        if (r?.inRecovery && r.value === '1') seen.add(r.port);
        return seen.size === 2;
      },
      15_000,
      100,
    );
    expect([...seen].sort()).toEqual([...replicaPorts].sort());
    const states = await h().states();
    expect(states.filter((s) => s.proxy === 'primary' && s.status === 'UP').map((s) => s.server)).toEqual([
      leader,
    ]);
  }, 120_000);

  it('resumes writes through the rw port on the new leader after kill -9 of the leader', async () => {
    expect(leader).not.toBe('');
    const li = c().nodes.findIndex((n) => n.name === leader);
    const t0 = Date.now();
    await c().kill9(li);
    const w = await waitFor(
      'a write through the rw port after the failover',
      async () => {
        const r = await through(h().rwPort, 'INSERT INTO t VALUES (2); SELECT count(*) AS v FROM t').catch(
          () => undefined,
        );
        return r && !r.inRecovery ? r : false;
      },
      (TTL + 20) * 1000,
      200,
    );
    const elapsed = Date.now() - t0;
    const newLeader = c().nodes.find((n) => n.pgPort === w.port)?.name ?? '?';
    console.log(
      `haproxy: writes through the rw port resumed on ${newLeader} ${elapsed} ms after kill -9 of ${leader}`,
    );
    expect(newLeader).not.toBe(leader);
    expect(w.port).not.toBe(pgPortOf(leader));
    const again = await through(h().rwPort, 'SELECT count(*) AS v FROM t');
    expect(again.value).toBe('2');
    expect(elapsed).toBeLessThan((TTL + 15) * 1000);
    const ro = await waitFor(
      'a read through the ro port on the remaining replica',
      async () => {
        const r = await through(h().roPort, 'SELECT count(*) AS v FROM t').catch(() => undefined);
        return r?.inRecovery && r.value === '2' ? r : false;
      },
      15_000,
      200,
    );
    expect(ro.port).not.toBe(pgPortOf(leader));
    expect(ro.port).not.toBe(w.port);
  }, 90_000);
});
