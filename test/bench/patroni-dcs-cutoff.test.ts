/**
 * The oracle for issue 3: the same "leader cut off from the DCS" cases as agent-dcs-cutoff.test.ts, on a real
 * Patroni 3.0.2 cluster (three members, PostgreSQL 15, one etcd, ttl 20 / loop_wait 2 / retry_timeout 5): etcd
 * frozen (SIGSTOP) and stopped (SIGTERM), each kept away past ttl and brought back. The write probe tries an INSERT
 * on every member every ~100 ms.
 *
 * Patroni's figures are printed next to pgwarden's (same harness, same measurement). Patroni is the reference,
 * so its safety findings (writes past ttl, two writable members) are printed, not asserted; what is asserted is
 * that the measurement happened: the primary was seen refusing writes during the outage, and the cluster came
 * back to one leader with streaming replicas. Figures go to the console and to .bench/patroni-dcs-cutoff.json.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { figuresLine, runCutoffCase } from '../harness/dcs-cutoff.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { startPatroniCluster, type PatroniCluster } from '../harness/patroni.js';
import { describeNeeding } from '../harness/requirements.js';
import { benchFigures } from './figures.js';

const SCOPE = 'cutoff-patroni';
const figures = benchFigures('patroni-dcs-cutoff');

const describeWithNeeds = describeNeeding('postgres', 'etcd', 'patroni', 'root');

describeWithNeeds('Patroni 3.0.2: the leader cut off from etcd (reference figures)', () => {
  let etcd: EtcdServer | undefined;
  let cluster: PatroniCluster | undefined;
  const e = (): EtcdServer => {
    if (!etcd) throw new Error('no etcd');
    return etcd;
  };

  beforeAll(async () => {
    etcd = await startEtcd();
    cluster = await startPatroniCluster({
      dcs: 'etcd3',
      dcsEndpoint: etcd.endpoint,
      scope: SCOPE,
      ttl: 20,
      loopWait: 2,
      retryTimeout: 5,
    });
  }, 240_000);

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
  ] as const;

  it.each(CUTS)(
    'etcd $how at ttl 20 / loop_wait 2 / retry_timeout 5',
    async ({ how, cut, restore }) => {
      const c = cluster;
      if (!c) throw new Error('no cluster');
      const f = await runCutoffCase({
        label: `etcd ${how}, ttl 20/2/5`,
        ttl: 20,
        members: {
          nodes: c.nodes,
          waitReady: (timeoutMs) => c.waitReady({ timeoutMs }),
          logTails: () => c.logTails(30),
        },
        cut,
        restore,
        etcd: { endpoint: e().endpoint, leaderKey: `/service/${SCOPE}/leader` },
      });
      console.log(figuresLine('patroni', f));
      const { trace: _trace, ...measured } = f;
      figures.record(f.label, measured);
      if (f.violations.length > 0) {
        console.log(`Patroni 3.0.2 (the reference) broke the safety properties:\n${f.trace}`);
      }
      // The measurement happened: the old primary was seen refusing writes while etcd was away.
      expect(f.refusedS).toBeLessThan(f.outageS);
      expect(Number.isFinite(f.firstWriteAfterRestoreS)).toBe(true);
    },
    180_000,
  );
});
