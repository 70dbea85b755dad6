import { describe, expect, it } from 'vitest';
import type { Cluster, Failover, HistoryLine, Member, SyncState } from '../../src/model/cluster.js';
import type { Action, Decision } from '../../src/ha/actions.js';
import { cycleLogLine, decide } from '../../src/ha/decide.js';
import {
  DEFAULT_HA_CONFIG,
  INITIAL_MEMORY,
  effectiveTimings,
  haConfigFromDynamic,
  type HaConfig,
  type HaMemory,
  type HaSnapshot,
  type MemberTags,
  type PeerStatus,
  type PostgresInfo,
} from '../../src/ha/snapshot.js';

// ------------------------------------------------------------------------------------------------------------
// builders

const NOW = Date.parse('2024-05-01T12:00:00Z');
const MB = 1048576n;
const WAL = 100n * MB;
const SYSID = '7300000000000000001';

function member(
  name: string,
  extra: { tags?: Record<string, unknown>; state?: string; role?: string } = {},
): Member {
  const port = 5432 + Number(name.replace(/\D/g, '') || 0);
  return {
    name,
    version: '1',
    data: {
      raw: {},
      connUrl: `postgres://127.0.0.1:${port}/postgres`,
      apiUrl: `http://127.0.0.1:${port + 3000}/patroni`,
      state: extra.state ?? 'running',
      role: extra.role ?? 'replica',
      tags: extra.tags ?? {},
      pendingRestart: false,
      pause: false,
    },
  };
}

interface ClusterOpts {
  readonly leader?: string | undefined;
  readonly members?: readonly Member[];
  readonly failover?: Omit<Failover, 'version'>;
  readonly sync?: Omit<SyncState, 'version'>;
  readonly optime?: bigint;
  readonly history?: readonly HistoryLine[];
  readonly initialize?: string | undefined;
  readonly config?: Record<string, unknown> | undefined;
}

const THREE = [member('node1', { role: 'primary' }), member('node2'), member('node3')];

function cluster(o: ClusterOpts = {}): Cluster {
  const members = o.members ?? THREE;
  const leaderName = 'leader' in o ? o.leader : 'node1';
  const leaderMember = members.find((m) => m.name === leaderName);
  return {
    scope: 'demo',
    ...('initialize' in o
      ? o.initialize === undefined
        ? {}
        : { initialize: o.initialize }
      : { initialize: SYSID }),
    ...('config' in o && o.config === undefined
      ? {}
      : {
          config: {
            version: '3',
            modifyVersion: '3',
            raw: '',
            data: o.config ?? { ttl: 30, loop_wait: 10 },
            valid: true,
          },
        }),
    ...(leaderName
      ? { leader: { name: leaderName, version: '9', ...(leaderMember ? { member: leaderMember } : {}) } }
      : {}),
    status: { optime: o.optime ?? WAL, slots: {}, retainSlots: [] },
    members,
    ...(o.failover ? { failover: { version: '7', ...o.failover } } : {}),
    sync: o.sync ? { version: '5', ...o.sync } : { members: [] },
    history: { version: '2', raw: '[]', lines: o.history ?? [] },
  };
}

function peer(p: Partial<PeerStatus> = {}): PeerStatus {
  return {
    reachable: true,
    isPrimary: false,
    walPosition: WAL,
    timeline: 1,
    nofailover: false,
    failoverPriority: 1,
    watchdogFailed: false,
    ...p,
  };
}

interface SnapOpts {
  readonly name?: string;
  readonly tags?: Partial<MemberTags>;
  readonly config?: Partial<HaConfig>;
  readonly cluster?: Cluster | undefined;
  readonly dcsReachable?: boolean;
  readonly pg?: Partial<PostgresInfo>;
  readonly lastRefreshOk?: number | undefined;
  readonly peers?: Record<string, PeerStatus>;
  readonly pendingAsync?: HaSnapshot['pendingAsync'];
  readonly memory?: Partial<HaMemory>;
  readonly me?: Partial<Pick<HaSnapshot['me'], 'hasBootstrapConfig' | 'canCloneWithoutLeader' | 'canRewind'>>;
  readonly lastLockedCluster?: Cluster;
}

/** Default: node2, a healthy streaming replica of node1 in a locked three-node cluster. */
function snap(o: SnapOpts = {}): HaSnapshot {
  const c = 'cluster' in o ? o.cluster : cluster();
  return {
    now: NOW,
    me: {
      name: o.name ?? 'node2',
      tags: { nofailover: false, failoverPriority: 1, nosync: false, clonefrom: false, ...o.tags },
      hasBootstrapConfig: true,
      canCloneWithoutLeader: false,
      canRewind: false,
      ...o.me,
    },
    config: { ...DEFAULT_HA_CONFIG, ...o.config },
    cluster: c,
    dcsReachable: o.dcsReachable ?? c !== undefined,
    ...(o.lastLockedCluster ? { lastLockedCluster: o.lastLockedCluster } : {}),
    postgres: {
      state: 'running',
      isRunning: true,
      isPrimary: false,
      timeline: 1,
      walPosition: WAL,
      dataDirectoryEmpty: false,
      dataDirectoryAccessible: true,
      sysid: SYSID,
      msInState: 60_000,
      ...o.pg,
    },
    lock: {
      heldByMe: false,
      ...('lastRefreshOk' in o
        ? o.lastRefreshOk === undefined
          ? {}
          : { lastRefreshOk: o.lastRefreshOk }
        : {}),
    },
    ...(o.peers ? { peers: new Map(Object.entries(o.peers)) } : {}),
    ...(o.pendingAsync ? { pendingAsync: o.pendingAsync } : {}),
    memory: { ...INITIAL_MEMORY, ...o.memory },
  };
}

/** node1, the running primary holding the lock. */
function leaderSnap(o: SnapOpts = {}): HaSnapshot {
  return snap({
    name: 'node1',
    lastRefreshOk: NOW - 10_000,
    ...o,
    pg: { isPrimary: true, ...o.pg },
  });
}

const unlocked = (o: ClusterOpts = {}) =>
  cluster({
    leader: undefined,
    members: [member('node1', { state: 'stopped' }), member('node2'), member('node3')],
    ...o,
  });
const PEERS_BEHIND = { node1: peer({ reachable: false }), node3: peer({ walPosition: WAL - 1000n }) };

// ------------------------------------------------------------------------------------------------------------
// a compact, exact rendering of actions so the tables stay readable

function show(a: Action): string {
  switch (a.type) {
    case 'AcquireLock':
    case 'RaceInitialize':
      return `${a.type} else {${showDecision(a.otherwise)}}`;
    case 'RefreshLock':
      return `RefreshLock${a.writeStatus ? '(status)' : ''} else {${showDecision(a.otherwise)}}`;
    case 'WriteSyncState':
      return `WriteSyncState(${a.leader};${a.syncStandby.join(',')};v${a.version ?? '-'}) else {${showDecision(a.otherwise)}}`;
    case 'Demote':
      return `Demote(${a.mode})${a.async ? '~' : ''}`;
    case 'FollowLeader':
      return `FollowLeader(${a.target.kind === 'member' ? a.target.name : a.target.kind}${a.standbyLeader ? ',standby_leader' : ''})`;
    case 'StartPostgres':
      return `StartPostgres(${a.standbyLeader ? 'standby_leader' : a.as},${a.target.kind === 'member' ? a.target.name : a.target.kind},${a.timeout ?? '-'})~`;
    case 'ReleaseLock':
      return `ReleaseLock(${a.voluntarily ? 'voluntarily' : 'delete'})`;
    case 'ClearFailoverKey':
      return `ClearFailoverKey(${a.version ?? 'plain'})`;
    case 'RewriteFailoverKey':
      return `RewriteFailoverKey(${a.candidate};v${a.version})`;
    case 'ProbePeers':
      return `ProbePeers(${a.members.map((m) => m.name).join(',')})`;
    case 'CloneFrom':
      return `CloneFrom(${a.member ?? '-'})~`;
    case 'Rewind':
      return `Rewind(${a.member}${a.remote ? ',remote' : ''})~`;
    case 'Reinitialize':
      return `${a.type}(${a.member})~`;
    case 'WriteInitialize':
      return `WriteInitialize(${a.createNew ? 'new' : 'set'})`;
    case 'UpdateMemory':
      return `UpdateMemory(${Object.entries(a.patch)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(',')})`;
    case 'Wait':
      return `Wait(${a.ms})`;
    case 'Exit':
      return `Exit(${a.code})`;
    case 'CancelAsync':
      return `CancelAsync(${a.kind})`;
    case 'WatchdogActivate':
      return `WatchdogActivate(${a.timing.timeout}) else {${showDecision(a.otherwise)}}`;
    case 'WatchdogKeepalive':
      return `WatchdogKeepalive(${a.timing.timeout})`;
    case 'FailsafeCheck':
      return `FailsafeCheck(${a.members.map((m) => m.name).join(',')}) else {${showDecision(a.otherwise)}}`;
    case 'WriteFailsafe':
      return `WriteFailsafe(${Object.keys(a.topology).join(',')})`;
    case 'WatchdogDisable':
      return a.type;
    case 'SetSynchronousStandbyNames':
      return `SetSSN(${a.names.join(',')}${a.num === undefined ? '' : `#${a.num}`})`;
    case 'Bootstrap':
      return a.standbyLeader ? 'Bootstrap(standby_leader)~' : 'Bootstrap~';
    case 'Promote':
    case 'PostBootstrap':
    case 'CrashRecovery':
      return `${a.type}~`;
    case 'StopPostgres':
    case 'MarkDemoted':
    case 'WriteHistory':
    case 'ProcessSyncReplication':
    case 'CancelInitialization':
    case 'WriteConfig':
    case 'TakeLeader':
      return a.type;
  }
}

function showDecision(d: Decision): string {
  return d.actions.length === 0 ? d.message : `${d.message}: ${d.actions.map(show).join(', ')}`;
}

interface Scenario {
  readonly name: string;
  readonly snapshot: HaSnapshot;
  readonly actions: readonly string[];
  readonly message: string;
}

