/**
 * The HA core's decisions about stopping a member (src/ha/shutdown.ts), as Patroni 4.1.4's `on_shutdown` /
 * `is_failover_possible(cluster_lsn=checkpoint)`, `is_sync_standby` and `while_not_sync_standby`'s guard.
 */
import { describe, expect, it } from 'vitest';
import type { Cluster, Member, SyncState } from '../../src/model/cluster.js';
import { shutdownHook, waitForSuccessorStream } from '../../src/ha/loop-shutdown.js';
import {
  demotionSuccessors,
  isSyncStandby,
  successorStreaming,
  leaveSyncTimeoutMs,
  mustLeaveSyncFirst,
  releaseAtShutdownCheckpoint,
} from '../../src/ha/shutdown.js';
import {
  DEFAULT_HA_CONFIG,
  INITIAL_MEMORY,
  type HaConfig,
  type HaSnapshot,
  type PeerStatus,
} from '../../src/ha/snapshot.js';

const CHECKPOINT = 0x5000028n;

function member(name: string, tags: Record<string, unknown> = {}): Member {
  const port = 5432 + Number(name.replace(/\D/g, ''));
  return {
    name,
    version: '1',
    data: {
      raw: {},
      connUrl: `postgres://127.0.0.1:${port}/postgres`,
      apiUrl: `http://127.0.0.1:${port + 3000}/patroni`,
      state: 'running',
      role: name === 'node1' ? 'primary' : 'replica',
      tags,
      pendingRestart: false,
      pause: false,
    },
  };
}

function cluster(
  o: { members?: Member[]; sync?: Omit<SyncState, 'version'>; leader?: string } = {},
): Cluster {
  const members = o.members ?? [member('node1'), member('node2'), member('node3')];
  const leader = o.leader ?? 'node1';
  return {
    scope: 'demo',
    leader: { name: leader, version: '9', member: members.find((m) => m.name === leader) },
    status: { optime: CHECKPOINT - 0x100n, slots: {}, retainSlots: [] },
    members,
    sync: o.sync ? { version: '5', ...o.sync } : { members: [] },
    history: { version: '2', raw: '[]', lines: [] },
  };
}

function peer(p: Partial<PeerStatus> = {}): PeerStatus {
  return {
    reachable: true,
    isPrimary: false,
    walPosition: CHECKPOINT,
    timeline: 1,
    nofailover: false,
    failoverPriority: 1,
    watchdogFailed: false,
    ...p,
  };
}

/** node1, the leader whose PostgreSQL has just written its shutdown checkpoint. */
function leaderSnap(
  c: Cluster,
  peers: Record<string, PeerStatus>,
  config: Partial<HaConfig> = {},
): HaSnapshot {
  return {
    now: 0,
    me: {
      name: 'node1',
      tags: { nofailover: false, failoverPriority: 1, nosync: false, clonefrom: false },
      hasBootstrapConfig: true,
      canCloneWithoutLeader: false,
      canRewind: true,
    },
    config: { ...DEFAULT_HA_CONFIG, ...config },
    cluster: c,
    dcsReachable: true,
    postgres: {
      state: 'stopping',
      isRunning: true,
      isPrimary: true,
      timeline: 1,
      walPosition: CHECKPOINT,
      dataDirectoryEmpty: false,
      dataDirectoryAccessible: true,
      sysid: '1',
      msInState: 0,
    },
    lock: { heldByMe: true },
    peers: new Map(Object.entries(peers)),
    memory: INITIAL_MEMORY,
  };
}

