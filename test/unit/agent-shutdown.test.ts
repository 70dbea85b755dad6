import { describe, expect, it } from 'vitest';
import { shutdown, shutdownPlan, type ShutdownDeps } from '../../src/agent/shutdown.js';
import { DEFAULT_HA_CONFIG } from '../../src/ha/snapshot.js';
import type { Cluster } from '../../src/model/cluster.js';
import type { PostgresNode } from '../../src/agent/node.js';

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
function harness(o: {
  paused: boolean;
  leader: string;
  stopFails?: boolean;
  /** `synchronous_mode` and the `/sync` key the DCS answers, one per getCluster (the last one repeats). */
  sync?: { readonly mode: 'off' | 'on'; readonly answers: readonly (readonly string[] | 'error')[] };
  nosyncTag?: boolean;
  touchFails?: boolean;
  /** The hook given to the stop is called with this checkpoint; `release` is what it decides. */
  checkpointHook?: { readonly release: boolean };
}) {
  const calls: string[] = [];
  const lines: string[] = [];
  const cluster = { leader: { name: o.leader } } as unknown as Cluster;
  let now = 0;
  let reads = 0;
  const clusterRead = (): Cluster => {
    const answers = o.sync?.answers ?? [];
    const a = answers[Math.min(reads, answers.length - 1)];
    reads += 1;
    if (a === 'error') throw new Error('etcd down');
    return { leader: { name: o.leader }, sync: { leader: o.leader, members: a ?? [] } } as unknown as Cluster;
  };
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
    clock: {
      monotonic: () => now,
      sleep: async (ms: number) => {
        calls.push(`sleep ${ms}`);
        now += ms;
      },
    },
    loop: {
      pendingAsync: undefined,
      haConfig: {
        ...DEFAULT_HA_CONFIG,
        paused: o.paused,
        loopWait: 10,
        synchronousMode: o.sync?.mode ?? 'off',
      },
      lastCluster: cluster,
      isLeader: () => o.leader === 'pg1',
      shutdownHook: (released: () => void) =>
        o.checkpointHook && o.leader === 'pg1'
          ? async (checkpoint) => {
              calls.push(`onShutdown ${checkpoint}`);
              if (o.checkpointHook?.release) released();
            }
          : undefined,
    },
    node: {
      self: { tags: { nosync: o.nosyncTag ?? false } } as PostgresNode['self'],
      shutdown: async (hook?: (checkpoint: bigint) => Promise<void>) => {
        calls.push('stopPostgres');
        if (o.stopFails) throw new Error('pg_ctl stop timed out');
        await hook?.(0x3000028n);
      },
      shutdownCheckpoint: async () => 0x3000028n,
      memberValue: async (ctx: { nosync?: boolean }) => {
        calls.push(ctx.nosync ? 'memberValue nosync' : 'memberValue');
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
      getCluster: async () => {
        if (o.sync === undefined) return cluster;
        calls.push('getCluster');
        return clusterRead();
      },
      deleteLeader: async () => {
        calls.push('deleteLeader');
        return true;
      },
      touchMember: async () => {
        calls.push('touchMember');
        return !o.touchFails;
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

  it('leader whose replica has the shutdown checkpoint: the hook released the key, it is not released again', async () => {
    const h = harness({ paused: false, leader: 'pg1', checkpointHook: { release: true } });
    await shutdown(h.deps);
    expect(h.calls).toEqual([
      'closeApi',
      'stopPostgres',
      'onShutdown 50331688',
      'disableWatchdog',
      'memberValue',
      'touchMember',
      'closeNode',
      'closeDcs',
    ]);
  });

  it('leader whose replicas lack the checkpoint: the hook keeps the key, released once PostgreSQL is down', async () => {
    const h = harness({ paused: false, leader: 'pg1', checkpointHook: { release: false } });
    await shutdown(h.deps);
    expect(h.calls.slice(1, 6)).toEqual([
      'stopPostgres',
      'onShutdown 50331688',
      'disableWatchdog',
      'writeStatus {"optime":50331688}',
      'deleteLeader',
    ]);
  });
});

describe('shutdown of a synchronous standby (Patroni 4.1.4 while_not_sync_standby)', () => {
  const rows: {
    why: string;
    o: Omit<Parameters<typeof harness>[0], 'paused'>;
    before: string[];
    lines?: string[];
  }[] = [
    {
      why: 'released at the first read after publishing nosync: stops at once',
      o: { leader: 'pg2', sync: { mode: 'on', answers: [['pg3']] } },
      before: ['memberValue nosync', 'touchMember', 'getCluster'],
    },
    {
      why: 'still named: polls every 2 s until the leader has replaced it',
      o: { leader: 'pg2', sync: { mode: 'on', answers: [['pg1'], ['pg1'], ['pg3']] } },
      before: [
        'memberValue nosync',
        'touchMember',
        'getCluster',
        'sleep 2000',
        'getCluster',
        'sleep 2000',
        'getCluster',
      ],
      lines: [
        'INFO Waiting for primary to release us from synchronous standby',
        'INFO Waiting for primary to release us from synchronous standby',
      ],
    },
    {
      why: 'never released: gives up after twice loop_wait (20 s) and stops all the same',
      o: { leader: 'pg2', sync: { mode: 'on', answers: [['pg1']] } },
      before: [
        'memberValue nosync',
        'touchMember',
        ...Array.from({ length: 10 }, () => ['getCluster', 'sleep 2000']).flat(),
        'getCluster',
      ],
    },
    {
      why: 'the DCS fails while waiting: stops at once (it is only a hint)',
      o: { leader: 'pg2', sync: { mode: 'on', answers: [['pg1'], 'error'] } },
      before: ['memberValue nosync', 'touchMember', 'getCluster', 'sleep 2000', 'getCluster'],
      lines: ['WARNING Could not get cluster state, skipping synchronous standby disable'],
    },
    {
      why: 'the member key cannot be written: stops at once',
      o: { leader: 'pg2', touchFails: true, sync: { mode: 'on', answers: [['pg1']] } },
      before: ['memberValue nosync', 'touchMember'],
      lines: ['WARNING Updating member state failed, skipping synchronous standby disable'],
    },
    {
      why: 'synchronous mode off: no wait',
      o: { leader: 'pg2', sync: { mode: 'off', answers: [['pg1']] } },
      before: [],
    },
    {
      why: 'tagged nosync already: no wait',
      o: { leader: 'pg2', nosyncTag: true, sync: { mode: 'on', answers: [['pg1']] } },
      before: [],
    },
    {
      why: 'the leader itself: no wait',
      o: { leader: 'pg1', sync: { mode: 'on', answers: [['pg2']] } },
      before: [],
    },
  ];
  for (const r of rows) {
    it(r.why, async () => {
      const h = harness({ paused: false, ...r.o });
      await shutdown(h.deps);
      const stop = h.calls.indexOf('stopPostgres');
      expect(h.calls.slice(1, stop)).toEqual(r.before);
      for (const l of r.lines ?? []) expect(h.lines).toContain(l);
      if (r.lines) expect(h.lines.filter((l) => r.lines?.includes(l))).toEqual(r.lines);
    });
  }
});