const sc = (
  name: string,
  snapshot: HaSnapshot,
  message: string,
  actions: readonly string[] = [],
): Scenario => ({
  name,
  snapshot,
  message,
  actions,
});

const LEADER_LOCK_LOST =
  'RefreshLock(status) else {demoted self because failed to update leader lock in DCS: Demote(immediate-nolock)}';
const REPLICA_LOCK_LOST =
  'RefreshLock(status) else {not promoting because failed to update leader lock in DCS}';
const ACQUIRE_ELSE_FOLLOW =
  'AcquireLock else {following new leader after trying and failing to obtain lock: FollowLeader(lock-holder)}';
const ACQUIRE_ELSE_DEMOTE =
  'AcquireLock else {demoted self after trying and failing to obtain lock: Demote(immediate-nolock)}';

// ------------------------------------------------------------------------------------------------------------
// scenarios

const dcsDown: Scenario[] = [
  sc(
    'primary cannot reach the DCS past retry_timeout: offline demote',
    leaderSnap({ cluster: undefined, lastRefreshOk: NOW - 11_000 }),
    'demoting self because DCS is not accessible and I was a leader',
    ['Demote(offline)~'],
  ),
  sc(
    'primary never refreshed in this process and cannot reach the DCS: demote',
    leaderSnap({ cluster: undefined, lastRefreshOk: undefined }),
    'demoting self because DCS is not accessible and I was a leader',
    ['Demote(offline)~'],
  ),
  sc(
    'primary within retry_timeout of its last refresh: keeps running, retries',
    leaderSnap({ cluster: undefined, lastRefreshOk: NOW - 3_000 }),
    'DCS is not accessible',
  ),
  sc(
    'primary busy with a long action: demotes from the main thread',
    leaderSnap({
      cluster: undefined,
      lastRefreshOk: NOW - 20_000,
      pendingAsync: { kind: 'restart', description: 'restart', startedAt: NOW - 5000 },
    }),
    'demoted self because DCS is not accessible and I was a leader',
    ['Demote(offline)'],
  ),
  sc(
    'primary whose offline demote is still under way: no second demote',
    leaderSnap({
      cluster: undefined,
      lastRefreshOk: NOW - 20_000,
      pendingAsync: {
        kind: 'demote',
        description: 'demoting self because DCS is not accessible and I was a leader',
        startedAt: NOW - 2000,
      },
    }),
    'demoting self because DCS is not accessible and I was a leader in progress',
  ),
  sc(
    'primary busy with a graceful demote (switchover) when the DCS goes away: it finishes, no second demote',
    leaderSnap({
      cluster: undefined,
      lastRefreshOk: NOW - 20_000,
      pendingAsync: { kind: 'demote', description: 'switchover: demote', startedAt: NOW - 2000 },
    }),
    'switchover: demote in progress',
  ),
  sc(
    'primary exactly retry_timeout after its last refresh: demotes (the grace is strictly shorter)',
    leaderSnap({ cluster: undefined, lastRefreshOk: NOW - 10_000 }),
    'demoting self because DCS is not accessible and I was a leader',
    ['Demote(offline)~'],
  ),
  sc(
    'read-only after an offline demote (PostgreSQL restarted as a standby): nothing to do while the DCS is away',
    snap({ name: 'node1', cluster: undefined, lastRefreshOk: undefined }),
    'DCS is not accessible',
  ),
  sc('replica: nothing to do', snap({ cluster: undefined }), 'DCS is not accessible'),
  sc(
    'paused primary: no demotion',
    leaderSnap({ cluster: undefined, lastRefreshOk: NOW - 60_000, config: { paused: true } }),
    'DCS is not accessible',
  ),
];

const uninitialized: Scenario[] = [
  sc(
    'empty data dir, no initialize key: run the initialize race',
    snap({
      cluster: unlocked({ initialize: undefined }),
      pg: { dataDirectoryEmpty: true, isRunning: false },
    }),
    'trying to bootstrap a new cluster',
    [
      'RaceInitialize else {failed to acquire initialize lock}',
      'UpdateMemory(bootstrapping=true,bootstrapResult=undefined)',
      'Bootstrap~',
    ],
  ),
  sc(
    'empty data dir, nofailover: never races, waits',
    snap({
      cluster: unlocked({ initialize: undefined }),
      tags: { nofailover: true },
      pg: { dataDirectoryEmpty: true, isRunning: false },
    }),
    'waiting for leader to bootstrap',
  ),
  sc(
    'empty data dir, somebody is bootstrapping (initialize ""): wait even if a leaderless clone is possible',
    snap({
      cluster: unlocked({ initialize: '' }),
      me: { canCloneWithoutLeader: true },
      pg: { dataDirectoryEmpty: true, isRunning: false },
    }),
    'waiting for leader to bootstrap',
  ),
  sc(
    'empty data dir, no bootstrap section but a leaderless replica method',
    snap({
      cluster: unlocked({ initialize: SYSID }),
      me: { canCloneWithoutLeader: true },
      pg: { dataDirectoryEmpty: true, isRunning: false },
    }),
    'trying to bootstrap (without leader)',
    ['CloneFrom(-)~'],
  ),
  sc(
    'empty data dir, locked cluster: clone from the leader',
    snap({ pg: { dataDirectoryEmpty: true, isRunning: false } }),
    "trying to bootstrap from leader 'node1'",
    ['CloneFrom(node1)~'],
  ),
  sc(
    'empty data dir, a running clonefrom replica exists: clone from it',
    snap({
      cluster: cluster({
        members: [
          member('node1', { role: 'primary' }),
          member('node2'),
          member('node3', { tags: { clonefrom: true } }),
        ],
      }),
      pg: { dataDirectoryEmpty: true, isRunning: false },
    }),
    "trying to bootstrap from replica 'node3'",
    ['CloneFrom(node3)~'],
  ),
  sc(
    'data dir wiped under the leader: stop and release the lock',
    leaderSnap({ pg: { dataDirectoryEmpty: true, isRunning: true } }),
    'released leader key voluntarily as data dir empty and currently leader',
    ['StopPostgres', 'ReleaseLock(voluntarily)'],
  ),
  sc(
    'paused with an empty data dir',
    snap({ config: { paused: true }, pg: { dataDirectoryEmpty: true, isRunning: false } }),
    'running with empty data directory',
  ),
  sc(
    'bootstrap done, still in recovery',
    snap({
      cluster: unlocked({ initialize: '' }),
      memory: { bootstrapping: true },
      pg: { isPrimary: false },
    }),
    'waiting for end of recovery after bootstrap',
  ),
  sc(
    'bootstrap done, primary: run post_bootstrap',
    snap({ cluster: unlocked({ initialize: '' }), memory: { bootstrapping: true }, pg: { isPrimary: true } }),
    'running post_bootstrap',
    ['PostBootstrap~'],
  ),
  sc(
    'post_bootstrap done: publish initialize, config and the leader key',
    snap({
      cluster: unlocked({ initialize: '' }),
      memory: { bootstrapping: true, bootstrapResult: true },
      pg: { isPrimary: true },
    }),
    'initialized a new cluster',
    [
      'UpdateMemory(bootstrapping=false,bootstrapResult=undefined)',
      'WriteInitialize(set)',
      'WriteConfig',
      'TakeLeader',
    ],
  ),
  sc(
    'bootstrap failed (postgres not running): cancel initialization',
    snap({
      cluster: unlocked({ initialize: '' }),
      memory: { bootstrapping: true },
      pg: { isRunning: false },
    }),
    'removing initialize key after failed attempt to bootstrap the cluster',
    ['CancelInitialization'],
  ),
  sc(
    'existing primary, no initialize key: adopt it and take the lock',
    snap({ cluster: unlocked({ initialize: undefined }), pg: { isPrimary: true } }),
    'acquired session lock as a leader',
    ['WriteInitialize(new)', ACQUIRE_ELSE_DEMOTE, 'ProcessSyncReplication', 'WriteHistory'],
  ),
  sc(
    'existing replica, no initialize key: refuse to start',
    snap({ cluster: unlocked({ initialize: undefined }) }),
    'No initialize key in DCS and PostgreSQL is running as replica, aborting start',
    ['Exit(1)'],
  ),
  sc(
    'system ID mismatch: exit',
    snap({ pg: { sysid: '7300000000000000999' } }),
    'system ID mismatch, node node2 belongs to a different cluster: 7300000000000000001 != 7300000000000000999',
    ['Exit(1)'],
  ),
  sc(
    'invalid system ID in a non-empty data dir',
    snap({ pg: { sysid: 'garbage' } }),
    'data dir for the cluster is not empty, but system ID is invalid; consider doing reinitialize',
  ),
];

const lockedLeader: Scenario[] = [
  sc(
    'leader with the lock: refresh and carry on',
    leaderSnap(),
    'no action. I am (node1), the leader with the lock',
    [LEADER_LOCK_LOST, 'ProcessSyncReplication', 'WriteHistory'],
  ),
  sc(
    'leader with the lock but no initialize/config keys: rewrite them first',
    leaderSnap({ cluster: cluster({ initialize: undefined, config: undefined }) }),
    'no action. I am (node1), the leader with the lock',
    ['WriteInitialize(new)', 'WriteConfig', LEADER_LOCK_LOST, 'ProcessSyncReplication', 'WriteHistory'],
  ),
  sc(
    'DCS back after an offline demote and the lock survived (etcd restarted with its leases): promote again',
    snap({ name: 'node1', lastRefreshOk: undefined }),
    'promoted self to leader because I had the session lock',
    [REPLICA_LOCK_LOST, 'Promote~'],
  ),
  sc(
    'lock holder still read-only (restarted after a crash): promote',
    snap({ name: 'node1' }),
    'promoted self to leader because I had the session lock',
    [REPLICA_LOCK_LOST, 'Promote~'],
  ),
  sc(
    'lock holder read-only in synchronous mode: claim /sync before promoting',
    snap({ name: 'node1', config: { synchronousMode: 'on', synchronousModeStrict: true } }),
    'promoted self to leader because I had the session lock',
    [
      REPLICA_LOCK_LOST,
      'WriteSyncState(node1;;v-) else {Postponing promotion because synchronous replication state was updated by somebody else}',
      'SetSSN(*)',
      'Promote~',
    ],
  ),
  sc(
    'pre_promote script failed: release the lock',
    snap({ name: 'node1', memory: { prePromoteFailed: true } }),
    'Promotion cancelled because the pre-promote script failed',
    [
      REPLICA_LOCK_LOST,
      `UpdateMemory(prePromoteFailed=false,releasedLeaderKeyAt=${NOW})`,
      'ReleaseLock(voluntarily)',
    ],
  ),
  sc(
    'paused, lock holder is not primary: remove the lock',
    snap({ name: 'node1', config: { paused: true } }),
    'removed leader lock because postgres is not running as primary',
    ['ReleaseLock(delete)'],
  ),
  sc(
    'paused, lock holder is the failover candidate being promoted by hand',
    snap({ name: 'node1', config: { paused: true }, cluster: cluster({ failover: { member: 'node1' } }) }),
    'waiting to become primary after promote...',
  ),
  sc(
    'paused leader: refresh, and a failed refresh keeps the primary running',
    leaderSnap({ config: { paused: true } }),
    'no action. I am (node1), the leader with the lock',
    [
      'RefreshLock(status) else {continue to run as primary after failing to update leader lock in DCS}',
      'ProcessSyncReplication',
      'WriteHistory',
    ],
  ),
];

