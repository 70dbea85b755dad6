/**
 * The watchdog's part of the HA decision (src/ha/watchdog.ts through decide()): Patroni 4.1.4's rules for when a
 * watchdog is activated, pinged and disarmed, and when a `required` watchdog keeps a node out of the leader race.
 */
import { describe, expect, it } from 'vitest';
import type { Action, Decision } from '../../src/ha/actions.js';
import { decide } from '../../src/ha/decide.js';
import {
  DEFAULT_HA_CONFIG,
  INITIAL_MEMORY,
  type HaConfig,
  type HaMemory,
  type HaSnapshot,
  type PeerStatus,
  type PostgresInfo,
  type WatchdogView,
} from '../../src/ha/snapshot.js';
import { keepaliveIsSafe, timingSlack, watchdogHealthy, watchdogTimeout } from '../../src/ha/watchdog.js';
import type { Cluster, Member } from '../../src/model/cluster.js';

const NOW = Date.parse('2026-12-03T12:00:00Z');
const WAL = 100n * 1048576n;
const SYSID = '7300000000000000001';

function member(name: string, role = 'replica'): Member {
  const port = 5432 + Number(name.replace(/\D/g, ''));
  return {
    name,
    version: '1',
    data: {
      raw: {},
      connUrl: `postgres://127.0.0.1:${port}/postgres`,
      apiUrl: `http://127.0.0.1:${port + 3000}/patroni`,
      state: 'running',
      role,
      tags: {},
      pendingRestart: false,
      pause: false,
    },
  };
}

const MEMBERS = [member('node1', 'primary'), member('node2'), member('node3')];

function cluster(leader: string | undefined): Cluster {
  const m = MEMBERS.find((x) => x.name === leader);
  return {
    scope: 'demo',
    initialize: SYSID,
    config: { version: '3', modifyVersion: '3', raw: '', data: { ttl: 30, loop_wait: 10 }, valid: true },
    ...(leader ? { leader: { name: leader, version: '9', ...(m ? { member: m } : {}) } } : {}),
    status: { optime: WAL, slots: {}, retainSlots: [] },
    members: MEMBERS,
    sync: { members: [] },
    history: { version: '2', raw: '[]', lines: [] },
  };
}

const peer = (p: Partial<PeerStatus> = {}): PeerStatus => ({
  reachable: true,
  isPrimary: false,
  walPosition: WAL - 1000n,
  timeline: 1,
  nofailover: false,
  failoverPriority: 1,
  watchdogFailed: false,
  ...p,
});

interface Opts {
  readonly name?: string;
  readonly leader?: string | undefined;
  readonly dcs?: boolean;
  readonly pg?: Partial<PostgresInfo>;
  readonly config?: Partial<HaConfig>;
  readonly wd?: Partial<WatchdogView> | 'none';
  readonly lock?: HaSnapshot['lock'];
  readonly memory?: Partial<HaMemory>;
  readonly peers?: boolean;
}

/** Default: node1, the running primary holding the lock, with a `required` watchdog armed. */
function snap(o: Opts = {}): HaSnapshot {
  const dcs = o.dcs ?? true;
  const wd: WatchdogView = { mode: 'required', running: true, deviceUsable: true, safetyMargin: 5 };
  return {
    now: NOW,
    me: {
      name: o.name ?? 'node1',
      tags: { nofailover: false, failoverPriority: 1, nosync: false, clonefrom: false },
      hasBootstrapConfig: true,
      canCloneWithoutLeader: false,
      canRewind: false,
    },
    config: { ...DEFAULT_HA_CONFIG, ...o.config },
    cluster: dcs ? cluster('leader' in o ? o.leader : 'node1') : undefined,
    dcsReachable: dcs,
    postgres: {
      state: 'running',
      isRunning: true,
      isPrimary: true,
      timeline: 1,
      walPosition: WAL,
      dataDirectoryEmpty: false,
      dataDirectoryAccessible: true,
      sysid: SYSID,
      msInState: 60_000,
      ...o.pg,
    },
    lock: o.lock ?? { heldByMe: true, lastRefreshOk: NOW - 10_000, expiresAt: NOW + 20_000 },
    ...(o.peers
      ? {
          peers: new Map([
            ['node1', peer({ reachable: false })],
            ['node3', peer()],
          ]),
        }
      : {}),
    memory: { ...INITIAL_MEMORY, ...o.memory },
    ...(o.wd === 'none' ? {} : { watchdog: { ...wd, ...o.wd } }),
  };
}

