/**
 * A synchronous standby's clean stop (SIGTERM while a writer commits every 20 ms, synchronous_mode_strict on three
 * members, etcd3): the primary's longest commit stall on pgwarden agents next to Patroni 4.1.4 agents, both of which
 * leave `/sync` before stopping (Patroni's `while_not_sync_standby`). Asserted here, not in the gating tiers:
 * pgwarden's stall is no longer than Patroni's plus 250 ms (timer granularity of one commit loop under load).
 */
import pg from 'pg';
import { expect, it } from 'vitest';
import { startAgentCluster, type AgentCluster } from '../harness/agents.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { PATRONI4 } from '../harness/patroni.js';
import { describeNeeding } from '../harness/requirements.js';
import { connectSuperuser } from '../harness/write-probe.js';
import { stopSyncStandby } from '../harness/sync-standby-stop.js';
import { benchFigures } from './figures.js';

const LOOP_WAIT = 3;

async function measure(kind: 'pgwarden' | 'Patroni 4.1.4'): Promise<number> {
  let etcd: EtcdServer | undefined;
  let cluster: AgentCluster | undefined;
  const clients: pg.Client[] = [];
  try {
    etcd = await startEtcd();
    cluster = await startAgentCluster({
      etcdEndpoint: etcd.endpoint,
      scope: kind === 'pgwarden' ? 'pgw' : 'patroni4',
      ttl: 20,
      loopWait: LOOP_WAIT,
      retryTimeout: 5,
      ...(kind === 'pgwarden'
        ? {}
        : { agentArgv: (node: { configFile: string }) => [PATRONI4, node.configFile] }),
    });
    await cluster.waitReady({ timeoutMs: 120_000 });
    const cl = cluster;
    const { longest } = await stopSyncStandby(cl, kind, async (name) => {
      const node = cl.nodes.find((n) => n.name === name);
      return connectSuperuser(node?.pgPort ?? 0, { track: clients });
    });
    return longest;
  } finally {
    await Promise.all(clients.map((cl) => cl.end().catch(() => undefined)));
    try {
      await cluster?.stop();
    } finally {
      await etcd?.stop();
    }
  }
}

describeNeeding(
  'postgres',
  'etcd',
  'bundle',
  'root',
  'patroni4',
)('a synchronous standby stops, next to Patroni 4.1.4', () => {
  const stalls: Record<string, number> = {};
  it('the primary stalls no longer than on Patroni 4.1.4', async () => {
    stalls['pgwarden'] = await measure('pgwarden');
    stalls['Patroni 4.1.4'] = await measure('Patroni 4.1.4');
    console.log(
      `longest commit stall: pgwarden ${Math.round(stalls['pgwarden'])} ms, Patroni 4.1.4 ${Math.round(stalls['Patroni 4.1.4'])} ms`,
    );
    benchFigures('sync-standby-stop').record('longest commit stall (ms)', stalls);
    expect(stalls['pgwarden']).toBeLessThanOrEqual(stalls['Patroni 4.1.4'] + 250);
  }, 600_000);
});