const lockedReplica: Scenario[] = [
  sc(
    'replica follows the leader',
    snap(),
    'no action. I am (node2), a secondary, and following a leader (node1)',
    ['FollowLeader(node1)'],
  ),
  sc(
    'replicatefrom tag: cascade from that member',
    snap({ tags: { replicatefrom: 'node3' } }),
    'no action. I am (node2), a secondary, and following a leader (node1)',
    ['FollowLeader(node3)'],
  ),
  sc(
    'nostream tag: follow nobody (WAL from restore_command only), replicatefrom or not',
    snap({ tags: { nostream: true, replicatefrom: 'node3' } }),
    'no action. I am (node2), a secondary, and following a leader (node1)',
    ['FollowLeader(none)'],
  ),
  sc(
    'primary without the lock while another member holds it: demote at once',
    snap({ pg: { isPrimary: true } }),
    'demoting self because I do not have the lock and I was a leader',
    ['Demote(immediate-nolock)'],
  ),
  sc(
    'paused primary without the lock keeps running',
    snap({ pg: { isPrimary: true }, config: { paused: true } }),
    'continue to run as primary without lock',
  ),
];

const race: Scenario[] = [
  sc('unlocked, no peer statuses yet: probe first', snap({ cluster: unlocked() }), 'probing members', [
    'ProbePeers(node1,node3)',
  ]),
  sc(
    'unlocked, healthiest: take the lock and promote',
    snap({ cluster: unlocked(), peers: PEERS_BEHIND }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, 'Promote~'],
  ),
  sc(
    'unlocked, lagging more than maximum_lag_on_failover: no race (no probe needed)',
    snap({ cluster: unlocked({ optime: WAL + MB + 1n }) }),
    'following a different leader because i am not the healthiest node',
    ['FollowLeader(none)'],
  ),
  sc(
    'unlocked, lag exactly maximum_lag_on_failover: still eligible',
    snap({ cluster: unlocked({ optime: WAL + MB }), peers: PEERS_BEHIND }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, 'Promote~'],
  ),
  sc(
    'unlocked, a peer is ahead',
    snap({ cluster: unlocked(), peers: { node3: peer({ walPosition: WAL + 1n }) } }),
    'following a different leader because i am not the healthiest node',
    ['FollowLeader(none)'],
  ),
  sc(
    'unlocked, unreachable peer ahead is ignored',
    snap({ cluster: unlocked(), peers: { node3: peer({ walPosition: WAL + 1n, reachable: false }) } }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, 'Promote~'],
  ),
  sc(
    'unlocked, nofailover peer ahead is ignored',
    snap({ cluster: unlocked(), peers: { node3: peer({ walPosition: WAL + 1n, nofailover: true }) } }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, 'Promote~'],
  ),
  sc(
    'unlocked, watchdog-failed peer ahead is ignored',
    snap({ cluster: unlocked(), peers: { node3: peer({ walPosition: WAL + 1n, watchdogFailed: true }) } }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, 'Promote~'],
  ),
  sc(
    'unlocked, equal WAL and a peer with higher failover_priority',
    snap({ cluster: unlocked(), peers: { node3: peer({ failoverPriority: 5 }) } }),
    'following a different leader because i am not the healthiest node',
    ['FollowLeader(none)'],
  ),
  sc(
    'unlocked, equal WAL, higher priority peer is the former leader: ignored',
    snap({
      cluster: unlocked(),
      lastLockedCluster: cluster({ leader: 'node3' }),
      peers: { node3: peer({ failoverPriority: 5 }) },
    }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, 'Promote~'],
  ),
  sc(
    'unlocked, a peer is still primary',
    snap({ cluster: unlocked(), peers: { node1: peer({ isPrimary: true }) } }),
    'following a different leader because i am not the healthiest node',
    ['FollowLeader(none)'],
  ),
  sc(
    'unlocked, nofailover: never races',
    snap({ cluster: unlocked(), tags: { nofailover: true }, peers: PEERS_BEHIND }),
    'following a different leader because I am not allowed to promote',
    ['Wait(2000)', 'FollowLeader(none)'],
  ),
  sc(
    'unlocked, failover_priority 0 (nofailover derived from it): never races',
    snap({ cluster: unlocked(), tags: { nofailover: true, failoverPriority: 0 }, peers: PEERS_BEHIND }),
    'following a different leader because I am not allowed to promote',
    ['Wait(2000)', 'FollowLeader(none)'],
  ),
  sc(
    'unlocked, failover_priority 0 but an explicit nofailover: false (Patroni: nofailover wins): races',
    snap({
      cluster: unlocked(),
      tags: { nofailover: false, failoverPriority: 0 },
      peers: { node1: peer({ reachable: false }), node3: peer({ walPosition: WAL - 1000n }) },
    }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, 'Promote~'],
  ),
  sc(
    'unlocked, check_timeline and my timeline is behind the cluster',
    snap({
      cluster: unlocked({ history: [{ timeline: 1, lsn: 1n, reason: 'no recovery target specified' }] }),
      config: { checkTimeline: true },
    }),
    'following a different leader because i am not the healthiest node',
    ['FollowLeader(none)'],
  ),
  sc(
    'unlocked, synchronous mode and I am not in /sync',
    snap({
      cluster: unlocked({ sync: { leader: 'node1', syncStandby: 'node3', members: ['node3'] } }),
      config: { synchronousMode: 'on' },
    }),
    'following a different leader because i am not the healthiest node',
    ['FollowLeader(none)'],
  ),
  sc(
    'unlocked, synchronous mode: the former sync leader ahead of me does not stop me',
    snap({
      cluster: unlocked({ sync: { leader: 'node1', syncStandby: 'node2', members: ['node2'] } }),
      config: { synchronousMode: 'on' },
      peers: { node1: peer({ walPosition: WAL + 100n }), node3: peer({ walPosition: WAL + 100n }) },
    }),
    'promoted self to leader by acquiring session lock',
    [
      ACQUIRE_ELSE_FOLLOW,
      'WriteSyncState(node2;;v5) else {Postponing promotion because synchronous replication state was updated by somebody else}',
      'SetSSN()',
      'Promote~',
    ],
  ),
  sc(
    'unlocked, I run as primary on the cluster timeline: take the lock back',
    snap({ cluster: unlocked(), pg: { isPrimary: true } }),
    'acquired session lock as a leader',
    [ACQUIRE_ELSE_DEMOTE, 'ProcessSyncReplication', 'WriteHistory'],
  ),
  sc(
    'unlocked, I run as primary on an old timeline (someone was promoted meanwhile): demote',
    snap({
      cluster: unlocked({ history: [{ timeline: 1, lsn: 1n, reason: 'no recovery target specified' }] }),
      pg: { isPrimary: true, timeline: 1 },
    }),
    'demoting self because i am not the healthiest node',
    ['Demote(immediate-nolock)'],
  ),
  sc(
    'unlocked, backoff after a failed pre_promote script',
    snap({ cluster: unlocked(), memory: { releasedLeaderKeyAt: NOW - 5000 }, peers: PEERS_BEHIND }),
    'following a different leader because i am not the healthiest node',
    ['FollowLeader(none)'],
  ),
  sc(
    'unlocked, still starting up: not healthy',
    snap({ cluster: unlocked(), pg: { state: 'starting' }, peers: PEERS_BEHIND }),
    'following a different leader because i am not the healthiest node',
    ['FollowLeader(none)'],
  ),
  sc(
    'unlocked, paused: no automatic promotion',
    snap({ cluster: unlocked(), config: { paused: true }, peers: PEERS_BEHIND }),
    'no action. I am (node2)',
  ),
];

