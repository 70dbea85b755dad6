/**
 * DCS failsafe mode, the pure part (src/ha/failsafe.ts through `decide()`): the `/failsafe` key written after the
 * lock refresh, the `FailsafeCheck` guard of a primary that lost the DCS, and the leader a POST /failsafe injects
 * into an unlocked cluster on a replica (Patroni 4.1.4's ha.py `_failsafe_config`, `_handle_dcs_error`,
 * `check_failsafe_topology`, `Failsafe.update_cluster`).
 */
import { describe, expect, it } from 'vitest';
import type { Action, Decision } from '../../src/ha/actions.js';
import { decide } from '../../src/ha/decide.js';
import {
  FAILSAFE_CONTINUE,
  failsafeUpdatedCluster,
  withFailsafeLeader,
  withFailsafeSlots,
} from '../../src/ha/failsafe.js';
import {
  DEFAULT_HA_CONFIG,
  INITIAL_MEMORY,
  type FailsafeView,
  type HaConfig,
  type HaSnapshot,
  type PostgresInfo,
  type WatchdogView,
} from '../../src/ha/snapshot.js';
import type { Cluster, Member } from '../../src/model/cluster.js';

const NOW = Date.parse('2026-12-07T08:00:00Z');
const SYSID = '7300000000000000001';
const api = (n: number): string => `http://127.0.0.1:${8007 + n}/patroni`;

function member(
  name: string,
  role = 'replica',
  apiUrl: string | undefined = api(Number(name.slice(-1))),
): Member {
  return {
    name,
    version: '1',
    data: {
      raw: {},
      connUrl: `postgres://127.0.0.1:${5431 + Number(name.slice(-1))}/postgres`,
      ...(apiUrl ? { apiUrl } : {}),
      state: 'running',
      role,
      tags: {},
      pendingRestart: false,
      pause: false,
    },
  };
}

const THREE = [member('pg1', 'primary'), member('pg2'), member('pg3')];
const TOPOLOGY = { pg1: api(1), pg2: api(2), pg3: api(3) };

function cluster(
  o: { leader?: string; members?: Member[]; failsafe?: Record<string, string> } = {},
): Cluster {
  const members = o.members ?? THREE;
  const leader = 'leader' in o ? o.leader : 'pg1';
  const lm = members.find((m) => m.name === leader);
  return {
    scope: 'demo',
    initialize: SYSID,
    config: { version: '1', modifyVersion: '1', raw: '', data: { ttl: 30 }, valid: true },
    ...(leader ? { leader: { name: leader, version: '9', ...(lm ? { member: lm } : {}) } } : {}),
    status: { optime: 1000n, slots: {}, retainSlots: [] },
    members,
    sync: { members: [] },
    history: { version: '1', raw: '[]', lines: [] },
    ...(o.failsafe ? { failsafe: o.failsafe } : {}),
  };
}

const PRIMARY: PostgresInfo = {
  state: 'running',
  isRunning: true,
  isPrimary: true,
  timeline: 1,
  walPosition: 1000n,
  dataDirectoryEmpty: false,
  dataDirectoryAccessible: true,
  sysid: SYSID,
  msInState: 60_000,
};

interface Opts {
  readonly name?: string;
  readonly config?: Partial<HaConfig>;
  readonly cluster?: Cluster | undefined;
  readonly pg?: Partial<PostgresInfo>;
  readonly failsafe?: FailsafeView;
  readonly lastRefreshOk?: number;
  readonly pendingAsync?: HaSnapshot['pendingAsync'];
  readonly watchdog?: WatchdogView;
  readonly apiUrl?: string;
}

/** Default: pg1, the running primary, failsafe mode on, the DCS out of reach, its lock refreshed 15 s ago. */
function snap(o: Opts = {}): HaSnapshot {
  const c = 'cluster' in o ? o.cluster : undefined;
  const refreshed = o.lastRefreshOk ?? NOW - 15_000;
  return {
    now: NOW,
    me: {
      name: o.name ?? 'pg1',
      tags: { nofailover: false, failoverPriority: 1, nosync: false, clonefrom: false },
      hasBootstrapConfig: true,
      canCloneWithoutLeader: false,
      canRewind: false,
      ...(o.apiUrl ? { apiUrl: o.apiUrl } : {}),
    },
    config: { ...DEFAULT_HA_CONFIG, failsafeMode: true, ...o.config },
    cluster: c,
    dcsReachable: c !== undefined,
    postgres: { ...PRIMARY, ...o.pg },
    lock: { heldByMe: true, lastRefreshOk: refreshed, expiresAt: refreshed + 30_000 },
    memory: INITIAL_MEMORY,
    failsafe: o.failsafe ?? { topology: TOPOLOGY },
    ...(o.pendingAsync ? { pendingAsync: o.pendingAsync } : {}),
    ...(o.watchdog ? { watchdog: o.watchdog } : {}),
  };
}