/** A replica (node2) in an unlocked cluster, peers probed: it is the healthiest. */
const racer = (o: Opts = {}): HaSnapshot =>
  snap({
    name: 'node2',
    leader: undefined,
    peers: true,
    lock: { heldByMe: false },
    ...o,
    pg: { isPrimary: false, ...o.pg },
  });

function show(a: Action): string {
  if (a.type === 'RefreshLock') return `RefreshLock else {${showDecision(a.otherwise)}}`;
  if (a.type === 'WatchdogActivate') {
    return `WatchdogActivate(${a.timing.timeout}) else {${showDecision(a.otherwise)}}`;
  }
  if (a.type === 'WatchdogKeepalive') return `WatchdogKeepalive(${a.timing.timeout})`;
  if (a.type === 'Demote') return `Demote(${a.mode})`;
  if (a.type === 'ReleaseLock') return `ReleaseLock(${a.voluntarily ? 'voluntarily' : 'delete'})`;
  return a.type;
}

function showDecision(d: Decision): string {
  return d.actions.length === 0 ? d.message : `${d.message}: ${d.actions.map(show).join(', ')}`;
}

const LOCK_LOST =
  'RefreshLock else {demoted self because failed to update leader lock in DCS: Demote(immediate-nolock)}';
const LEADING = `no action. I am (node1), the leader with the lock`;

describe('decide() with a watchdog (Patroni 4.1.4 ha.py + watchdog/base.py)', () => {
  it.each([
    [
      'an armed leader pings right after each lock refresh, with ttl - safety_margin',
      snap(),
      LEADING,
      [LOCK_LOST, 'WatchdogKeepalive(25)', 'ProcessSyncReplication', 'WriteHistory'],
    ],
    [
      'safety_margin -1: half the ttl',
      snap({ wd: { safetyMargin: -1 } }),
      LEADING,
      [LOCK_LOST, 'WatchdogKeepalive(15)', 'ProcessSyncReplication', 'WriteHistory'],
    ],
    [
      'a new ttl reaches the device with the next ping',
      snap({ config: { ttl: 20, loopWait: 2 } }),
      LEADING,
      [LOCK_LOST, 'WatchdogKeepalive(15)', 'ProcessSyncReplication', 'WriteHistory'],
    ],
    [
      'a leader whose watchdog is not running activates it after the refresh; failing, it demotes',
      snap({ wd: { running: false } }),
      LEADING,
      [
        LOCK_LOST,
        'WatchdogActivate(25) else {Demoting self because watchdog could not be activated: Demote(immediate)}',
        'ProcessSyncReplication',
        'WriteHistory',
      ],
    ],
    [
      'automatic mode activates too (it succeeds without a device)',
      snap({ wd: { mode: 'automatic', running: false, deviceUsable: false } }),
      LEADING,
      [
        LOCK_LOST,
        'WatchdogActivate(25) else {Demoting self because watchdog could not be activated: Demote(immediate)}',
        'ProcessSyncReplication',
        'WriteHistory',
      ],
    ],
    [
      'mode off: nothing is armed',
      snap({ wd: { mode: 'off', running: false } }),
      LEADING,
      [LOCK_LOST, 'ProcessSyncReplication', 'WriteHistory'],
    ],
    [
      'no watchdog port at all (tests): nothing changes',
      snap({ wd: 'none' }),
      LEADING,
      [LOCK_LOST, 'ProcessSyncReplication', 'WriteHistory'],
    ],
    [
      'pause disarms an armed watchdog first, and pings no more',
      snap({ config: { paused: true } }),
      LEADING,
      [
        'WatchdogDisable',
        'RefreshLock else {continue to run as primary after failing to update leader lock in DCS}',
        'ProcessSyncReplication',
        'WriteHistory',
      ],
    ],
    [
      'pause never activates',
      snap({ config: { paused: true }, wd: { running: false } }),
      LEADING,
      [
        'RefreshLock else {continue to run as primary after failing to update leader lock in DCS}',
        'ProcessSyncReplication',
        'WriteHistory',
      ],
    ],
    [
      'after a demotion (a replica now, someone else leads) it is disarmed',
      snap({ leader: 'node2', pg: { isPrimary: false }, lock: { heldByMe: false } }),
      'no action. I am (node1), a secondary, and following a leader (node2)',
      ['WatchdogDisable', 'FollowLeader'],
    ],
    [
      'a primary that lost the lock stays armed (unpinged) until PostgreSQL is down',
      snap({ leader: 'node2', lock: { heldByMe: false } }),
      'demoting self because I do not have the lock and I was a leader',
      ['Demote(immediate-nolock)'],
    ],
    [
      'the DCS is gone: an armed primary is not pinged (no refresh) and not disarmed',
      snap({ dcs: false, lock: { heldByMe: true, lastRefreshOk: NOW - 1000, expiresAt: NOW + 29_000 } }),
      'DCS is not accessible',
      [],
    ],
    [
      'the DCS is gone and PostgreSQL was demoted offline: disarmed',
      snap({ dcs: false, pg: { isPrimary: false }, lock: { heldByMe: true } }),
      'DCS is not accessible',
      ['WatchdogDisable'],
    ],
    [
      'the race winner activates before promoting; failing, it releases the lock',
      racer({ wd: { running: false } }),
      'promoted self to leader by acquiring session lock',
      [
        'AcquireLock',
        'WatchdogActivate(25) else {Not promoting self because watchdog could not be activated: ReleaseLock(voluntarily)}',
        'Promote',
      ],
    ],
    [
      'automatic mode with no usable device still races',
      racer({ wd: { mode: 'automatic', running: false, deviceUsable: false } }),
      'promoted self to leader by acquiring session lock',
      [
        'AcquireLock',
        'WatchdogActivate(25) else {Not promoting self because watchdog could not be activated: ReleaseLock(voluntarily)}',
        'Promote',
      ],
    ],
    [
      'required with no usable device never takes the lock',
      racer({ wd: { running: false, deviceUsable: false } }),
      'following a different leader because i am not the healthiest node',
      ['FollowLeader'],
    ],
    [
      'required with a timeout shorter than loop_wait (no slack) never takes the lock',
      racer({ wd: { running: false }, config: { ttl: 12, loopWait: 10 } }),
      'following a different leader because i am not the healthiest node',
      ['FollowLeader'],
    ],
    [
      'after a bootstrap the watchdog is activated before the leader key is taken; failing, the bootstrap is cancelled',
      snap({
        leader: undefined,
        wd: { running: false },
        memory: { bootstrapping: true, bootstrapResult: true },
        lock: { heldByMe: false },
      }),
      'initialized a new cluster',
      [
        'WatchdogActivate(25) else {removing initialize key after failed attempt to bootstrap the cluster: CancelInitialization}',
        'UpdateMemory',
        'WriteInitialize',
        'WriteConfig',
        'TakeLeader',
      ],
    ],
  ] as const)('%s', (_name, snapshot, message, actions) => {
    const d = decide(snapshot);
    expect(d.message).toBe(message);
    expect(d.actions.map(show)).toEqual(actions);
  });

  it('says why a required node stays out of the race', () => {
    const d = decide(racer({ wd: { running: false, deviceUsable: false } }));
    expect(d.logs).toContainEqual({ level: 'warning', text: 'Watchdog device is not usable' });
  });

  it('leaves the peer probe alone (it must be the only action)', () => {
    const d = decide(
      snap({ name: 'node2', leader: undefined, pg: { isPrimary: false }, lock: { heldByMe: false } }),
    );
    expect(d.actions.map((a) => a.type)).toEqual(['ProbePeers']);
  });
});