const switchover: Scenario[] = [
  sc(
    'leader, switchover to a healthy candidate: graceful demote, key kept',
    leaderSnap({
      cluster: cluster({ failover: { leader: 'node1', member: 'node2' } }),
      peers: { node2: peer() },
    }),
    'switchover: demoting myself',
    [LEADER_LOCK_LOST, 'Demote(graceful)~'],
  ),
  sc(
    'leader, failover key without leader (failover): graceful demote',
    leaderSnap({ cluster: cluster({ failover: { member: 'node2' } }), peers: { node2: peer() } }),
    'failover: demoting myself',
    [LEADER_LOCK_LOST, 'Demote(graceful)~'],
  ),
  sc(
    'leader, failover to a candidate with failover_priority 0 but nofailover: false (nofailover wins): demote',
    leaderSnap({
      cluster: cluster({ failover: { member: 'node2' } }),
      peers: { node2: peer({ nofailover: false, failoverPriority: 0 }), node3: peer({ reachable: false }) },
    }),
    'failover: demoting myself',
    [LEADER_LOCK_LOST, 'Demote(graceful)~'],
  ),
  sc(
    'leader, failover to a candidate with nofailover: true and failover_priority 1: clear the key, stay leader',
    leaderSnap({
      cluster: cluster({ failover: { member: 'node2' } }),
      peers: { node2: peer({ nofailover: true, failoverPriority: 1 }), node3: peer({ reachable: false }) },
    }),
    'no action. I am (node1), the leader with the lock',
    [LEADER_LOCK_LOST, 'ClearFailoverKey(7)', 'ProcessSyncReplication', 'WriteHistory'],
  ),
  sc(
    'leader, candidate unreachable: clear the key, stay leader',
    leaderSnap({
      cluster: cluster({ failover: { leader: 'node1', member: 'node2' } }),
      peers: { node2: peer({ reachable: false }) },
    }),
    'no action. I am (node1), the leader with the lock',
    [LEADER_LOCK_LOST, 'ClearFailoverKey(7)', 'ProcessSyncReplication', 'WriteHistory'],
  ),
  sc(
    'leader, candidate lags beyond maximum_lag_on_failover: clear the key',
    leaderSnap({
      cluster: cluster({ failover: { leader: 'node1', member: 'node2' } }),
      peers: { node2: peer({ walPosition: WAL - 2n * MB }) },
    }),
    'no action. I am (node1), the leader with the lock',
    [LEADER_LOCK_LOST, 'ClearFailoverKey(7)', 'ProcessSyncReplication', 'WriteHistory'],
  ),
  sc(
    'leader, switchover needs peer statuses: probe first',
    leaderSnap({ cluster: cluster({ failover: { leader: 'node1', member: 'node2' } }) }),
    'probing members',
    ['ProbePeers(node2,node3)'],
  ),
  sc(
    'leader, scheduled switchover in the future: wait, keep the key',
    leaderSnap({
      cluster: cluster({
        failover: { leader: 'node1', member: 'node2', scheduledAt: '2024-05-01T12:05:00+00:00' },
      }),
    }),
    'no action. I am (node1), the leader with the lock',
    [LEADER_LOCK_LOST, 'ProcessSyncReplication', 'WriteHistory'],
  ),
  sc(
    'leader, scheduled switchover due in 3 s: wait for it, then demote',
    leaderSnap({
      cluster: cluster({
        failover: { leader: 'node1', member: 'node2', scheduledAt: '2024-05-01T12:00:03Z' },
      }),
      peers: { node2: peer() },
    }),
    'switchover: demoting myself',
    [LEADER_LOCK_LOST, 'Wait(3000)', 'Demote(graceful)~'],
  ),
  sc(
    'leader, stale scheduled switchover: clear it',
    leaderSnap({
      cluster: cluster({
        failover: { leader: 'node1', member: 'node2', scheduledAt: '2024-05-01T11:59:00Z' },
      }),
    }),
    'no action. I am (node1), the leader with the lock',
    [LEADER_LOCK_LOST, 'ClearFailoverKey(7)', 'ProcessSyncReplication', 'WriteHistory'],
  ),
  sc(
    'leader, key names another leader: clear it',
    leaderSnap({ cluster: cluster({ failover: { leader: 'node3', member: 'node2' } }) }),
    'no action. I am (node1), the leader with the lock',
    [LEADER_LOCK_LOST, 'ClearFailoverKey(7)', 'ProcessSyncReplication', 'WriteHistory'],
  ),
  sc(
    'leader, synchronous mode and the candidate is not in /sync: clear the key',
    leaderSnap({
      config: { synchronousMode: 'on' },
      cluster: cluster({
        failover: { leader: 'node1', member: 'node2' },
        sync: { leader: 'node1', syncStandby: 'node3', members: ['node3'] },
      }),
    }),
    'no action. I am (node1), the leader with the lock',
    [LEADER_LOCK_LOST, 'ClearFailoverKey(7)', 'ProcessSyncReplication', 'WriteHistory'],
  ),
  sc(
    'candidate, lock released by the old leader: take it, clear the key, promote',
    snap({ cluster: unlocked({ failover: { leader: 'node1', member: 'node2' } }) }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, 'ClearFailoverKey(plain)', 'Promote~'],
  ),
  sc(
    'other replica while the named candidate is healthy: let it win',
    snap({
      name: 'node3',
      cluster: unlocked({ failover: { leader: 'node1', member: 'node2' } }),
      peers: { node2: peer() },
    }),
    'following a different leader because i am not the healthiest node',
    ['Wait(2000)', 'FollowLeader(none)'],
  ),
  sc(
    'other replica while the candidate is down: race, ignoring maximum_lag_on_failover',
    snap({
      name: 'node3',
      cluster: unlocked({ failover: { leader: 'node1', member: 'node2' }, optime: WAL + 10n * MB }),
      peers: { node2: peer({ reachable: false }) },
    }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, 'ClearFailoverKey(plain)', 'Promote~'],
  ),
  sc(
    'old leader (demoted) while nobody else can take over: take the lock back',
    snap({
      name: 'node1',
      cluster: unlocked({ failover: { leader: 'node1', member: 'node2' } }),
      peers: { node2: peer({ reachable: false }), node3: peer({ reachable: false }) },
    }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, 'ClearFailoverKey(plain)', 'Promote~'],
  ),
  sc(
    'paused, manual failover to me: take the lock, keep the key for the candidate, promote',
    snap({ config: { paused: true }, cluster: unlocked({ failover: { leader: 'node1', member: 'node2' } }) }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, 'RewriteFailoverKey(node2;v7)', 'Promote~'],
  ),
];

const CRASHED_PRIMARY = {
  isRunning: false,
  isPrimary: false,
  state: 'crashed',
  wasPrimary: true,
  recoveryConfExists: false,
} as const;
const REFRESH_ELSE_SECONDARY =
  'RefreshLock else {starting as a secondary: StartPostgres(replica,lock-holder,-)~, UpdateMemory(recovering=true,startTimeout=undefined)}';

const crashedPrimary: Scenario[] = [
  ...(['in production', 'in crash recovery', 'shutting down', 'shut down'] as const).map((controlState) =>
    sc(
      `primary crashed under us (${controlState}), lock held: start it as primary again, same timeline`,
      leaderSnap({ pg: { ...CRASHED_PRIMARY, controlState } }),
      'starting primary after failure',
      [
        REFRESH_ELSE_SECONDARY,
        'StartPostgres(primary,none,300)~',
        'UpdateMemory(recovering=true,startTimeout=300)',
      ],
    ),
  ),
  sc(
    'primary crashed under us, primary_start_timeout 60: start as primary, waiting up to 60 s',
    leaderSnap({
      config: { primaryStartTimeout: 60 },
      pg: { ...CRASHED_PRIMARY, controlState: 'in production' },
    }),
    'starting primary after failure',
    [
      REFRESH_ELSE_SECONDARY,
      'StartPostgres(primary,none,60)~',
      'UpdateMemory(recovering=true,startTimeout=60)',
    ],
  ),
  sc(
    'primary crashed under us, primary_start_timeout 0, a healthy replica: fail over instead',
    leaderSnap({
      config: { primaryStartTimeout: 0 },
      pg: { ...CRASHED_PRIMARY, controlState: 'in production' },
      peers: { node2: peer(), node3: peer() },
    }),
    'stopped PostgreSQL to fail over after a crash',
    [REFRESH_ELSE_SECONDARY, 'Demote(immediate)'],
  ),
  sc(
    'primary crashed under us, primary_start_timeout 0, nobody to fail over to: read-only start (timeout 0)',
    leaderSnap({
      config: { primaryStartTimeout: 0 },
      pg: { ...CRASHED_PRIMARY, controlState: 'in production' },
      peers: { node2: peer({ reachable: false }), node3: peer({ walPosition: 0n }) },
    }),
    'starting as readonly because i had the session lock',
    [
      REFRESH_ELSE_SECONDARY,
      'StartPostgres(replica,none,0)~',
      'UpdateMemory(recovering=true,startTimeout=0)',
    ],
  ),
  sc(
    'crashed primary with standby.signal in its data directory: not started as primary',
    leaderSnap({ pg: { ...CRASHED_PRIMARY, recoveryConfExists: true, controlState: 'in production' } }),
    'starting as readonly because i had the session lock',
    [
      REFRESH_ELSE_SECONDARY,
      'StartPostgres(replica,none,300)~',
      'UpdateMemory(recovering=true,startTimeout=300)',
    ],
  ),
  sc(
    'primary found stopped at agent start (state stopped, not crashed): read-only start, as Patroni',
    leaderSnap({ pg: { ...CRASHED_PRIMARY, state: 'stopped', controlState: 'in production' } }),
    'starting as readonly because i had the session lock',
    [
      REFRESH_ELSE_SECONDARY,
      'StartPostgres(replica,none,300)~',
      'UpdateMemory(recovering=true,startTimeout=300)',
    ],
  ),
  sc(
    'crashed replica (last role replica) holding the lock: read-only start',
    leaderSnap({ pg: { ...CRASHED_PRIMARY, wasPrimary: false, controlState: 'in production' } }),
    'starting as readonly because i had the session lock',
    [
      REFRESH_ELSE_SECONDARY,
      'StartPostgres(replica,none,300)~',
      'UpdateMemory(recovering=true,startTimeout=300)',
    ],
  ),
  sc(
    'crashed primary left in archive recovery (not a primary control state): read-only start',
    leaderSnap({ pg: { ...CRASHED_PRIMARY, controlState: 'in archive recovery' } }),
    'starting as readonly because i had the session lock',
    [
      REFRESH_ELSE_SECONDARY,
      'StartPostgres(replica,none,300)~',
      'UpdateMemory(recovering=true,startTimeout=300)',
    ],
  ),
  sc(
    'crashed primary, the lock held by another member: never started as primary',
    snap({ pg: { ...CRASHED_PRIMARY, controlState: 'shut down' } }),
    'starting as a secondary',
    ['StartPostgres(replica,node1,-)~', 'UpdateMemory(recovering=true,startTimeout=undefined)'],
  ),
  sc(
    'start as primary after a crash failed, lock held: demoted (on_role_change), then the lock removed',
    leaderSnap({
      memory: { recovering: true },
      pg: { isRunning: false, isPrimary: false, state: 'start failed', wasPrimary: true },
    }),
    'removed leader key after trying and failing to start postgres',
    ['UpdateMemory(recovering=false)', 'MarkDemoted', 'ReleaseLock(delete)'],
  ),
];