describe('releaseAtShutdownCheckpoint (on_shutdown: is_failover_possible(cluster_lsn=checkpoint))', () => {
  const rows: {
    why: string;
    peers: Record<string, PeerStatus>;
    c?: Cluster;
    config?: Partial<HaConfig>;
    release: boolean;
    logs?: string[];
  }[] = [
    {
      why: 'a replica has received up to the checkpoint: release now',
      peers: { node2: peer(), node3: peer({ walPosition: CHECKPOINT - 0x28n }) },
      release: true,
      logs: ['Member node3 exceeds maximum replication lag'],
    },
    {
      why: 'a replica past the checkpoint (it has the whole record): release now',
      peers: { node2: peer({ walPosition: CHECKPOINT + 0x80n }), node3: peer({ reachable: false }) },
      release: true,
    },
    {
      why: 'every replica behind the checkpoint (its stream was reconnecting), even within maximum_lag_on_failover: keep',
      peers: {
        node2: peer({ walPosition: CHECKPOINT - 1n }),
        node3: peer({ walPosition: CHECKPOINT - 0x1000n }),
      },
      release: false,
      logs: ['Member node2 exceeds maximum replication lag', 'Member node3 exceeds maximum replication lag'],
    },
    {
      why: 'the only replica with the checkpoint may not promote (nofailover): keep',
      peers: { node2: peer({ nofailover: true }), node3: peer({ walPosition: 0n }) },
      release: false,
    },
    {
      why: 'the only replica with the checkpoint is tagged nofailover in its member key: keep',
      c: cluster({ members: [member('node1'), member('node2', { nofailover: true }), member('node3')] }),
      peers: { node2: peer(), node3: peer({ walPosition: 0n }) },
      release: false,
    },
    {
      why: 'the replica with the checkpoint is unreachable: keep',
      peers: { node2: peer({ reachable: false }), node3: peer({ walPosition: 0n }) },
      release: false,
    },
    {
      why: 'the replica with the checkpoint has a failed required watchdog: keep',
      peers: { node2: peer({ watchdogFailed: true }) },
      release: false,
    },
    {
      why: 'check_timeline: a replica still on an older timeline does not count',
      c: cluster(),
      peers: { node2: peer({ timeline: 0 }) },
      config: { checkTimeline: true },
      release: false,
    },
    {
      why: 'synchronous mode: only a member of /sync counts (node3 has the checkpoint but is asynchronous)',
      c: cluster({ sync: { leader: 'node1', syncStandby: 'node2', members: ['node2'] } }),
      peers: { node2: peer({ walPosition: 0n }), node3: peer() },
      config: { synchronousMode: 'on' },
      release: false,
    },
    {
      why: 'synchronous mode: the sync standby has the checkpoint',
      c: cluster({ sync: { leader: 'node1', syncStandby: 'node2', members: ['node2'] } }),
      peers: { node2: peer(), node3: peer({ walPosition: 0n }) },
      config: { synchronousMode: 'on' },
      release: true,
    },
    {
      why: 'no other member at all: keep',
      c: cluster({ members: [member('node1')] }),
      peers: {},
      release: false,
    },
  ];
  for (const r of rows) {
    it(r.why, () => {
      const c = r.c ?? cluster();
      const got = releaseAtShutdownCheckpoint(leaderSnap(c, r.peers, r.config), c, CHECKPOINT);
      expect(got.release).toBe(r.release);
      if (r.logs) expect(got.logs.map((l) => l.text)).toEqual(r.logs);
    });
  }
});

describe('isSyncStandby (Patroni is_sync_standby)', () => {
  const rows: { why: string; c: Cluster | undefined; me: string; is: boolean }[] = [
    {
      why: 'named in /sync of the current leader',
      c: cluster({ sync: { leader: 'node1', members: ['node2'] } }),
      me: 'node2',
      is: true,
    },
    {
      why: 'names compare case-insensitively',
      c: cluster({ sync: { leader: 'NODE1', members: ['Node2'] } }),
      me: 'node2',
      is: true,
    },
    {
      why: 'the leader has replaced us',
      c: cluster({ sync: { leader: 'node1', members: ['node3'] } }),
      me: 'node2',
      is: false,
    },
    {
      why: '/sync of a former leader does not count',
      c: cluster({ sync: { leader: 'node3', members: ['node2'] } }),
      me: 'node2',
      is: false,
    },
    { why: 'no /sync', c: cluster(), me: 'node2', is: false },
    { why: 'no cluster read', c: undefined, me: 'node2', is: false },
  ];
  for (const r of rows) {
    it(r.why, () => {
      expect(isSyncStandby(r.c, r.me)).toBe(r.is);
    });
  }
});

