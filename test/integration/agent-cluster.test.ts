/**
 * Three pgwarden agents on real PostgreSQL 15 and etcd: bootstrap (1 leader + 2 streaming replicas, checked via
 * REST and real patronictl), kill -9 of the leader agent and its postmaster (a replica takes over within ttl),
 * SIGTERM of the new leader, with a SIGHUP in the middle of its shutdown (the lock is released and another member is
 * primary within seconds).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { createDcs } from '../../src/dcs/registry.js';
import type { Cluster } from '../../src/model/cluster.js';

const TTL = 20;

const describeWithNeeds = describeNeeding('postgres', 'etcd', 'patronictl', 'bundle', 'root');

describeWithNeeds('pgwarden agents: bootstrap, failover, switch on SIGTERM', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  let firstLeader = '';
  let secondLeader = '';
  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };
  const indexOf = (name: string): number => c().nodes.findIndex((n) => n.name === name);
  const readDcs = async (): Promise<Cluster> => {
    const dcs = await createDcs(
      { kind: 'etcd3', hosts: [etcd?.endpoint ?? ''], protocol: 'http' },
      { namespace: '/service', scope: c().scope, ttl: 30, retryTimeout: 5, ctl: true },
    );
    try {
      return await dcs.getCluster();
    } finally {
      await dcs.close();
    }
  };

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

  it('bootstraps one leader and two streaming replicas', async () => {
    const t0 = Date.now();
    cluster = await startAgentCluster({
      etcdEndpoint: etcd?.endpoint ?? '',
      ttl: TTL,
      loopWait: 2,
      retryTimeout: 5,
    });
    firstLeader = await c().waitReady({ timeoutMs: 90_000 });
    console.log(`bootstrap: 1 leader + 2 streaming replicas after ${Date.now() - t0} ms`);

    const li = indexOf(firstLeader);
    const st = await c().status(li);
    expect(st?.role).toBe('primary');
    expect(st?.state).toBe('running');

    // Real patronictl reads the DCS our agents wrote.
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

    // The DCS holds what a Patroni 4.1.4 leader writes.
    const dcsView = await readDcs();
    expect(dcsView.leader?.name).toBe(firstLeader);
    expect(dcsView.initialize).toMatch(/^\d{10,}$/);
    expect(dcsView.config?.raw).toBe(
      '{"ttl":20,"loop_wait":2,"retry_timeout":5,"maximum_lag_on_failover":1048576,"postgresql":{"use_pg_rewind":true,"use_slots":true,"parameters":{"max_connections":50,"shared_buffers":"32MB","wal_level":"replica","hot_standby":"on","max_wal_senders":10,"max_replication_slots":10,"wal_keep_size":"128MB","wal_log_hints":"on"}}}',
    );
    expect(dcsView.status.optime).toBeGreaterThan(0n);
    // 4.x status: every member's slot (ours at the optime) and retain_slots.
    expect(Object.keys(dcsView.status.slots).sort()).toEqual(['pg1', 'pg2', 'pg3']);
    expect(dcsView.status.retainSlots).toEqual(['pg1', 'pg2', 'pg3']);
    const leaderKey = dcsView.members.find((m) => m.name === firstLeader)?.data.raw ?? {};
    expect(Object.keys(leaderKey)).toEqual([
      'conn_url',
      'api_url',
      'state',
      'role',
      'version',
      'xlog_location',
      'timeline',
    ]);
    expect(leaderKey).toMatchObject({ state: 'running', role: 'primary', version: '4.1.4', timeline: 1 });
    for (const m of dcsView.members) {
      if (m.name !== firstLeader)
        expect(m.data.raw).toMatchObject({
          role: 'replica',
          state: 'running',
          replication_state: 'streaming',
        });
    }

    // Writes on the leader reach the replicas.
    expect((await c().psql(li, 'CREATE TABLE t (id int); INSERT INTO t VALUES (1)')).code).toBe(0);
    for (let i = 0; i < 3; i++) {
      if (i === li) continue;
      await waitFor(
        `row replicated to ${c().nodes[i]?.name}`,
        async () => (await c().psql(i, 'SELECT count(*) FROM t')).stdout.trim() === '1',
        15_000,
      );
    }
  });

  it('fails over within ttl after kill -9 of the leader agent and its postmaster', async () => {
    expect(firstLeader).not.toBe('');
    const li = indexOf(firstLeader);
    const t0 = Date.now();
    await c().kill9(li);
    secondLeader = await c().waitReady({ timeoutMs: (TTL + 20) * 1000, exclude: [firstLeader] });
    const elapsed = Date.now() - t0;
    console.log(`failover: ${secondLeader} is primary ${elapsed} ms after kill -9 of ${firstLeader}`);
    expect(secondLeader).not.toBe(firstLeader);
    expect(elapsed).toBeLessThan((TTL + 10) * 1000);
    const ni = indexOf(secondLeader);
    const w = await c().psql(ni, 'INSERT INTO t VALUES (2); SELECT count(*) FROM t');
    expect(w.code).toBe(0);
    expect(w.stdout.trim()).toBe('2');
    const st = await c().status(ni);
    expect(st?.timeline).toBe(2);
    const history = await waitFor(
      'history key after promotion',
      async () => {
        const h = (await readDcs()).history;
        return h && h.lines.length === 1 ? h : false;
      },
      10_000,
    );
    expect(history.lines[0]).toMatchObject({ timeline: 1, reason: 'no recovery target specified' });
    expect(history.lines[0]?.newLeader).toBe(secondLeader);
  }, 90_000);

  it('hands over at once when the leader gets SIGTERM', async () => {
    expect(secondLeader).not.toBe('');
    const li = indexOf(secondLeader);
    const node = c().nodes[li];
    const pid = c().pid(li);
    if (!node || pid === undefined) throw new Error(`${secondLeader} is not running`);
    const logBefore = readFileSync(node.logFile, 'utf8').length;
    const logSince = (): string => readFileSync(node.logFile, 'utf8').slice(logBefore);
    const t0 = Date.now();
    const stopping = c().terminate(li);
    // A SIGHUP in the middle of the shutdown (the reload handler is gone by then) must not kill the agent before it
    // has stopped PostgreSQL and released the lock.
    await waitFor('the shutdown to begin', async () => logSince().includes('shutting down'), 10_000, 10);
    process.kill(pid, 'SIGHUP');
    await stopping;
    const stopMs = Date.now() - t0;
    expect(logSince()).toContain('Leader key released');
    const third = await waitFor(
      'another member as primary',
      async () => {
        const ps = await c().primaries();
        return ps.length === 1 && ps[0] !== secondLeader ? ps[0] : false;
      },
      20_000,
      200,
    );
    const elapsed = Date.now() - t0;
    console.log(`SIGTERM: ${secondLeader} stopped in ${stopMs} ms; ${third} primary after ${elapsed} ms`);
    expect(elapsed).toBeLessThan(15_000);
    const ti = indexOf(third);
    let lastErr = '';
    const w = await waitFor(
      `a write on ${third}`,
      async () => {
        const r = await c().psql(ti, 'INSERT INTO t VALUES (3); SELECT count(*) FROM t');
        lastErr = r.stderr;
        return r.code === 0 ? r : false;
      },
      10_000,
      200,
    ).catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}: ${lastErr}\n${c().logTails(30)}`);
    });
    if (lastErr !== '') console.log(`first write attempts on ${third} failed with: ${lastErr}`);
    expect(w.stdout.trim()).toBe('3');
  }, 60_000);
});