/** A compact rendering: guards with their `otherwise`, the rest by type and the argument that matters. */
function show(a: Action): string {
  if (a.type === 'FailsafeCheck') {
    const members = a.members.map((m) => `${m.name}=${m.apiUrl}`).join(',');
    return `FailsafeCheck(${members}) else {${showDecision(a.otherwise)}}`;
  }
  if (a.type === 'WriteFailsafe') return `WriteFailsafe(${JSON.stringify(a.topology)})`;
  if (a.type === 'RefreshLock') return `RefreshLock else {${a.otherwise.message}}`;
  if (a.type === 'Demote') return `Demote(${a.mode})`;
  return a.type;
}

function showDecision(d: Decision): string {
  return d.actions.length === 0 ? d.message : `${d.message}: ${d.actions.map(show).join(', ')}`;
}

const DEMOTE = 'demoting self because DCS is not accessible and I was a leader';
const CHECK_ALL = `FailsafeCheck(pg2=${api(2)},pg3=${api(3)}) else {${DEMOTE}: Demote(offline)}`;

describe('a primary that cannot reach the DCS (ha.py _handle_dcs_error)', () => {
  it.each<[string, Opts, string, string[]]>([
    ['failsafe on, in the topology: asks every other member', {}, FAILSAFE_CONTINUE, [CHECK_ALL]],
    [
      'failsafe on, within the retry grace: still asks first, the grace is the fallback',
      { lastRefreshOk: NOW - 2_000 },
      FAILSAFE_CONTINUE,
      [`FailsafeCheck(pg2=${api(2)},pg3=${api(3)}) else {DCS is not accessible}`],
    ],
    [
      'a one-node topology: the check has no member to ask',
      { failsafe: { topology: { pg1: api(1) } } },
      FAILSAFE_CONTINUE,
      [`FailsafeCheck() else {${DEMOTE}: Demote(offline)}`],
    ],
    [
      'not in the topology: demotes as without failsafe',
      { failsafe: { topology: { pg2: api(2), pg3: api(3) } } },
      DEMOTE,
      ['Demote(offline)'],
    ],
    ['no known topology (no /failsafe key): demotes', { failsafe: {} }, DEMOTE, ['Demote(offline)']],
    ['failsafe off: demotes', { config: { failsafeMode: false } }, DEMOTE, ['Demote(offline)']],
    ['paused: nothing', { config: { paused: true } }, 'DCS is not accessible', []],
    [
      'a replica: nothing, whether contacted or not',
      { pg: { isPrimary: false } },
      'DCS is not accessible',
      [],
    ],
    [
      'a demotion already under way: no check',
      { pendingAsync: { kind: 'demote', description: 'demote', startedAt: NOW - 1_000 } },
      'demote in progress',
      [],
    ],
  ])('%s', (_name, o, message, actions) => {
    const d = decide(snap(o));
    expect(d.message).toBe(message);
    expect(d.actions.map(show)).toEqual(actions);
  });

  it('an armed watchdog is pinged after a passed check, not after a failed one', () => {
    const d = decide(
      snap({ watchdog: { mode: 'automatic', running: true, deviceUsable: true, safetyMargin: 5 } }),
    );
    expect(d.actions.map((a) => a.type)).toEqual(['FailsafeCheck', 'WatchdogKeepalive']);
    const check = d.actions[0];
    expect(check?.type === 'FailsafeCheck' && check.otherwise.actions.map((a) => a.type)).toEqual(['Demote']);
  });
});