describe('mustLeaveSyncFirst (while_not_sync_standby guard) and its bound', () => {
  const rows = [
    { holdsLock: false, synchronousMode: true, nosync: false, wait: true },
    { holdsLock: true, synchronousMode: true, nosync: false, wait: false },
    { holdsLock: false, synchronousMode: false, nosync: false, wait: false },
    { holdsLock: false, synchronousMode: true, nosync: true, wait: false },
  ];
  for (const r of rows) {
    it(`leader=${r.holdsLock} synchronous_mode=${r.synchronousMode} nosync=${r.nosync}: wait=${r.wait}`, () => {
      expect(mustLeaveSyncFirst(r)).toBe(r.wait);
    });
  }
  it('waits at most twice loop_wait', () => {
    expect(leaveSyncTimeoutMs(10)).toBe(20_000);
    expect(leaveSyncTimeoutMs(2)).toBe(4_000);
  });
});

describe('demotionSuccessors and successorStreaming (the graceful demotion waits for a successor stream)', () => {
  const rows: { why: string; c: Cluster; config?: Partial<HaConfig>; successors: string[] }[] = [
    {
      why: 'no failover candidate: every member that may promote',
      c: cluster(),
      successors: ['node2', 'node3'],
    },
    {
      why: 'a switchover to a named candidate: that one only',
      c: { ...cluster(), failover: { version: '1', leader: 'node1', member: 'node3' } },
      successors: ['node3'],
    },
    {
      why: 'nofailover members never take over',
      c: cluster({ members: [member('node1'), member('node2', { nofailover: true }), member('node3')] }),
      successors: ['node3'],
    },
    {
      why: 'synchronous mode: only the members of /sync',
      c: cluster({ sync: { leader: 'node1', syncStandby: 'node3', members: ['node3'] } }),
      config: { synchronousMode: 'on' },
      successors: ['node3'],
    },
    { why: 'alone: nobody to wait for', c: cluster({ members: [member('node1')] }), successors: [] },
  ];
  for (const r of rows) {
    it(r.why, () => {
      expect(demotionSuccessors(leaderSnap(r.c, {}, r.config), r.c)).toEqual(r.successors);
    });
  }
  it('a successor counts once it streams (names in any case)', () => {
    expect(successorStreaming(['node2'], ['NODE2'])).toBe(true);
    expect(successorStreaming(['node2', 'node3'], ['node3'])).toBe(true);
    expect(successorStreaming(['node2'], ['node3'])).toBe(false);
    expect(successorStreaming(['node2'], [])).toBe(false);
  });
});

/** A clock whose sleeps only move time on, and a log that keeps its lines. */
function fakes() {
  let now = 0;
  const lines: string[] = [];
  return {
    lines,
    clock: {
      monotonic: () => now,
      sleep: async (ms: number) => {
        now += ms;
      },
    },
    log: {
      info: (t: string) => lines.push(`INFO ${t}`),
      warning: (t: string) => lines.push(`WARNING ${t}`),
      error: (t: string) => lines.push(`ERROR ${t}`),
    },
  };
}