const crash: Scenario[] = [
  sc(
    'leader crashed uncleanly, holding the lock: start read-only (no crash recovery without rewind)',
    leaderSnap({
      pg: { isRunning: false, isPrimary: false, state: 'crashed', controlState: 'in production' },
    }),
    'starting as readonly because i had the session lock',
    [
      'RefreshLock else {starting as a secondary: StartPostgres(replica,lock-holder,-)~, UpdateMemory(recovering=true,startTimeout=undefined)}',
      'StartPostgres(replica,none,300)~',
      'UpdateMemory(recovering=true,startTimeout=300)',
    ],
  ),
  sc(
    'leader crashed, primary_start_timeout 0 and a healthy replica: fail over',
    leaderSnap({
      config: { primaryStartTimeout: 0 },
      pg: { isRunning: false, isPrimary: false, state: 'crashed', controlState: 'in production' },
      peers: { node2: peer(), node3: peer() },
    }),
    'stopped PostgreSQL to fail over after a crash',
    [
      'RefreshLock else {starting as a secondary: StartPostgres(replica,lock-holder,-)~, UpdateMemory(recovering=true,startTimeout=undefined)}',
      'Demote(immediate)',
    ],
  ),
  sc(
    'leader crashed, primary_start_timeout 0 but no healthy replica: restart',
    leaderSnap({
      config: { primaryStartTimeout: 0 },
      pg: { isRunning: false, isPrimary: false, state: 'crashed', controlState: 'shut down' },
      peers: { node2: peer({ reachable: false }), node3: peer({ walPosition: 0n }) },
    }),
    'starting as readonly because i had the session lock',
    [
      'RefreshLock else {starting as a secondary: StartPostgres(replica,lock-holder,-)~, UpdateMemory(recovering=true,startTimeout=undefined)}',
      'StartPostgres(replica,none,0)~',
      'UpdateMemory(recovering=true,startTimeout=0)',
    ],
  ),
  sc(
    'crashed replica shut down in archive recovery, unlocked cluster: no crash recovery, start as a secondary',
    snap({
      cluster: unlocked(),
      pg: { isRunning: false, state: 'crashed', controlState: 'in archive recovery' },
    }),
    'starting as a secondary',
    ['StartPostgres(replica,none,-)~', 'UpdateMemory(recovering=true,startTimeout=undefined)'],
  ),
  sc(
    'crashed former primary, unlocked cluster, unclean: crash recovery',
    snap({ cluster: unlocked(), pg: { isRunning: false, state: 'crashed', controlState: 'in production' } }),
    'doing crash recovery in a single user mode',
    [`UpdateMemory(crashRecoveryExecuted=true,crashRecoveryStartedAt=${NOW})`, 'CrashRecovery~'],
  ),
  sc(
    'crashed former primary, locked by another, unclean, pg_rewind usable: crash recovery first',
    snap({
      me: { canRewind: true },
      pg: { isRunning: false, state: 'crashed', controlState: 'in production' },
    }),
    'doing crash recovery in a single user mode',
    [`UpdateMemory(crashRecoveryExecuted=true,crashRecoveryStartedAt=${NOW})`, 'CrashRecovery~'],
  ),
  sc(
    'stopped former primary diverged from the leader, pg_rewind usable: rewind',
    snap({
      me: { canRewind: true },
      memory: { crashRecoveryExecuted: true },
      pg: {
        isRunning: false,
        state: 'stopped',
        controlState: 'shut down',
        diverged: { leader: 'node1', remedy: 'rewind' },
      },
    }),
    'running pg_rewind from node1',
    ['Rewind(node1)~'],
  ),
  sc(
    'diverged but left in archive recovery: crash recovery before pg_rewind',
    snap({
      me: { canRewind: true },
      pg: {
        isRunning: false,
        state: 'stopped',
        controlState: 'in archive recovery',
        diverged: { leader: 'node1', remedy: 'rewind' },
      },
    }),
    'doing crash recovery in a single user mode',
    [`UpdateMemory(crashRecoveryExecuted=true,crashRecoveryStartedAt=${NOW})`, 'CrashRecovery~'],
  ),
  sc(
    'stopped member diverged, remove_data_directory_on_diverged_timelines: reinitialize',
    snap({
      pg: {
        isRunning: false,
        state: 'stopped',
        controlState: 'shut down',
        diverged: { leader: 'node1', remedy: 'reinitialize' },
      },
    }),
    'reinitializing due to diverged timelines',
    ['Reinitialize(node1)~'],
  ),
  sc(
    'divergence found against a former leader: ignored, start following the current one',
    snap({
      me: { canRewind: true },
      pg: {
        isRunning: false,
        state: 'stopped',
        controlState: 'shut down',
        diverged: { leader: 'node3', remedy: 'rewind' },
      },
    }),
    'starting as a secondary',
    ['StartPostgres(replica,node1,-)~', 'UpdateMemory(recovering=true,startTimeout=undefined)'],
  ),
  sc(
    'running replica diverged from the leader: rewind instead of following',
    snap({ me: { canRewind: true }, pg: { diverged: { leader: 'node1', remedy: 'rewind' } } }),
    'running pg_rewind from node1',
    ['Rewind(node1)~'],
  ),
  sc(
    'stopped replica in a locked cluster: start following the leader',
    snap({ pg: { isRunning: false, state: 'stopped', controlState: 'shut down in recovery' } }),
    'starting as a secondary',
    ['StartPostgres(replica,node1,-)~', 'UpdateMemory(recovering=true,startTimeout=undefined)'],
  ),
  sc(
    'restart after a crash did not come up, lock held: remove the lock',
    leaderSnap({
      memory: { recovering: true },
      pg: { isRunning: false, isPrimary: false, state: 'start failed' },
    }),
    'removed leader key after trying and failing to start postgres',
    ['UpdateMemory(recovering=false)', 'ReleaseLock(delete)'],
  ),
  sc(
    'leader still starting within primary_start_timeout',
    leaderSnap({ pg: { state: 'starting', isPrimary: false, msInState: 100_000 } }),
    'PostgreSQL is still starting up, 200 seconds until timeout',
    [
      'RefreshLock else {stopped PostgreSQL while starting up because leader key was lost: Demote(immediate-nolock)}',
    ],
  ),
  sc(
    'leader start exceeded primary_start_timeout, failover possible',
    leaderSnap({ pg: { state: 'starting', isPrimary: false, msInState: 301_000 }, peers: { node2: peer() } }),
    'stopped PostgreSQL because of startup timeout',
    [
      'RefreshLock else {stopped PostgreSQL while starting up because leader key was lost: Demote(immediate-nolock)}',
      'Demote(immediate)',
    ],
  ),
  sc(
    'leader start exceeded primary_start_timeout, nobody to fail over to',
    leaderSnap({ pg: { state: 'starting', isPrimary: false, msInState: 301_000 }, peers: {} }),
    'primary start has timed out, but continuing to wait because failover is not possible',
    [
      'RefreshLock else {stopped PostgreSQL while starting up because leader key was lost: Demote(immediate-nolock)}',
    ],
  ),
  sc(
    'paused, leader postgres stopped: remove the lock, do not start',
    leaderSnap({ config: { paused: true }, pg: { isRunning: false, isPrimary: false, state: 'stopped' } }),
    'removed leader lock because postgres is not running',
    ['ReleaseLock(delete)'],
  ),
  sc(
    'paused, replica postgres stopped: leave it',
    snap({ config: { paused: true }, pg: { isRunning: false, state: 'stopped' } }),
    'postgres is not running',
  ),
  sc(
    'paused, a former primary just rejoined by pg_rewind: started as a replica of the leader (ha.py _run_cycle)',
    snap({
      config: { paused: true },
      memory: { rewindSucceeded: true },
      pg: { isRunning: false, state: 'stopped', controlState: 'shut down in recovery' },
    }),
    'starting as a secondary',
    ['StartPostgres(replica,node1,-)~', 'UpdateMemory(recovering=true,startTimeout=undefined)'],
  ),
  sc(
    'paused, a demoted former primary diverged from the leader: pg_rewind at once (ha.py _run_cycle, rewind needed)',
    snap({
      config: { paused: true },
      me: { canRewind: true },
      pg: {
        isRunning: false,
        state: 'stopped',
        controlState: 'shut down',
        diverged: { leader: 'node1', remedy: 'rewind' },
      },
    }),
    'running pg_rewind from node1',
    ['Rewind(node1)~'],
  ),
  sc(
    'paused, diverged from a member that no longer leads: leave it stopped',
    snap({
      config: { paused: true },
      me: { canRewind: true },
      pg: {
        isRunning: false,
        state: 'stopped',
        controlState: 'shut down',
        diverged: { leader: 'node3', remedy: 'rewind' },
      },
    }),
    'postgres is not running',
  ),
];

const longActions: Scenario[] = [
  sc(
    'leader during a restart: keep the lock alive',
    leaderSnap({ pendingAsync: { kind: 'restart', description: 'restart', startedAt: NOW - 5000 } }),
    'updated leader lock during restart',
    ['RefreshLock else {lost leader lock during restart: CancelAsync(restart), Demote(immediate-nolock)}'],
  ),
  sc(
    'promote in progress but the lock is gone: cancel it',
    snap({ pendingAsync: { kind: 'promote', description: 'promote', startedAt: NOW - 1000 } }),
    'lost leader before promote',
    ['CancelAsync(promote)'],
  ),
  sc(
    'promote finished but the lock is gone: cancel and demote',
    snap({
      pg: { isPrimary: true },
      pendingAsync: { kind: 'promote', description: 'promote', startedAt: NOW - 1000 },
    }),
    'lost leader lock during promote',
    ['CancelAsync(promote)', 'Demote(immediate-nolock)'],
  ),
  sc(
    'replica cloning: nothing else',
    snap({
      pendingAsync: { kind: 'clone', description: "bootstrap from leader 'node1'", startedAt: NOW - 1000 },
    }),
    "bootstrap from leader 'node1' in progress",
  ),
  sc(
    'leader in single-user crash recovery past primary_start_timeout: terminate it and fail over',
    leaderSnap({
      pg: { isRunning: false, isPrimary: false },
      pendingAsync: {
        kind: 'crash_recovery',
        description: 'doing crash recovery in a single user mode',
        startedAt: NOW - 400_000,
      },
      memory: { crashRecoveryStartedAt: NOW - 400_000 },
      peers: { node2: peer() },
    }),
    'terminated crash recovery because of startup timeout',
    [
      'RefreshLock else {doing crash recovery in a single user mode in progress}',
      'CancelAsync(crash_recovery)',
      'Demote(immediate)',
    ],
  ),
];