describe('the watchdog rules as functions', () => {
  it.each([
    [30, 5, 25],
    [20, 5, 15],
    [30, -1, 15],
    [31, -1, 15],
    [10, 0, 10],
  ])('timeout(ttl %i, safety_margin %i) = %i', (ttl, margin, timeout) => {
    expect(watchdogTimeout(ttl, margin)).toBe(timeout);
  });

  it.each([
    ['off', true, true, 30, 10, true],
    ['automatic', false, false, 30, 10, true],
    ['required', true, true, 30, 10, true],
    ['required', true, false, 30, 10, false],
    ['required', true, true, 14, 10, false],
    ['required', true, true, 15, 10, true],
  ] as const)(
    'mode %s running %s usable %s, ttl %i loop_wait %i: healthy %s',
    (mode, running, usable, ttl, loopWait, healthy) => {
      const config = { ...DEFAULT_HA_CONFIG, ttl, loopWait };
      expect(watchdogHealthy({ mode, running, deviceUsable: usable, safetyMargin: 5 }, config)).toBe(healthy);
      expect(timingSlack(config, 5)).toBe(ttl - 5 - loopWait);
    },
  );

  it.each([
    [30_000, 25, true],
    [25_000, 25, true],
    [24_999, 25, false],
    [undefined, 25, false],
  ])('a ping with %s ms of lock left and a %i s timeout is safe: %s', (left, timeout, safe) => {
    expect(keepaliveIsSafe(left, timeout)).toBe(safe);
  });
});
