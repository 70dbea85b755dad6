/**
 * Issue 10, DCS failsafe mode on etcd3: three pgwarden agents on real PostgreSQL 15 and one etcd, restapi
 * authentication on (the leader's POST /failsafe must send it), ttl 20 / loop_wait 2 / retry_timeout 5, and
 * `failsafe_mode: true` set with PATCH /config.
 *
 * Asserted: the leader writes the `/failsafe` key naming every member (GET /failsafe); with etcd frozen (SIGSTOP)
 * for well past ttl, the primary keeps accepting writes (polled all along, every round must write), reports
 * `failsafe_mode_is_active`, and the replicas stay replicas; after etcd is back, the same leader with streaming
 * replicas. Then with etcd frozen again and one replica killed (agent and postmaster), the primary stops accepting
 * writes within a deadline (Patroni's demote('offline')) and nobody accepts writes while etcd is away.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';

const SCOPE = 'failsafe';
const TTL = 20;
const AUTH = { username: 'admin', password: 'fs-secret' } as const;
const BASIC = `Basic ${Buffer.from(`${AUTH.username}:${AUTH.password}`).toString('base64')}`;

describeNeeding(
  'postgres',
  'etcd',
  'bundle',
  'root',
)('pgwarden: failsafe mode with etcd cut off', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  const c = (): AgentCluster => {
    if (!cluster) throw new Error('no cluster');
    return cluster;
  };
  const e = (): EtcdServer => {
    if (!etcd) throw new Error('no etcd');
    return etcd;
  };
  const indexOf = (name: string): number => c().nodes.findIndex((n) => n.name === name);

  /** One INSERT on member `i`; true when it committed. */
  const writes = async (i: number): Promise<boolean> =>
    (await c().psql(i, 'INSERT INTO failsafe_probe VALUES (now())')).code === 0;

  const statusJson = async (i: number, path: string): Promise<Record<string, unknown> | undefined> => {
    const r = await c().rest(i, path);
    try {
      return JSON.parse(r.body) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };

  beforeAll(async () => {
    etcd = await startEtcd();
    cluster = await startAgentCluster({
      etcdEndpoint: etcd.endpoint,
      scope: SCOPE,
      ttl: TTL,
      loopWait: 2,
      retryTimeout: 5,
      restapiAuth: AUTH,
    });
  }, 180_000);

  afterAll(async () => {
    try {
      // A test that failed with etcd frozen must not leave it stopped for the cleanup.
      etcd?.signal('SIGCONT');
      await cluster?.stop();
    } finally {
      await etcd?.stop();
    }
  });

  let leader = '';

  it('PATCH /config failsafe_mode: the leader writes the /failsafe key naming every member', async () => {
    leader = await c().waitReady({ timeoutMs: 120_000 });
    const li = indexOf(leader);
    const res = await fetch(`http://127.0.0.1:${c().nodes[li]?.restPort}/config`, {
      method: 'PATCH',
      headers: { authorization: BASIC, 'content-type': 'application/json' },
      body: JSON.stringify({ failsafe_mode: true }),
    });
    expect(res.status, await res.text()).toBe(200);
    const expected = Object.fromEntries(
      c().nodes.map((n) => [n.name, `http://127.0.0.1:${n.restPort}/patroni`]),
    );
    await waitFor(
      'GET /failsafe naming every member',
      async () =>
        JSON.stringify(Object.entries((await statusJson(li, '/failsafe')) ?? {}).sort()) ===
        JSON.stringify(Object.entries(expected).sort()),
      30_000,
      250,
    );
    const r = await c().psql(li, 'CREATE TABLE failsafe_probe (at timestamptz)');
    expect(r.code, r.stderr).toBe(0);
  }, 180_000);

  it('etcd frozen past ttl: the primary stays writable while every member answers, replicas stay replicas', async () => {
    const li = indexOf(leader);
    const replicas = c()
      .nodes.map((_, i) => i)
      .filter((i) => i !== li);
    e().signal('SIGSTOP');
    const cutAt = Date.now();
    try {
      // Every round for 2 * ttl must write on the primary; the replicas must keep answering as replicas.
      let rounds = 0;
      let sawActive = false;
      while (Date.now() - cutAt < 2 * TTL * 1000) {
        expect(await writes(li), `round ${rounds} at ${Date.now() - cutAt} ms\n${c().logTails(20)}`).toBe(
          true,
        );
        for (const i of replicas) expect(await writes(i)).toBe(false);
        const doc = await statusJson(li, '/patroni');
        if (doc?.['failsafe_mode_is_active'] === true) sawActive = true;
        rounds++;
      }
      expect(sawActive, c().logTails(20)).toBe(true);
      expect(rounds).toBeGreaterThan(10);
      for (const i of replicas) expect((await c().status(i))?.role).toBe('replica');
    } finally {
      e().signal('SIGCONT');
    }
    expect(await c().waitReady({ timeoutMs: 120_000 })).toBe(leader);
    expect(await writes(li)).toBe(true);
  }, 240_000);

  it('etcd frozen and one replica killed: the primary stops accepting writes, nobody accepts any', async () => {
    const li = indexOf(leader);
    const victim = c().nodes.findIndex((_, i) => i !== li);
    const other = c().nodes.findIndex((_, i) => i !== li && i !== victim);
    e().signal('SIGSTOP');
    const cutAt = Date.now();
    let refusedAfterMs = 0;
    try {
      // First the check passes (every member answers), then a member goes away.
      await waitFor(
        'failsafe mode active on the primary',
        async () => (await statusJson(li, '/patroni'))?.['failsafe_mode_is_active'] === true,
        60_000,
        500,
      );
      await c().kill9(victim);
      const killedAt = Date.now();
      await waitFor('the primary refusing writes', async () => !(await writes(li)), 60_000, 250);
      refusedAfterMs = Date.now() - killedAt;
      // Demoted offline, as Patroni: PostgreSQL back up read-only, and the other replica still read-only.
      await waitFor(
        'the old primary running read-only',
        async () => (await c().psql(li, 'SELECT pg_is_in_recovery()')).stdout.includes('t'),
        60_000,
        500,
      );
      expect(await writes(other)).toBe(false);
      console.log(
        `failsafe: writes refused ${(refusedAfterMs / 1000).toFixed(1)} s after the replica was killed ` +
          `(${((killedAt - cutAt) / 1000).toFixed(1)} s after the cut)`,
      );
    } finally {
      e().signal('SIGCONT');
    }
    // The loop's next cycles see etcd again; with the killed member back, one leader with streaming replicas.
    c().start(victim);
    await c().waitReady({ timeoutMs: 180_000 });
    expect(refusedAfterMs).toBeLessThan(60_000);
  }, 360_000);
});