const SYNC_ON = { synchronousMode: 'on' } as const;
const PROMOTE_SYNC = (me: string, v = '5'): string =>
  `WriteSyncState(${me};;v${v}) else {Postponing promotion because synchronous replication state was updated by somebody else}`;
const synchronous: readonly Scenario[] = [
  sc(
    'leader in synchronous mode maintains synchronous_standby_names and /sync each cycle',
    leaderSnap({
      config: SYNC_ON,
      cluster: cluster({ sync: { leader: 'node1', syncStandby: 'node2', members: ['node2'] } }),
    }),
    'no action. I am (node1), the leader with the lock',
    [LEADER_LOCK_LOST, 'ProcessSyncReplication', 'WriteHistory'],
  ),
  sc(
    'unlocked, synchronous mode: the sync standby wins although an async replica is further ahead',
    snap({
      cluster: unlocked({ sync: { leader: 'node1', syncStandby: 'node2', members: ['node2'] } }),
      config: SYNC_ON,
      peers: { node1: peer({ reachable: false }), node3: peer({ walPosition: WAL + 10n * MB }) },
    }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, PROMOTE_SYNC('node2'), 'SetSSN()', 'Promote~'],
  ),
  sc(
    'unlocked, synchronous mode: the async replica furthest ahead still does not race',
    snap({
      name: 'node3',
      cluster: unlocked({ sync: { leader: 'node1', syncStandby: 'node2', members: ['node2'] } }),
      config: SYNC_ON,
      pg: { walPosition: WAL + 10n * MB },
      peers: { node1: peer({ reachable: false }), node2: peer() },
    }),
    'following a different leader because i am not the healthiest node',
    ['FollowLeader(none)'],
  ),
  sc(
    'unlocked, strict synchronous mode: the new leader claims /sync and sets SSN=* before promoting',
    snap({
      cluster: unlocked({ sync: { leader: 'node1', syncStandby: 'node2', members: ['node2'] } }),
      config: { ...SYNC_ON, synchronousModeStrict: true },
      peers: PEERS_BEHIND,
    }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, PROMOTE_SYNC('node2'), 'SetSSN(*)', 'Promote~'],
  ),
  sc(
    'unlocked, synchronous_node_count 2: a sync standby defers to the other one further ahead',
    snap({
      cluster: unlocked({
        sync: { leader: 'node1', syncStandby: 'node2,node3', members: ['node2', 'node3'] },
      }),
      config: SYNC_ON,
      peers: { node1: peer({ reachable: false }), node3: peer({ walPosition: WAL + 1n }) },
    }),
    'following a different leader because i am not the healthiest node',
    ['FollowLeader(none)'],
  ),
  sc(
    'unlocked, /sync names match case-insensitively',
    snap({
      cluster: unlocked({ sync: { leader: 'node1', syncStandby: 'NODE2', members: ['NODE2'] } }),
      config: SYNC_ON,
      peers: PEERS_BEHIND,
    }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, PROMOTE_SYNC('node2'), 'SetSSN()', 'Promote~'],
  ),
  sc(
    'unlocked, synchronous mode but /sync empty: the usual race, an async replica may win',
    snap({
      name: 'node3',
      cluster: unlocked(),
      config: SYNC_ON,
      peers: { node1: peer({ reachable: false }), node2: peer({ walPosition: WAL - 1000n }) },
    }),
    'promoted self to leader by acquiring session lock',
    [
      ACQUIRE_ELSE_FOLLOW,
      'WriteSyncState(node3;;v-) else {Postponing promotion because synchronous replication state was updated by somebody else}',
      'SetSSN()',
      'Promote~',
    ],
  ),
  sc(
    'unlocked, synchronous mode off: a stale /sync does not restrict the race',
    snap({
      name: 'node3',
      cluster: unlocked({ sync: { leader: 'node1', syncStandby: 'node2', members: ['node2'] } }),
      peers: { node1: peer({ reachable: false }), node2: peer({ walPosition: WAL - 1000n }) },
    }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, 'Promote~'],
  ),
  sc(
    'switchover in synchronous mode: a replica outside /sync does not race',
    snap({
      name: 'node3',
      cluster: unlocked({
        sync: { leader: 'node1', syncStandby: 'node2', members: ['node2'] },
        failover: { leader: 'node1', member: 'node2' },
      }),
      config: SYNC_ON,
      peers: { node1: peer({ reachable: false }), node2: peer({ reachable: false }) },
    }),
    'following a different leader because i am not the healthiest node',
    ['Wait(2000)', 'FollowLeader(none)'],
  ),
  sc(
    'primary crashed, primary_start_timeout 0, synchronous mode: only a healthy /sync member makes failover possible',
    snap({
      name: 'node1',
      cluster: cluster({ sync: { leader: 'node1', syncStandby: 'node3', members: ['node3'] } }),
      config: { ...SYNC_ON, primaryStartTimeout: 0 },
      pg: { isRunning: false, state: 'crashed', controlState: 'shut down' },
      peers: { node2: peer(), node3: peer({ reachable: false }) },
    }),
    'starting as readonly because i had the session lock',
    [
      'RefreshLock else {starting as a secondary: SetSSN(), StartPostgres(replica,lock-holder,-)~, UpdateMemory(recovering=true,startTimeout=undefined)}',
      'StartPostgres(replica,none,0)~',
      'UpdateMemory(recovering=true,startTimeout=0)',
    ],
  ),
  sc(
    'primary crashed, primary_start_timeout 0, synchronous mode, the /sync member healthy: fail over',
    snap({
      name: 'node1',
      cluster: cluster({ sync: { leader: 'node1', syncStandby: 'node3', members: ['node3'] } }),
      config: { ...SYNC_ON, primaryStartTimeout: 0 },
      pg: { isRunning: false, state: 'crashed', controlState: 'shut down' },
      peers: { node2: peer({ reachable: false }), node3: peer() },
    }),
    'stopped PostgreSQL to fail over after a crash',
    [
      'RefreshLock else {starting as a secondary: SetSSN(), StartPostgres(replica,lock-holder,-)~, UpdateMemory(recovering=true,startTimeout=undefined)}',
      'Demote(immediate)',
    ],
  ),
  sc(
    'replica restarting in synchronous mode: synchronous_standby_names cleared first',
    snap({
      config: SYNC_ON,
      pg: { isRunning: false, state: 'crashed', controlState: 'shut down in recovery' },
    }),
    'starting as a secondary',
    ['SetSSN()', 'StartPostgres(replica,node1,-)~', 'UpdateMemory(recovering=true,startTimeout=undefined)'],
  ),
];