describe('waitForSuccessorStream', () => {
  const c = cluster();
  const run = async (answers: (readonly string[] | 'error')[], loopWait = 10) => {
    const f = fakes();
    let polls = 0;
    const node = {
      streamingReplicas: async () => {
        const a = answers[Math.min(polls, answers.length - 1)];
        polls += 1;
        if (a === 'error') throw new Error('no connection');
        return a ?? [];
      },
    };
    await waitForSuccessorStream({ node, ...f, snapshot: leaderSnap(c, {}, { loopWait }), cluster: c });
    return { polls, lines: f.lines, elapsed: f.clock.monotonic() };
  };
  it('a successor streams already: no wait', async () => {
    expect(await run([['node3']])).toEqual({ polls: 1, lines: [], elapsed: 0 });
  });
  it('the successor reconnects after 2 s: waits until it streams', async () => {
    const r = await run([[], [], [], [], ['node2']]);
    expect(r.polls).toBe(5);
    expect(r.elapsed).toBe(2000);
    expect(r.lines).toEqual([
      'INFO waiting for node2, node3 to stream from us before the shutdown checkpoint',
    ]);
  });
  it('never: gives up after twice loop_wait and demotes anyway', async () => {
    const r = await run([[]], 10);
    expect(r.elapsed).toBe(20000);
    expect(r.lines.at(-1)).toBe('WARNING none of node2, node3 streams from us after 20 s: demoting anyway');
  });
  it('with a short loop_wait, waits at least one walreceiver reconnect (wal_retrieve_retry_interval) and a loop', async () => {
    const r = await run([[]], 2);
    expect(r.elapsed).toBe(7000);
    expect(r.lines.at(-1)).toBe('WARNING none of node2, node3 streams from us after 7 s: demoting anyway');
  });
  it('pg_stat_replication cannot be read: no wait', async () => {
    expect((await run(['error'])).polls).toBe(1);
  });
});

describe('shutdownHook (on_shutdown)', () => {
  const c = cluster();
  const run = async (o: {
    peers: Record<string, PeerStatus>;
    holds?: boolean;
    writeOptimeOtherwise: boolean;
  }) => {
    const f = fakes();
    const calls: string[] = [];
    let released = false;
    const hook = shutdownHook({
      dcs: {
        writeStatus: async (v) => {
          calls.push(`writeStatus ${v}`);
          return true;
        },
        deleteLeader: async () => {
          calls.push('deleteLeader');
          return true;
        },
      },
      node: { shutdownStatusValue: (lsn) => `{"optime":${lsn}}` },
      probe: async (members) => {
        calls.push(`probe ${members.map((m) => m.name).join(',')}`);
        return new Map(Object.entries(o.peers));
      },
      clock: {
        sleep: async (ms) => {
          calls.push(`sleep ${ms}`);
        },
      },
      log: f.log,
      snapshot: leaderSnap(c, {}),
      cluster: c,
      holdsLock: () => o.holds ?? true,
      released: () => {
        released = true;
      },
      writeOptimeOtherwise: o.writeOptimeOtherwise,
    });
    await hook(CHECKPOINT);
    return { calls, released };
  };
  it('a replica has the checkpoint: after 1 s, optime written and the key deleted', async () => {
    expect(await run({ peers: { node2: peer() }, writeOptimeOtherwise: false })).toEqual({
      calls: ['sleep 1000', 'probe node2,node3', `writeStatus {"optime":${CHECKPOINT}}`, 'deleteLeader'],
      released: true,
    });
  });
  it('none has it, agent shutdown: only the optime is written, the key stays until PostgreSQL is down', async () => {
    const peers = { node2: peer({ walPosition: CHECKPOINT - 1n }) };
    expect(await run({ peers, writeOptimeOtherwise: true })).toEqual({
      calls: ['sleep 1000', 'probe node2,node3', `writeStatus {"optime":${CHECKPOINT}}`],
      released: false,
    });
  });
  it('none has it, demotion: nothing written', async () => {
    const peers = { node2: peer({ walPosition: CHECKPOINT - 1n }) };
    expect((await run({ peers, writeOptimeOtherwise: false })).calls).toEqual([
      'sleep 1000',
      'probe node2,node3',
    ]);
  });
  it('the lock is no longer ours: nothing', async () => {
    expect(await run({ peers: { node2: peer() }, holds: false, writeOptimeOtherwise: true })).toEqual({
      calls: [],
      released: false,
    });
  });
});
