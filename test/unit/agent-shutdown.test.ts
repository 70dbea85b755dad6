import { describe, expect, it } from 'vitest';
import { shutdown, shutdownPlan, type ShutdownDeps } from '../../src/agent/shutdown.js';
import { DEFAULT_HA_CONFIG } from '../../src/ha/snapshot.js';
import type { Cluster } from '../../src/model/cluster.js';

describe('shutdownPlan (Patroni 4.1.4 Ha.shutdown)', () => {
  const rows = [
    {
      why: 'paused leader: PostgreSQL keeps running, the leader key stays, nothing is published',
      paused: true,
      wasLeader: true,
      plan: { stopPostgres: false, releaseLock: false, touchMember: false, closeDcs: false },
    },
    {
      why: 'paused replica: left running as well',
      paused: true,
      wasLeader: false,
      plan: { stopPostgres: false, releaseLock: false, touchMember: false, closeDcs: false },
    },
    {
      why: 'leader: stop, release the lock, publish stopped',
      paused: false,
      wasLeader: true,
      plan: { stopPostgres: true, releaseLock: true, touchMember: true, closeDcs: true },
    },
    {
      why: 'replica: stop and publish stopped, no lock to release',
      paused: false,
      wasLeader: false,
      plan: { stopPostgres: true, releaseLock: false, touchMember: true, closeDcs: true },
    },
  ];
  for (const r of rows) {
    it(r.why, () => {
      expect(shutdownPlan({ paused: r.paused, wasLeader: r.wasLeader })).toEqual(r.plan);
    });
  }
});

/** Fakes that record every call, in order. */
function harness(o: { paused: boolean; leader: string; stopFails?: boolean }) {
  const calls: string[] = [];
  const lines: string[] = [];
  const cluster = { leader: { name: o.leader } } as unknown as Cluster;
  const deps: ShutdownDeps = {
    name: 'pg1',
    watchdog: {
      running: true,
      disable: async () => {
        calls.push('disableWatchdog');
      },
    },
    closeApi: async () => {
      calls.push('closeApi');
    },
    loop: {
      pendingAsync: undefined,
      haConfig: { ...DEFAULT_HA_CONFIG, paused: o.paused },
      lastCluster: cluster,
    },
    node: {
      shutdown: async () => {
        calls.push('stopPostgres');
        if (o.stopFails) throw new Error('pg_ctl stop timed out');
      },
      shutdownCheckpoint: async () => 0x3000028n,
      memberValue: async () => {
        calls.push('memberValue');
        return '{"state":"stopped"}';
      },
      close: async () => {
        calls.push('closeNode');
      },
    },
    dcs: {
      writeStatus: async (v: string) => {
        calls.push(`writeStatus ${v}`);
        return true;
      },
      getCluster: async () => cluster,
      deleteLeader: async () => {
        calls.push('deleteLeader');
        return true;
      },
      touchMember: async () => {
        calls.push('touchMember');
        return true;
      },
      close: async () => {
        calls.push('closeDcs');
      },
    },
    log: {
      info: (t) => lines.push(`INFO ${t}`),
      warning: (t) => lines.push(`WARNING ${t}`),
      error: (t) => lines.push(`ERROR ${t}`),
    },
  };
  return { deps, calls, lines };
}

describe('shutdown', () => {
  it('paused leader: neither stops PostgreSQL nor releases the key, and says so as Patroni does', async () => {
    const h = harness({ paused: true, leader: 'pg1' });
    await shutdown(h.deps);
    expect(h.calls).toEqual(['closeApi', 'disableWatchdog', 'closeNode']);
    expect(h.lines).toContain(
      'INFO Leader key is not deleted and Postgresql is not stopped due paused state',
    );
  });

  it('leader: stops PostgreSQL, writes the shutdown checkpoint, releases the key, publishes stopped', async () => {
    const h = harness({ paused: false, leader: 'pg1' });
    await shutdown(h.deps);
    expect(h.calls).toEqual([
      'closeApi',
      'stopPostgres',
      'disableWatchdog',
      'writeStatus {"optime":50331688}',
      'deleteLeader',
      'memberValue',
      'touchMember',
      'closeNode',
      'closeDcs',
    ]);
  });

  it('replica: stops PostgreSQL and publishes stopped, the leader key is not its to delete', async () => {
    const h = harness({ paused: false, leader: 'pg2' });
    await shutdown(h.deps);
    expect(h.calls).toEqual([
      'closeApi',
      'stopPostgres',
      'disableWatchdog',
      'memberValue',
      'touchMember',
      'closeNode',
      'closeDcs',
    ]);
  });

  it('leader whose PostgreSQL does not stop keeps the key (and the DCS session that holds it)', async () => {
    const h = harness({ paused: false, leader: 'pg1', stopFails: true });
    await shutdown(h.deps);
    expect(h.calls).toEqual(['closeApi', 'stopPostgres', 'closeNode']);
    expect(
      h.lines.some((l) =>
        l.startsWith(
          'ERROR PostgreSQL shutdown failed, leader key not removed: pg_ctl stop timed out. Leaving watchdog running.',
        ),
      ),
    ).toBe(true);
  });
});