const QUORUM = { synchronousMode: 'quorum' } as const;
// node1 led with node2 and node3 voting, quorum 1: a commit was acknowledged by at least one of them.
const QSYNC = { leader: 'node1', syncStandby: 'node2,node3', members: ['node2', 'node3'], quorum: 1 };
const FOUR = [...THREE, member('node4')];
const quorumCommit: readonly Scenario[] = [
  sc(
    'leader in quorum commit mode runs the resolver each cycle',
    leaderSnap({ config: QUORUM, cluster: cluster({ sync: QSYNC }) }),
    'no action. I am (node1), the leader with the lock',
    [LEADER_LOCK_LOST, 'ProcessSyncReplication', 'WriteHistory'],
  ),
  sc(
    'unlocked: a voter with the vote of the other voter wins and keeps ANY 1 of the old leader and that voter',
    snap({
      cluster: unlocked({ sync: QSYNC }),
      config: QUORUM,
      peers: { node1: peer({ reachable: false }), node3: peer() },
    }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, 'SetSSN(node1,node3#1)', 'Promote~'],
  ),
  sc(
    'unlocked: a voter that cannot reach the quorum (the other voter frozen) does not race',
    snap({
      cluster: unlocked({ sync: QSYNC }),
      config: QUORUM,
      peers: { node1: peer({ reachable: false }), node3: peer({ reachable: false }) },
    }),
    'following a different leader because i am not the healthiest node',
    ['FollowLeader(none)'],
  ),
  sc(
    'unlocked: a voter that another voter reports ahead does not race',
    snap({
      cluster: unlocked({ sync: QSYNC }),
      config: QUORUM,
      peers: { node1: peer({ reachable: false }), node3: peer({ walPosition: WAL + 1n }) },
    }),
    'following a different leader because i am not the healthiest node',
    ['FollowLeader(none)'],
  ),
  sc(
    'unlocked: a voter that is not streaming counts no vote (WAL position 0)',
    snap({
      cluster: unlocked({ sync: QSYNC }),
      config: QUORUM,
      peers: { node1: peer({ reachable: false }), node3: peer({ walPosition: 0n }) },
    }),
    'following a different leader because i am not the healthiest node',
    ['FollowLeader(none)'],
  ),
  sc(
    'unlocked: a member outside the voters may win with quorum + 1 votes, then needs one more acknowledgement',
    snap({
      name: 'node4',
      cluster: unlocked({ members: FOUR, sync: QSYNC }),
      config: QUORUM,
      peers: { node1: peer({ reachable: false }), node2: peer(), node3: peer() },
    }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, 'SetSSN(node1,node2,node3#2)', 'Promote~'],
  ),
  sc(
    'unlocked: a member outside the voters with a single vote does not race',
    snap({
      name: 'node4',
      cluster: unlocked({ members: FOUR, sync: QSYNC }),
      config: QUORUM,
      peers: { node1: peer({ reachable: false }), node2: peer(), node3: peer({ reachable: false }) },
    }),
    'following a different leader because i am not the healthiest node',
    ['FollowLeader(none)'],
  ),
  sc(
    'unlocked, /sync empty: the usual race, no synchronous standby before promoting (ANY 1 (*) when strict)',
    snap({
      cluster: unlocked(),
      config: { ...QUORUM, synchronousModeStrict: true },
      peers: PEERS_BEHIND,
    }),
    'promoted self to leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, 'SetSSN(#1)', 'Promote~'],
  ),
  sc(
    'primary crashed, primary_start_timeout 0: a failover is impossible while the quorum cannot be reached',
    snap({
      name: 'node1',
      cluster: cluster({ sync: QSYNC }),
      config: { ...QUORUM, primaryStartTimeout: 0 },
      pg: { isRunning: false, state: 'crashed', controlState: 'shut down' },
      peers: { node2: peer(), node3: peer({ reachable: false }) },
    }),
    'starting as readonly because i had the session lock',
    [
      'RefreshLock else {starting as a secondary: SetSSN(), StartPostgres(replica,lock-holder,-)~, UpdateMemory(recovering=true,startTimeout=undefined)}',
      'StartPostgres(replica,none,0)~',
      'UpdateMemory(recovering=true,startTimeout=0)',
    ],
  ),
  sc(
    'primary crashed, primary_start_timeout 0: both voters healthy, fail over',
    snap({
      name: 'node1',
      cluster: cluster({ sync: QSYNC }),
      config: { ...QUORUM, primaryStartTimeout: 0 },
      pg: { isRunning: false, state: 'crashed', controlState: 'shut down' },
      peers: { node2: peer(), node3: peer() },
    }),
    'stopped PostgreSQL to fail over after a crash',
    [
      'RefreshLock else {starting as a secondary: SetSSN(), StartPostgres(replica,lock-holder,-)~, UpdateMemory(recovering=true,startTimeout=undefined)}',
      'Demote(immediate)',
    ],
  ),
];

// A standby cluster (Patroni's is_standby_cluster): the lock holder is the standby leader, following the remote.
const STANDBY = { standby: { host: '10.0.0.9', port: 5432, primarySlotName: 'pm_1' } } as const;
const REMOTE_DIVERGED = { diverged: { leader: 'remote_member', remedy: 'rewind' } } as const;
const standbyCluster: readonly Scenario[] = [
  sc(
    'standby leader diverged from the remote primary (it failed over to a new timeline): pg_rewind from the remote',
    snap({
      name: 'node1',
      config: STANDBY,
      me: { canRewind: true },
      pg: { ...REMOTE_DIVERGED, isStandbyLeader: true },
    }),
    'running pg_rewind from remote_member',
    [REPLICA_LOCK_LOST, 'Rewind(remote_member,remote)~'],
  ),
  sc(
    'replica of a standby cluster diverged from the remote primary: pg_rewind from the remote, not the standby leader',
    snap({ config: STANDBY, me: { canRewind: true }, pg: REMOTE_DIVERGED }),
    'running pg_rewind from remote_member',
    ['Rewind(remote_member,remote)~'],
  ),
  sc(
    'stopped standby leader diverged from the remote primary: pg_rewind before starting again',
    snap({
      name: 'node1',
      config: STANDBY,
      me: { canRewind: true },
      memory: { crashRecoveryExecuted: true },
      pg: {
        ...REMOTE_DIVERGED,
        isRunning: false,
        state: 'stopped',
        controlState: 'shut down in recovery',
        isStandbyLeader: true,
      },
    }),
    'running pg_rewind from remote_member',
    [
      'RefreshLock else {starting as a secondary: StartPostgres(replica,lock-holder,-)~, UpdateMemory(recovering=true,startTimeout=undefined)}',
      'Rewind(remote_member,remote)~',
    ],
  ),
  sc(
    'standby cluster diverged, only remove_data_directory_on_diverged_timelines: never reinitialized, keeps following',
    snap({
      name: 'node1',
      config: STANDBY,
      pg: { diverged: { leader: 'remote_member', remedy: 'reinitialize' }, isStandbyLeader: true },
    }),
    'no action. I am (node1), the standby leader with the lock',
    [REPLICA_LOCK_LOST, 'FollowLeader(remote,standby_leader)'],
  ),
  sc(
    'standby cluster replaying from the archive only (no remote host/port): no rewind',
    snap({
      config: { standby: { restoreCommand: 'cp %f %p' } },
      me: { canRewind: true },
      pg: REMOTE_DIVERGED,
    }),
    'no action. I am (node2), a secondary, and following a standby leader (node1)',
    ['FollowLeader(node1)'],
  ),
  sc(
    'standby cluster: a divergence found against the standby leader (not the remote) is ignored',
    snap({
      config: STANDBY,
      me: { canRewind: true },
      pg: { diverged: { leader: 'node1', remedy: 'rewind' } },
    }),
    'no action. I am (node2), a secondary, and following a standby leader (node1)',
    ['FollowLeader(node1)'],
  ),
  sc(
    'standby leader with the lock: refresh, keep following the remote primary, never promote',
    snap({ name: 'node1', config: STANDBY, pg: { isStandbyLeader: true } }),
    'no action. I am (node1), the standby leader with the lock',
    [REPLICA_LOCK_LOST, 'FollowLeader(remote,standby_leader)'],
  ),
  sc(
    'replica holding the lock of a standby cluster: becomes its standby leader',
    snap({ name: 'node1', config: STANDBY }),
    'promoted self to a standby leader because i had the session lock',
    [REPLICA_LOCK_LOST, 'FollowLeader(remote,standby_leader)'],
  ),
  sc(
    'standby leader in pause: keeps the lock (a primary cluster would release it)',
    snap({ name: 'node1', config: { ...STANDBY, paused: true }, pg: { isStandbyLeader: true } }),
    'no action. I am (node1), the standby leader with the lock',
    [REPLICA_LOCK_LOST, 'FollowLeader(remote,standby_leader)'],
  ),
  sc(
    'standby_cluster added to a running primary cluster: the leader demotes to a standby leader (demote-cluster)',
    leaderSnap({ config: STANDBY }),
    'cannot be a real primary in standby cluster',
    [LEADER_LOCK_LOST, 'Demote(demote-cluster)~'],
  ),
  sc(
    'standby_cluster removed: the standby leader holding the lock is promoted',
    snap({ name: 'node1', pg: { isStandbyLeader: true } }),
    'promoted self to leader because I had the session lock',
    [REPLICA_LOCK_LOST, 'Promote~'],
  ),
  sc(
    'a replica of a standby cluster follows the standby leader',
    snap({ config: STANDBY }),
    'no action. I am (node2), a secondary, and following a standby leader (node1)',
    ['FollowLeader(node1)'],
  ),
  sc(
    'a running primary without the lock in a standby cluster: demote-cluster',
    snap({ config: STANDBY, pg: { isPrimary: true } }),
    'cannot be a real primary in a standby cluster',
    ['Demote(demote-cluster)~'],
  ),
  sc(
    'a standby cluster whose lock names a member without a key: keep following as before',
    snap({ config: STANDBY, cluster: cluster({ leader: 'ghost' }) }),
    'continue following the old known standby leader',
  ),
  sc(
    'unlocked standby cluster, healthiest: take the lock as the new standby leader, no promotion',
    snap({ config: STANDBY, cluster: unlocked(), peers: PEERS_BEHIND }),
    'promoted self to a standby leader by acquiring session lock',
    [ACQUIRE_ELSE_FOLLOW, 'FollowLeader(remote,standby_leader)'],
  ),
  sc(
    'unlocked standby cluster, not the healthiest: follow the remote primary meanwhile',
    snap({ config: STANDBY, cluster: unlocked(), peers: { node3: peer({ walPosition: WAL + 1n }) } }),
    'following a different leader because i am not the healthiest node',
    ['FollowLeader(remote)'],
  ),
  sc(
    'standby leader crashed, lock still held: start again following the remote primary',
    snap({
      name: 'node1',
      config: STANDBY,
      pg: {
        isRunning: false,
        state: 'crashed',
        controlState: 'shut down in recovery',
        isStandbyLeader: true,
      },
    }),
    'starting as a standby leader because i had the session lock',
    [
      'RefreshLock else {starting as a secondary: StartPostgres(replica,lock-holder,-)~, UpdateMemory(recovering=true,startTimeout=undefined)}',
      'StartPostgres(standby_leader,remote,300)~',
      'UpdateMemory(recovering=true,startTimeout=300)',
    ],
  ),
  sc(
    'unlocked standby cluster, PostgreSQL stopped: start following the remote primary',
    snap({
      config: STANDBY,
      cluster: unlocked(),
      pg: { isRunning: false, state: 'stopped', controlState: 'shut down in recovery' },
    }),
    'trying to follow a remote member because standby cluster is unhealthy',
    ['StartPostgres(replica,remote,-)~', 'UpdateMemory(recovering=true,startTimeout=undefined)'],
  ),
  sc(
    'a new standby cluster: the initialize race, then the remote primary is cloned (bootstrap_standby_leader)',
    snap({
      config: STANDBY,
      cluster: unlocked({ initialize: undefined }),
      pg: { dataDirectoryEmpty: true, isRunning: false },
    }),
    'trying to bootstrap a new standby leader',
    [
      'RaceInitialize else {failed to acquire initialize lock}',
      'UpdateMemory(bootstrapping=true,bootstrapResult=undefined)',
      'Bootstrap(standby_leader)~',
    ],
  ),
  sc(
    'the standby leader bootstrap finished (running in recovery): initialize, config and the lock are written',
    snap({
      config: STANDBY,
      cluster: unlocked({ initialize: '' }),
      memory: { bootstrapping: true, bootstrapResult: true },
      pg: { isStandbyLeader: true },
    }),
    'initialized a new cluster',
    [
      'UpdateMemory(bootstrapping=false,bootstrapResult=undefined)',
      'WriteInitialize(set)',
      'WriteConfig',
      'TakeLeader',
    ],
  ),
  sc(
    'the standby leader bootstrap failed: remove the initialize key',
    snap({
      config: STANDBY,
      cluster: unlocked({ initialize: '' }),
      memory: { bootstrapping: true, bootstrapResult: false },
      pg: { isRunning: false, state: 'stopped' },
    }),
    'removing initialize key after failed attempt to bootstrap the cluster',
    ['CancelInitialization'],
  ),
  sc(
    'a new member of a standby cluster clones from its standby leader',
    snap({ name: 'node4', config: STANDBY, pg: { dataDirectoryEmpty: true, isRunning: false } }),
    "trying to bootstrap from leader 'node1'",
    ['CloneFrom(node1)~'],
  ),
  sc(
    'empty data dir, standby cluster being bootstrapped by another member: wait for its standby leader',
    snap({
      config: STANDBY,
      cluster: unlocked({ initialize: '' }),
      pg: { dataDirectoryEmpty: true, isRunning: false },
    }),
    'waiting for standby_leader to bootstrap',
  ),
  sc(
    'switchover inside a standby cluster: the standby leader steps down gracefully',
    snap({
      name: 'node1',
      config: STANDBY,
      pg: { isStandbyLeader: true },
      cluster: cluster({ failover: { leader: 'node1', member: 'node2' } }),
      peers: { node2: peer() },
    }),
    'switchover: demoting myself',
    [REPLICA_LOCK_LOST, 'Demote(graceful)~'],
  ),
  sc(
    'synchronous_mode is ignored in a standby cluster',
    snap({
      name: 'node1',
      config: {
        ...STANDBY,
        ...haConfigFromDynamic({ standby_cluster: { host: 'h' }, synchronous_mode: true }),
      },
      pg: { isStandbyLeader: true },
    }),
    'no action. I am (node1), the standby leader with the lock',
    [REPLICA_LOCK_LOST, 'FollowLeader(remote,standby_leader)'],
  ),
];

const groups: Readonly<Record<string, readonly Scenario[]>> = {
  'standby cluster': standbyCluster,
  'DCS not accessible': dcsDown,
  'uninitialized cluster, bootstrap and join': uninitialized,
  'locked cluster, I hold the lock': lockedLeader,
  'locked cluster, someone else holds the lock': lockedReplica,
  'unlocked cluster: the leader race': race,
  'switchover / failover key': switchover,
  'crash recovery and start timeouts': crash,
  'a crashed primary holding the lock (Patroni 4.x)': crashedPrimary,
  'long actions in progress': longActions,
  'synchronous mode': synchronous,
  'quorum commit': quorumCommit,
};
const ALL = Object.values(groups).flat();

for (const [group, scenarios] of Object.entries(groups)) {
  describe(`decide(): ${group}`, () => {
    it.each(scenarios.map((s) => [s.name, s] as const))('%s', (_name, s) => {
      const d = decide(s.snapshot);
      expect({ message: d.message, actions: d.actions.map(show) }).toEqual({
        message: s.message,
        actions: s.actions,
      });
    });
  });
}

// ------------------------------------------------------------------------------------------------------------
// safety properties, checked over every scenario plus sweeps

/** Every decision the loop might end up executing: the top level and each guard's fallback, recursively. */
function allBranches(d: Decision): Decision[] {
  const out: Decision[] = [d];
  for (const a of d.actions) if ('otherwise' in a) out.push(...allBranches(a.otherwise));
  return out;
}
const types = (d: Decision): string[] => d.actions.map((a) => a.type);

describe('safety properties', () => {
  it('the table has a scenario count worth reporting', () => {
    expect(ALL.length).toBeGreaterThanOrEqual(80);
  });

  it.each(ALL.map((s) => [s.name, s] as const))('nofailover never acquires the lock: %s', (_n, s) => {
    const snapshot: HaSnapshot = {
      ...s.snapshot,
      me: { ...s.snapshot.me, tags: { ...s.snapshot.me.tags, nofailover: true } },
    };
    for (const b of allBranches(decide(snapshot))) {
      expect(types(b)).not.toContain('AcquireLock');
      expect(types(b)).not.toContain('RaceInitialize');
    }
  });

  it.each(ALL.map((s) => [s.name, s] as const))(
    'a running primary that sees another lock holder always demotes (unless paused): %s',
    (_n, s) => {
      const c = s.snapshot.cluster;
      if (!c) return;
      const snapshot: HaSnapshot = {
        ...s.snapshot,
        cluster: { ...c, leader: { name: 'nodeX', version: '1' } },
        postgres: {
          ...s.snapshot.postgres,
          isRunning: true,
          isPrimary: true,
          state: 'running',
          dataDirectoryEmpty: false,
        },
        memory: INITIAL_MEMORY,
        config: { ...s.snapshot.config, paused: false },
      };
      const d = decide(snapshot);
      if (d.actions.some((a) => a.type === 'Exit')) return; // the agent stops (system ID problems)
      expect(types(d)).toContain('Demote');
    },
  );

  it.each(ALL.map((s) => [s.name, s] as const))(
    'synchronous mode: a replica not in a non-empty /sync never takes the lock on automatic failover: %s',
    (_n, s) => {
      const c = s.snapshot.cluster;
      if (!c) return;
      const snapshot: HaSnapshot = {
        ...s.snapshot,
        config: { ...s.snapshot.config, synchronousMode: 'on' },
        cluster: {
          ...c,
          failover: undefined,
          sync: { version: '5', leader: 'nodeX', syncStandby: 'nodeY', members: ['nodeY'] },
        },
        postgres: { ...s.snapshot.postgres, isPrimary: false },
      };
      for (const b of allBranches(decide(snapshot))) expect(types(b)).not.toContain('AcquireLock');
    },
  );

  it.each([11_000, 20_000, 29_000, 120_000])(
    'a primary whose last lock refresh is %i ms old and cannot reach the DCS demotes',
    (age) => {
      const d = decide(leaderSnap({ cluster: undefined, lastRefreshOk: NOW - age }));
      expect(types(d)).toEqual(['Demote']);
    },
  );

  it('every failed lock refresh of an unpaused primary demotes', () => {
    for (const s of ALL) {
      if (s.snapshot.config.paused || !s.snapshot.postgres.isPrimary) continue;
      for (const a of decide(s.snapshot).actions) {
        if (a.type === 'RefreshLock') expect(types(a.otherwise)).toContain('Demote');
      }
    }
  });

  const lags = [0n, MB / 2n, MB, MB + 1n, 2n * MB, 100n * MB];
  const peerSets: Record<string, PeerStatus>[] = [
    {},
    PEERS_BEHIND,
    { node3: peer({ walPosition: 0n }) },
    { node1: peer({ reachable: false }), node3: peer({ reachable: false }) },
  ];
  it.each(lags.map((lag) => [lag] as const))(
    'never promotes a node %s bytes behind unless within the limit',
    (lag) => {
      for (const peers of peerSets) {
        for (const failover of [undefined, { member: 'node3' }]) {
          const d = decide(
            snap({ cluster: unlocked({ optime: WAL + lag, ...(failover ? { failover } : {}) }), peers }),
          );
          const promotes = types(d).includes('AcquireLock');
          if (lag > MB && failover === undefined) expect(promotes).toBe(false);
          if (lag <= MB && failover === undefined) expect(promotes).toBe(true);
        }
      }
    },
  );
});

describe('loop-side log line and configuration helpers', () => {
  it('prefixes PAUSE: when paused', () => {
    const s = leaderSnap({ config: { paused: true } });
    expect(cycleLogLine(s, decide(s))).toBe('PAUSE: no action. I am (node1), the leader with the lock');
    expect(cycleLogLine(leaderSnap(), decide(leaderSnap()))).toBe(
      'no action. I am (node1), the leader with the lock',
    );
  });

  it.each([
    [
      { ttl: 30, loopWait: 10, retryTimeout: 10 },
      { ttl: 30, loopWait: 10, retryTimeout: 10 },
    ],
    // Patroni 3.0.2 keeps short ttls (3.2+ would floor this one at 20).
    [
      { ttl: 10, loopWait: 2, retryTimeout: 3 },
      { ttl: 10, loopWait: 2, retryTimeout: 3 },
    ],
    [
      { ttl: 5, loopWait: 0, retryTimeout: 1 },
      { ttl: 5, loopWait: 1, retryTimeout: 1 },
    ],
    [
      { ttl: 1, loopWait: 1, retryTimeout: 5 },
      { ttl: 3, loopWait: 1, retryTimeout: 1 },
    ],
    [
      { ttl: 20, loopWait: 10, retryTimeout: 10 },
      { ttl: 20, loopWait: 1, retryTimeout: 9 },
    ],
    [
      { ttl: 30, loopWait: 15, retryTimeout: 10 },
      { ttl: 30, loopWait: 10, retryTimeout: 10 },
    ],
  ])('effectiveTimings(%o) = %o', (input, expected) => {
    expect(effectiveTimings(input)).toEqual(expected);
  });

  it('haConfigFromDynamic reads leniently with defaults', () => {
    expect(
      haConfigFromDynamic({
        ttl: '40',
        maximum_lag_on_failover: 2048,
        master_start_timeout: 0,
        check_timeline: 'on',
        synchronous_mode: 'Quorum',
        pause: 'true',
      }),
    ).toEqual({
      ttl: 40,
      loopWait: 10,
      retryTimeout: 10,
      maximumLagOnFailover: 2048n,
      primaryStartTimeout: 0,
      checkTimeline: true,
      synchronousMode: 'quorum',
      synchronousModeStrict: false,
      failsafeMode: false,
      paused: true,
      walRetrieveRetryIntervalMs: 5000,
    });
    expect(haConfigFromDynamic({}).synchronousMode).toBe('off');
    expect(haConfigFromDynamic({ synchronous_mode: true }).synchronousMode).toBe('on');
  });

  it.each([
    ['30s', 30000],
    [2500, 2500],
    ['1min', 60000],
    ['garbage', 5000],
    [0, 5000],
    [null, 5000],
  ])('wal_retrieve_retry_interval %j in postgresql.parameters: %d ms', (value, ms) => {
    const data = { postgresql: { parameters: { wal_retrieve_retry_interval: value } } };
    expect(haConfigFromDynamic(data).walRetrieveRetryIntervalMs).toBe(ms);
  });
});