describe('the /failsafe key (ha.py _failsafe_config, update_leader)', () => {
  const leaderCycle = (o: Opts = {}): string[] =>
    decide(snap({ cluster: cluster(), ...o })).actions.map(show);

  it('written right after the lock refresh when it differs from the stored one', () => {
    expect(leaderCycle()).toEqual([
      `RefreshLock else {demoted self because failed to update leader lock in DCS}`,
      `WriteFailsafe(${JSON.stringify(TOPOLOGY)})`,
      'ProcessSyncReplication',
      'WriteHistory',
    ]);
  });

  it('not written when the stored topology is the same (key order aside)', () => {
    const stored = { pg3: api(3), pg1: api(1), pg2: api(2) };
    expect(leaderCycle({ cluster: cluster({ failsafe: stored }) })).not.toContainEqual(
      expect.stringMatching(/^WriteFailsafe/),
    );
  });

  it('follows the members: one gone, one with a new api_url', () => {
    const members = [member('pg1', 'primary'), member('pg2', 'replica', 'http://10.0.0.2:8008/patroni')];
    const actions = leaderCycle({ cluster: cluster({ members, failsafe: TOPOLOGY }) });
    expect(actions).toContain(`WriteFailsafe({"pg1":"${api(1)}","pg2":"http://10.0.0.2:8008/patroni"})`);
  });

  it('a member without api_url is left out; this node is added with its own api_url when its key is missing', () => {
    const members = [member('pg2', 'replica', ''), member('pg3')];
    const actions = leaderCycle({ cluster: cluster({ members }), apiUrl: api(1) });
    expect(actions).toContain(`WriteFailsafe({"pg3":"${api(3)}","pg1":"${api(1)}"})`);
  });

  it('never with failsafe mode off, and never by a replica', () => {
    expect(leaderCycle({ config: { failsafeMode: false } }).join()).not.toMatch(/WriteFailsafe/);
    const replica = decide(snap({ name: 'pg2', cluster: cluster(), pg: { isPrimary: false } }));
    expect(replica.actions.map(show).join()).not.toMatch(/WriteFailsafe/);
  });
});

describe('a replica contacted by POST /failsafe (Failsafe.update_cluster)', () => {
  const config = { ...DEFAULT_HA_CONFIG, failsafeMode: true };
  const leader = { name: 'pg1', apiUrl: api(1), connUrl: 'postgres://127.0.0.1:5432/postgres' };

  it('an unlocked cluster gets the leader that contacted us: the replica follows it and does not race', () => {
    const c = withFailsafeLeader(cluster({ leader: undefined }), config, leader);
    expect(c.leader?.name).toBe('pg1');
    expect(c.leader?.member?.data.connUrl).toBe('postgres://127.0.0.1:5432/postgres');
    const d = decide(snap({ name: 'pg2', cluster: c, pg: { isPrimary: false } }));
    expect(d.message).toBe('no action. I am (pg2), a secondary, and following a leader (pg1)');
    expect(d.actions.map((a) => a.type)).not.toContain('AcquireLock');
    expect(d.actions.map((a) => a.type)).not.toContain('ProbePeers');
  });

  it('without the contact the same replica goes to the race (probing the others first)', () => {
    const d = decide(
      snap({ name: 'pg2', cluster: cluster({ leader: undefined }), pg: { isPrimary: false } }),
    );
    expect(d.actions.map((a) => a.type)).toEqual(['ProbePeers']);
  });

  it('a locked cluster, failsafe mode off, or no contact: the cluster as read', () => {
    const locked = cluster();
    expect(withFailsafeLeader(locked, config, { name: 'pg3' })).toBe(locked);
    const unlocked = cluster({ leader: undefined });
    expect(withFailsafeLeader(unlocked, { ...config, failsafeMode: false }, leader)).toBe(unlocked);
    expect(withFailsafeLeader(unlocked, config, undefined)).toBe(unlocked);
  });

  it("the status key's slot positions become the ones the leader sent (none sent: none)", () => {
    const slots = { dcs_slot_0: 50331800n, pg1: 50332000n };
    const base = cluster({ leader: undefined });
    const read = { ...base, status: { ...base.status, slots: { dcs_slot_0: 100n } } };
    const c = withFailsafeLeader(read, config, { ...leader, slots });
    expect(c.status).toEqual({ optime: 1000n, slots, retainSlots: [] });
    expect(withFailsafeLeader(read, config, leader).status.slots).toEqual({});
  });

  it("slot housekeeping's cluster (locked or not) takes the contacting leader and its slot positions", () => {
    const slots = { dcs_slot_2: 67108864n };
    const c = failsafeUpdatedCluster(cluster(), { ...leader, slots });
    expect(c.leader?.name).toBe('pg1');
    expect(c.leader?.member?.data.connUrl).toBe(leader.connUrl);
    expect(c.status.slots).toEqual(slots);
    const locked = cluster();
    expect(failsafeUpdatedCluster(locked, undefined)).toBe(locked);
  });

  it("a primary's members' positions: the status slots, and the xlog location of replicatefrom members", () => {
    const cascading: Member = {
      ...member('pg3'),
      data: { ...member('pg3').data, tags: { replicatefrom: 'pg2' } },
    };
    const c = withFailsafeSlots(cluster({ members: [member('pg1', 'primary'), member('pg2'), cascading] }), {
      pg2: 700n,
      pg3: 600n,
    });
    expect(c.status.slots).toEqual({ pg2: 700n, pg3: 600n });
    expect(c.members.find((m) => m.name === 'pg3')?.data.xlogLocation).toBe(600n);
    expect(c.members.find((m) => m.name === 'pg2')?.data.xlogLocation).toBe(member('pg2').data.xlogLocation);
  });
});
