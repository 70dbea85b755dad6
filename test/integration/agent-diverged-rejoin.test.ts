/**
 * A demoted ex-primary whose timeline forked off the new leader's rejoins by itself (docs/faults.md `isolated`,
 * `dcs-split-leader-minority`). Three pgwarden agents on PostgreSQL 15 and etcd; each member reaches etcd, and is
 * reached by the others (PostgreSQL and REST API, as published in its member key), through relays the test can cut
 * (test/harness/tcp-cut.ts). The leader is cut from everything; rows written to it directly after the cut are on
 * its timeline only. It demotes itself (offline) and runs as a read-only replica; a replica is promoted and a row is
 * written there. When the cut ends, the ex-primary must find (while running) that its timeline diverged, run
 * pg_rewind from the new leader and stream from it: it then has the new leader's rows and not its own orphans.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';
import { startCuttableRelay, type CuttableRelay } from '../harness/tcp-cut.js';

const TTL = 20;

const describeWithNeeds = describeNeeding('pg_rewind', 'etcd', 'bundle', 'root');

interface Relays {
  readonly dcs: CuttableRelay;
  readonly pg: CuttableRelay;
  readonly rest: CuttableRelay;
}

describeWithNeeds('pgwarden agents: a demoted ex-primary with writes past the fork rejoins', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  const relays: Relays[] = [];
  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };
  const indexOf = (name: string): number => c().nodes.findIndex((n) => n.name === name);
  const rows = async (i: number): Promise<string> =>
    (await c().psql(i, "SELECT string_agg(id::text, ',' ORDER BY id) FROM t")).stdout.trim();

  beforeAll(async () => {
    etcd = await startEtcd();
    const [host, port] = etcd.endpoint.split(':');
    for (let i = 0; i < 3; i++) {
      relays.push({
        dcs: await startCuttableRelay({ host: host ?? '127.0.0.1', port: Number(port) }),
        pg: await startCuttableRelay(),
        rest: await startCuttableRelay(),
      });
    }
  });

  afterAll(async () => {
    try {
      await cluster?.stop();
    } finally {
      for (const r of relays) for (const relay of [r.dcs, r.pg, r.rest]) await relay.stop();
      await etcd?.stop();
    }
  });

  it('finds the running replica diverged, rewinds it and streams from the new leader', async () => {
    const relayOf = (i: number): Relays => {
      const r = relays[i];
      if (!r) throw new Error(`no relays for node ${i}`);
      return r;
    };
    cluster = await startAgentCluster({
      etcdEndpoint: etcd?.endpoint ?? '',
      scope: 'diverged',
      ttl: TTL,
      loopWait: 2,
      retryTimeout: 5,
      dcsEndpointFor: (_n, i) => `127.0.0.1:${relayOf(i).dcs.port}`,
      // The relay is the member's way to etcd: without use_proxies the agent would learn etcd's own client URL.
      dcsExtra: 'use_proxies: true',
      connectPortsFor: (n, i) => {
        const r = relayOf(i);
        r.pg.target = { host: '127.0.0.1', port: n.pgPort };
        r.rest.target = { host: '127.0.0.1', port: n.restPort };
        return { pgPort: r.pg.port, restPort: r.rest.port };
      },
    });
    const old = await c().waitReady({ timeoutMs: 90_000 });
    const oi = indexOf(old);
    expect((await c().psql(oi, 'CREATE TABLE t (id int); INSERT INTO t VALUES (1)')).code).toBe(0);
    for (let i = 0; i < 3; i++) {
      if (i === oi) continue;
      await waitFor(`row 1 on ${c().nodes[i]?.name}`, async () => (await rows(i)) === '1', 15_000);
    }

    // Cut the leader from etcd, the replicas and the other agents; write to it directly (its own socket).
    const cutAt = Date.now();
    for (const relay of [relayOf(oi).dcs, relayOf(oi).pg, relayOf(oi).rest]) relay.cut();
    let orphans = 0;
    for (let id = 1000; id < 1100; id++) {
      const r = await c().psql(oi, `INSERT INTO t VALUES (${id})`);
      if (r.code !== 0) break;
      orphans++;
    }
    expect(orphans).toBeGreaterThan(0);

    // It demotes itself (offline) and runs read-only; another member takes over.
    await waitFor(
      `${old} demoted to a read-only replica`,
      async () => (await c().psql(oi, 'SELECT pg_is_in_recovery()')).stdout.trim() === 't',
      (TTL + 20) * 1000,
      250,
    );
    const demotedS = (Date.now() - cutAt) / 1000;
    const leader = await waitFor(
      'a new primary among the others',
      async () => {
        const ps = (await c().primaries()).filter((p) => p !== old);
        return ps.length === 1 ? ps[0] : undefined;
      },
      (TTL + 30) * 1000,
      250,
    );
    const li = indexOf(leader);
    expect((await c().psql(li, 'INSERT INTO t VALUES (2)')).code).toBe(0);
    console.log(
      `${old}: ${orphans} orphan rows, demoted ${demotedS.toFixed(1)} s after the cut; ${leader} leads`,
    );

    // The cut ends: the ex-primary heals by itself.
    const restoredAt = Date.now();
    for (const relay of [relayOf(oi).dcs, relayOf(oi).pg, relayOf(oi).rest]) relay.restore();
    expect(await c().waitReady({ timeoutMs: 90_000 })).toBe(leader);
    console.log(
      `${old} streams from ${leader} ${((Date.now() - restoredAt) / 1000).toFixed(1)} s after the cut ended`,
    );
    const st = await c().status(oi);
    expect(st?.role).toBe('replica');
    expect(st?.state).toBe('running');
    expect((await c().psql(li, 'INSERT INTO t VALUES (3)')).code).toBe(0);
    await waitFor(
      `the new leader's rows, and only those, on ${old}`,
      async () => (await rows(oi)) === '1,2,3',
      15_000,
    );
    expect((await c().status(oi))?.timeline).toBe((await c().status(li))?.timeline);
    const log = readFileSync(c().nodes[oi]?.logFile ?? '', 'utf8');
    expect(log).toContain('demoting self because DCS is not accessible and I was a leader');
    expect(log).toContain(`running pg_rewind from ${leader}`);
    expect(log).toContain('pg_rewind exit code=0');
  }, 240_000);
});
