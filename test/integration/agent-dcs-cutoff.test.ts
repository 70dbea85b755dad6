/**
 * Issue 3 acceptance, etcd3: the leader cut off from the DCS. Three pgwarden agents on real PostgreSQL 15 and one
 * etcd; the write probe (test/harness/write-probe.ts) tries an INSERT on every member every ~100 ms. etcd is
 * frozen (SIGSTOP), stopped (SIGTERM) or killed (SIGKILL), kept away until past the lock's ttl, then brought back
 * (SIGCONT, or a restart on the same data dir).
 *
 * Asserted each time: the primary refuses writes no later than ttl after its last lock refresh (the agent's log
 * line) and before etcd's lease for the lock could expire (a lower bound polled from etcd before the cut); no
 * probe round ever sees two members accept writes, and nobody accepts any while etcd is away; after etcd is back,
 * one leader with streaming replicas (polled with a deadline). One cluster serves every case (each case starts
 * from one leader with streaming replicas): ttl 20 / loop_wait 2 / retry_timeout 5 for the three ways of losing
 * etcd, then 30 / 10 / 10 (set with patronictl edit-config) for a freeze.
 *
 * What bounds the figures (spec 6.12, Patroni's demote('offline')): the next cycle's read fails after
 * retry_timeout, so the primary stops (fast) and restarts read-only about loop_wait + retry_timeout after its
 * last refresh; ttl is the hard limit asserted.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { figuresLine, runCutoffCase, type CutoffMembers } from '../harness/dcs-cutoff.js';
import { etcdPost, startEtcd, type EtcdServer } from '../harness/etcd.js';
import { waitFor } from '../harness/process.js';
import { describeNeeding } from '../harness/requirements.js';

const SCOPE = 'cutoff';

/** The granted TTL of the leader key's lease (what the leader asked etcd for), or undefined. */
async function leaderLeaseTtl(endpoint: string, key: string): Promise<number | undefined> {
  const post = (path: string, body: unknown): Promise<Record<string, unknown>> =>
    etcdPost(endpoint, path, body, 2000);
  const range = await post('/v3/kv/range', { key: Buffer.from(key).toString('base64') });
  const id = ((range['kvs'] ?? []) as { lease?: string }[])[0]?.lease;
  if (!id || id === '0') return undefined;
  return Number((await post('/v3/lease/timetolive', { ID: id }))['grantedTTL']);
}

const describeWithNeeds = describeNeeding('postgres', 'etcd', 'patronictl', 'bundle', 'root');

describeWithNeeds('pgwarden: the leader cut off from etcd', () => {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  const e = (): EtcdServer => {
    if (!etcd) throw new Error('no etcd');
    return etcd;
  };
  const members = (): CutoffMembers => {
    const c = cluster;
    if (!c) throw new Error('no cluster');
    return {
      nodes: c.nodes,
      waitReady: (timeoutMs) => c.waitReady({ timeoutMs }),
      logTails: () => c.logTails(30),
    };
  };
  const leaderKey = `/service/${SCOPE}/leader`;

  beforeAll(async () => {
    etcd = await startEtcd();
    cluster = await startAgentCluster({
      etcdEndpoint: etcd.endpoint,
      scope: SCOPE,
      ttl: 20,
      loopWait: 2,
      retryTimeout: 5,
    });
  }, 180_000);

  afterAll(async () => {
    try {
      await cluster?.stop();
    } finally {
      await etcd?.stop();
    }
  });

  const CUTS = [
    {
      how: 'SIGSTOP (frozen)',
      cut: async () => e().signal('SIGSTOP'),
      restore: async () => e().signal('SIGCONT'),
    },
    {
      how: 'SIGTERM (stopped)',
      cut: () => e().kill('SIGTERM'),
      restore: () => e().restart(),
    },
    {
      how: 'SIGKILL (crashed)',
      cut: () => e().kill('SIGKILL'),
      restore: () => e().restart(),
    },
  ] as const;

  it.each(CUTS)(
    'etcd $how at ttl 20 / loop_wait 2 / retry_timeout 5: writes refused within ttl, never two writable',
    async ({ how, cut, restore }) => {
      const f = await runCutoffCase({
        label: `etcd ${how}, ttl 20/2/5`,
        ttl: 20,
        members: members(),
        cut,
        restore,
        etcd: { endpoint: e().endpoint, leaderKey },
      });
      console.log(figuresLine('pgwarden', f));
      expect(f.violations, f.trace).toEqual([]);
      expect(f.readOnlyS, f.trace).toBeLessThan(f.outageS);
      // Demoted as Patroni does it: PostgreSQL back up read-only while the DCS is still away.
      expect(f.readOnlyS, f.trace).toBeLessThan(f.outageS);
      // The expected pace (loop_wait + retry_timeout + a fast stop) is far inside ttl; ttl is the limit.
      expect(f.refusedAfterRefreshS).toBeLessThanOrEqual(20);
      expect(f.marginToLeaseExpiryS).toBeGreaterThanOrEqual(0);
    },
    150_000,
  );

  it('etcd SIGSTOP at ttl 30 / loop_wait 10 / retry_timeout 10: writes refused within ttl, never two writable', async () => {
    const c = cluster;
    if (!c) throw new Error('no cluster');
    const r = await c.patronictl([
      'edit-config',
      SCOPE,
      '--force',
      '-s',
      'ttl=30',
      '-s',
      'loop_wait=10',
      '-s',
      'retry_timeout=10',
    ]);
    expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
    // The leader applies the new ttl with a new lease at its next refresh.
    await waitFor(
      'the leader lock on a lease of 30 s',
      async () => (await leaderLeaseTtl(e().endpoint, leaderKey)) === 30,
      30_000,
      250,
    );
    const f = await runCutoffCase({
      label: 'etcd SIGSTOP (frozen), ttl 30/10/10',
      ttl: 30,
      members: members(),
      cut: async () => e().signal('SIGSTOP'),
      restore: async () => e().signal('SIGCONT'),
      etcd: { endpoint: e().endpoint, leaderKey },
    });
    console.log(figuresLine('pgwarden', f));
    expect(f.violations, f.trace).toEqual([]);
    expect(f.readOnlyS, f.trace).toBeLessThan(f.outageS);
    expect(f.refusedAfterRefreshS).toBeLessThanOrEqual(30);
    expect(f.marginToLeaseExpiryS).toBeGreaterThanOrEqual(0);
  }, 180_000);
});
