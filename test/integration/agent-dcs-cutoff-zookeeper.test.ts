/**
 * Issue 3 acceptance, ZooKeeper: the leader cut off from the DCS by freezing the ZooKeeper server (SIGSTOP) past
 * the session timeout (= ttl), then SIGCONT. Three pgwarden agents on real PostgreSQL 15; the write probe
 * (test/harness/write-probe.ts) tries an INSERT on every member every ~100 ms.
 *
 * Asserted: the primary refuses writes no later than ttl after its last lock refresh (the agent's log line; on
 * ZooKeeper the lock is an ephemeral znode of the session, which the server can expire ttl after it last heard
 * from us), no probe round ever sees two members accept writes, nobody accepts any while ZooKeeper is frozen, and
 * after the SIGCONT one leader with streaming replicas again (polled with a deadline).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { figuresLine, runCutoffCase } from '../harness/dcs-cutoff.js';
import { startZooKeeper, type ZooKeeperServer } from '../harness/zookeeper.js';
import { describeNeeding } from '../harness/requirements.js';

const describeWithNeeds = describeNeeding('postgres', 'zookeeper', 'bundle', 'root');

describeWithNeeds('pgwarden: the leader cut off from ZooKeeper', () => {
  let zk: ZooKeeperServer | undefined;
  let cluster: AgentCluster | undefined;

  beforeAll(async () => {
    zk = await startZooKeeper();
    cluster = await startAgentCluster({
      dcs: 'zookeeper',
      etcdEndpoint: zk.endpoint,
      scope: 'cutoff-zk',
      ttl: 20,
      loopWait: 2,
      retryTimeout: 5,
    });
  }, 180_000);

  afterAll(async () => {
    try {
      await cluster?.stop();
    } finally {
      await zk?.stop();
    }
  });

  it('ZooKeeper SIGSTOP at ttl 20 / loop_wait 2 / retry_timeout 5: writes refused within ttl, never two writable', async () => {
    const c = cluster;
    const z = zk;
    if (!c || !z) throw new Error('no cluster');
    const f = await runCutoffCase({
      label: 'ZooKeeper SIGSTOP (frozen), ttl 20/2/5',
      ttl: 20,
      members: {
        nodes: c.nodes,
        waitReady: (timeoutMs) => c.waitReady({ timeoutMs }),
        logTails: () => c.logTails(30),
      },
      cut: async () => z.signal('SIGSTOP'),
      restore: async () => z.signal('SIGCONT'),
    });
    console.log(figuresLine('pgwarden', f));
    expect(f.violations, f.trace).toEqual([]);
    expect(f.readOnlyS, f.trace).toBeLessThan(f.outageS);
    expect(f.refusedAfterRefreshS).toBeLessThanOrEqual(20);
  }, 180_000);
});
