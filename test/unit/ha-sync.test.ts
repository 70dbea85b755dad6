import { describe, expect, it } from 'vitest';
import { MemoryDcs, MemoryStore } from '../../src/dcs/memory/memory-dcs.js';
import { SyncReplication, withStandbyNames, type SyncNode } from '../../src/agent/sync-replication.js';
import { DEFAULT_HA_CONFIG, type HaConfig } from '../../src/ha/snapshot.js';
import {
  EMPTY_STANDBY_NAMES,
  currentState,
  formatQuorumStandbyNames,
  formatSynchronousStandbyNames,
  growSyncKey,
  quorumCurrentState,
  lsnColumnFor,
  parseSynchronousStandbyNames,
  planSyncReplication,
  syncSettingsFromDynamic,
  syncStateValue,
  type CurrentStateInput,
  type ReplicationInfo,
} from '../../src/ha/sync.js';
import type { Member } from '../../src/model/cluster.js';
import type { PgSession, Row } from '../../src/postgres/queries.js';
import { buildServerParameters } from '../../src/postgres/config-writer.js';

function member(name: string, extra: { tags?: Record<string, unknown>; state?: string } = {}): Member {
  return {
    name,
    version: '1',
    data: {
      raw: {},
      state: extra.state ?? 'running',
      role: 'replica',
      tags: extra.tags ?? {},
      pendingRestart: false,
      pause: false,
    },
  };
}

const names = (...n: string[]): ReturnType<typeof parseSynchronousStandbyNames> =>
  n.length === 0 ? EMPTY_STANDBY_NAMES : parseSynchronousStandbyNames(n.join(','));

describe('synchronous_standby_names format (Patroni set_synchronous_standby_names)', () => {
  const cases: readonly [string, readonly string[], number, string | undefined][] = [
    ['none: parameter removed', [], 150000, undefined],
    ['strict without standbys', ['*'], 150000, '*'],
    ['one standby', ['pg2'], 150000, 'pg2'],
    ['two standbys keep the picked order', ['pg3', 'pg2'], 150000, '2 (pg3,pg2)'],
    ['not a plain identifier: quoted', ['node-1'], 150000, '"node-1"'],
    ['double quote doubled', ['a"b'], 150000, '"a""b"'],
    ['dollar and digits are plain', ['n_1$x'], 150000, 'n_1$x'],
    ['before 9.6 only the first name', ['a', 'b'], 90500, 'a'],
  ];
  it.each(cases)('%s', (_d, input, major, expected) => {
    expect(formatSynchronousStandbyNames(input, major)).toBe(expected);
  });
});

describe('synchronous_standby_names parser (Patroni parse_sync_standby_names)', () => {
  const ok: readonly [string, string, number, readonly string[], boolean][] = [
    ['', 'off', 0, [], false],
    ['FiRsT', 'priority', 1, ['first'], false],
    ['"1"', 'priority', 1, ['1'], false],
    [' a , b ', 'priority', 1, ['a', 'b'], false],
    ['ANY 4("a",*,b)', 'quorum', 4, ['a', '*', 'b'], true],
    ['2 (pg2,pg3)', 'priority', 2, ['pg2', 'pg3'], false],
    ['FIRST 1 (Pg2)', 'priority', 1, ['pg2'], false],
    ['*', 'priority', 1, ['*'], true],
  ];
  it.each(ok)('%j', (text, type, num, members, star) => {
    const p = parseSynchronousStandbyNames(text);
    expect(p.type).toBe(type);
    expect(p.num).toBe(num);
    expect([...p.members]).toEqual(members);
    expect(p.hasStar).toBe(star);
  });
  it.each(['1', 'a,', 'ANY 4("a" b,"c c")', 'FIRST 4("a",)', '2 (,)'])('rejects %j', (text) => {
    expect(() => parseSynchronousStandbyNames(text)).toThrow(/Unparseable/);
  });
});

describe('synchronous_standby_names in quorum commit mode (ANY k)', () => {
  it.each([
    [['pg3', 'pg2'], 1, 170000, 'ANY 1 (pg2,pg3)'],
    [['pg2'], 1, 170000, 'ANY 1 (pg2)'],
    [['node-2', 'pg3'], 2, 170000, 'ANY 2 ("node-2",pg3)'],
    [[], 1, 170000, 'ANY 1 (*)'],
    [['*'], 1, 170000, 'ANY 1 (*)'],
    [[], 0, 170000, undefined],
    // 9.6 has no ANY: the count alone means FIRST; before 9.6 a single name.
    [['pg2', 'pg3'], 1, 90600, '1 (pg2,pg3)'],
    [['pg3', 'pg2'], 1, 90500, 'pg2'],
  ] as const)('%j num %d on %d -> %s', (names, num, version, want) => {
    expect(formatQuorumStandbyNames(names, num, version)).toBe(want);
  });

  it('round-trips through the parser as quorum type', () => {
    const p = parseSynchronousStandbyNames(formatQuorumStandbyNames(['pg2', 'PG3'], 1, 170000) ?? '');
    expect([p.type, p.num, [...p.members].sort()]).toEqual(['quorum', 1, ['pg2', 'pg3']]);
  });
});

describe('quorum commit: the active and confirmed standbys (Patroni current_state, quorum mode)', () => {
  const input = (over: Partial<CurrentStateInput>): CurrentStateInput => ({
    members: [member('pg2'), member('pg3'), member('pg4', { tags: { nofailover: true } })],
    replication: [],
    syncKeyMembers: [],
    standbyNames: parseSynchronousStandbyNames('ANY 1 (pg2,pg3)'),
    readyReplicas: new Map(),
    primaryFlushLsn: 0x5000000n,
    lastOperation: 0x6000000n,
    nodeCount: 1,
    maxLagOnSyncnode: -1n,
    majorVersion: 170000,
    ...over,
  });
  const row = (app: string, syncState: string, lsn: bigint, pid = 1): ReplicationInfo => ({
    pid,
    applicationName: app,
    syncState,
    lsn,
  });

  it('every eligible streaming standby is active; confirmed once reported quorum at the flush LSN', () => {
    const qs = quorumCurrentState(
      input({
        replication: [
          row('pg2', 'quorum', 0x6000000n, 1),
          row('pg3', 'quorum', 0x4000000n, 2),
          row('pg5', 'async', 0x6000000n, 3),
        ],
      }),
    );
    expect([qs.active, qs.syncConfirmed, qs.numsync, qs.sync]).toEqual([
      ['pg2', 'pg3'],
      ['pg2'],
      1,
      ['pg2', 'pg3'],
    ]);
  });

  it('a nofailover standby is active only while fewer than synchronous_node_count are', () => {
    const rows = [row('pg4', 'async', 0x6000000n, 1), row('pg2', 'async', 0x6000000n, 2)];
    expect(quorumCurrentState(input({ replication: rows })).active).toEqual(['pg2']);
    expect(quorumCurrentState(input({ replication: rows, nodeCount: 2 })).active).toEqual(['pg2', 'pg4']);
  });

  it('`sync` (not `quorum`) does not confirm on PostgreSQL 10+, does on 9.6', () => {
    const rows = [row('pg2', 'sync', 0x6000000n)];
    expect(quorumCurrentState(input({ replication: rows })).syncConfirmed).toEqual([]);
    expect(quorumCurrentState(input({ replication: rows, majorVersion: 90600 })).syncConfirmed).toEqual([
      'pg2',
    ]);
  });
});

describe('sync settings from the dynamic configuration', () => {
  it.each([
    [{}, { enabled: false, quorum: false, strict: false, nodeCount: 1, maxLagOnSyncnode: -1n }],
    [
      { synchronous_mode: true, synchronous_mode_strict: 'on', synchronous_node_count: 2 },
      { enabled: true, quorum: false, strict: true, nodeCount: 2, maxLagOnSyncnode: -1n },
    ],
    // Quorum commit (4.0+) is a synchronous mode.
    [
      { synchronous_mode: 'Quorum' },
      { enabled: true, quorum: true, strict: false, nodeCount: 1, maxLagOnSyncnode: -1n },
    ],
    [
      { synchronous_mode: 'on', synchronous_node_count: 0, maximum_lag_on_syncnode: 1048576 },
      { enabled: true, quorum: false, strict: false, nodeCount: 1, maxLagOnSyncnode: 1048576n },
    ],
  ] as const)('%j', (data, expected) => {
    expect(syncSettingsFromDynamic(data)).toEqual(expected);
  });

  it('LSN column per synchronous_commit', () => {
    expect(['remote_apply', 'remote_write', 'on', 'local', undefined].map((v) => lsnColumnFor(v))).toEqual([
      'replay',
      'write',
      'flush',
      'flush',
      'flush',
    ]);
  });
});

describe('choosing synchronous standbys (Patroni SyncHandler.current_state)', () => {
  const MB = 1048576n;
  const base: CurrentStateInput = {
    members: [member('pg1'), member('pg2'), member('pg3')],
    replication: [],
    syncKeyMembers: [],
    standbyNames: EMPTY_STANDBY_NAMES,
    readyReplicas: new Map(),
    primaryFlushLsn: 100n * MB,
    lastOperation: 100n * MB,
    nodeCount: 1,
    maxLagOnSyncnode: -1n,
    majorVersion: 150000,
  };
  const row = (pid: number, app: string, syncState: string, lsn: bigint | undefined): ReplicationInfo => ({
    pid,
    applicationName: app,
    syncState,
    lsn,
  });
  const L = 100n * MB;
  interface Case {
    readonly d: string;
    readonly in: Partial<CurrentStateInput>;
    readonly candidates: readonly string[];
    readonly sync: readonly string[];
  }
  const cases: readonly Case[] = [
    {
      d: 'no replication: nobody',
      in: {},
      candidates: [],
      sync: [],
    },
    {
      d: 'an async streaming replica is picked but not yet synchronous',
      in: { replication: [row(1, 'pg2', 'async', L)] },
      candidates: ['pg2'],
      sync: [],
    },
    {
      d: 'listed in SSN, sync and caught up with the flush position at the change: synchronous',
      in: { replication: [row(1, 'pg2', 'sync', L)], standbyNames: names('pg2') },
      candidates: ['pg2'],
      sync: ['pg2'],
    },
    {
      d: 'listed in SSN and sync but behind the flush position at the change: not yet',
      in: { replication: [row(1, 'pg2', 'sync', L - 1n)], standbyNames: names('pg2') },
      candidates: ['pg2'],
      sync: [],
    },
    {
      d: 'behind but already in /sync: synchronous (it was before)',
      in: {
        replication: [row(1, 'pg2', 'sync', L - 1n)],
        standbyNames: names('pg2'),
        syncKeyMembers: ['PG2'],
      },
      candidates: ['pg2'],
      sync: ['pg2'],
    },
    {
      d: 'reported sync but SSN is * (strict placeholder): not synchronous by name',
      in: { replication: [row(1, 'pg2', 'sync', L)], standbyNames: names('*') },
      candidates: ['pg2'],
      sync: [],
    },
    {
      d: 'the current sync standby wins over a faster async one (sync_state first)',
      in: {
        replication: [row(1, 'pg2', 'async', L + MB), row(2, 'pg3', 'sync', L)],
        standbyNames: names('pg3'),
      },
      candidates: ['pg3'],
      sync: ['pg3'],
    },
    {
      d: 'same sync_state: the one further ahead',
      in: { replication: [row(1, 'pg2', 'async', L - MB), row(2, 'pg3', 'async', L)] },
      candidates: ['pg3'],
      sync: [],
    },
    {
      d: 'nosync tag excluded',
      in: {
        members: [member('pg1'), member('pg2', { tags: { nosync: true } }), member('pg3')],
        replication: [row(1, 'pg2', 'sync', L + MB), row(2, 'pg3', 'async', L)],
      },
      candidates: ['pg3'],
      sync: [],
    },
    {
      d: 'member not running per its key excluded',
      in: {
        members: [member('pg1'), member('pg2', { state: 'starting' }), member('pg3')],
        replication: [row(1, 'pg2', 'async', L + MB), row(2, 'pg3', 'async', L)],
      },
      candidates: ['pg3'],
      sync: [],
    },
    {
      d: 'unknown application_name and rows without LSN ignored',
      in: { replication: [row(1, 'pg_basebackup', 'async', L), row(2, 'pg2', 'async', undefined)] },
      candidates: [],
      sync: [],
    },
    {
      d: 'nofailover members come last',
      in: {
        members: [member('pg1'), member('pg2', { tags: { nofailover: true } }), member('pg3')],
        replication: [row(1, 'pg2', 'async', L + MB), row(2, 'pg3', 'async', L)],
      },
      candidates: ['pg3'],
      sync: [],
    },
    {
      d: 'synchronous_node_count 2',
      in: {
        nodeCount: 2,
        replication: [row(1, 'pg2', 'sync', L), row(2, 'pg3', 'potential', L)],
        standbyNames: names('pg2', 'pg3'),
      },
      candidates: ['pg2', 'pg3'],
      sync: ['pg2'],
    },
    {
      d: 'before 9.6 one sync standby only',
      in: {
        nodeCount: 2,
        majorVersion: 90500,
        replication: [row(1, 'pg2', 'sync', L), row(2, 'pg3', 'potential', L)],
      },
      candidates: ['pg2'],
      sync: [],
    },
    {
      d: 'maximum_lag_on_syncnode: the lagging sync standby is swapped',
      in: {
        maxLagOnSyncnode: MB,
        replication: [row(1, 'pg2', 'sync', L - 10n * MB), row(2, 'pg3', 'async', L)],
        standbyNames: names('pg2'),
        syncKeyMembers: ['pg2'],
      },
      candidates: ['pg3'],
      sync: [],
    },
    {
      d: 'application_name matched case-insensitively',
      in: { replication: [row(1, 'PG2', 'sync', L)], standbyNames: names('"Pg2"') },
      candidates: ['pg2'],
      sync: ['pg2'],
    },
  ];
  it.each(cases)('$d', (c) => {
    const r = currentState({ ...base, ...c.in });
    expect(r.candidates).toEqual(c.candidates);
    expect(r.syncNodes).toEqual(c.sync);
  });

  // Patroni 4.1.4's `_ReplicaList` sorts by (sync_priority, sync_state, lsn), reverse and stable; `current_state`
  // then puts nofailover members last (stable). The priority comes from the member key's tags (tags.py).
  const tagged = (tags: Record<string, Record<string, unknown>>): Member[] =>
    ['pg1', 'pg2', 'pg3'].map((n) => member(n, { tags: tags[n] ?? {} }));
  const priorityCases: readonly Case[] = [
    {
      d: 'a higher sync_priority wins over the current sync standby',
      in: {
        members: tagged({ pg3: { sync_priority: '2' } }),
        replication: [row(1, 'pg2', 'sync', L), row(2, 'pg3', 'async', L - MB)],
        standbyNames: names('pg2'),
        syncKeyMembers: ['pg2'],
      },
      candidates: ['pg3'],
      sync: [],
    },
    {
      d: 'the higher priority standby, once sync, is the synchronous one',
      in: {
        members: tagged({ pg2: { sync_priority: 1 }, pg3: { sync_priority: 2 } }),
        replication: [row(1, 'pg2', 'potential', L), row(2, 'pg3', 'sync', L)],
        standbyNames: names('pg3'),
      },
      candidates: ['pg3'],
      sync: ['pg3'],
    },
    {
      d: 'sync_priority 0 alone means nosync: never picked',
      in: { members: tagged({ pg2: { sync_priority: '0' } }), replication: [row(1, 'pg2', 'sync', L)] },
      candidates: [],
      sync: [],
    },
    {
      d: 'nosync true over sync_priority 2: never picked',
      in: {
        members: tagged({ pg2: { nosync: true, sync_priority: '2' } }),
        replication: [row(1, 'pg2', 'sync', L), row(2, 'pg3', 'async', L - MB)],
      },
      candidates: ['pg3'],
      sync: [],
    },
    {
      d: 'nosync false over sync_priority 0: eligible with priority 0, after priority 1',
      in: {
        members: tagged({ pg2: { nosync: false, sync_priority: '0' } }),
        replication: [row(1, 'pg2', 'sync', L + MB), row(2, 'pg3', 'async', L)],
      },
      candidates: ['pg3'],
      sync: [],
    },
    {
      d: 'nosync false over sync_priority 0: picked when it is the only one',
      in: {
        members: tagged({ pg2: { nosync: false, sync_priority: '0' } }),
        replication: [row(1, 'pg2', 'sync', L)],
        standbyNames: names('pg2'),
      },
      candidates: ['pg2'],
      sync: ['pg2'],
    },
    {
      d: 'same priority: sync_state first (potential over async)',
      in: {
        members: tagged({ pg2: { sync_priority: 2 }, pg3: { sync_priority: 2 } }),
        replication: [row(1, 'pg2', 'async', L + MB), row(2, 'pg3', 'potential', L)],
      },
      candidates: ['pg3'],
      sync: [],
    },
    {
      d: 'same priority and state: the one further ahead',
      in: {
        members: tagged({ pg2: { sync_priority: 3 }, pg3: { sync_priority: 3 } }),
        replication: [row(1, 'pg2', 'async', L), row(2, 'pg3', 'async', L + 1n)],
      },
      candidates: ['pg3'],
      sync: [],
    },
    {
      d: 'a full tie keeps the pg_stat_replication order (pg3 first)',
      in: {
        members: tagged({ pg2: { sync_priority: 3 }, pg3: { sync_priority: '3' } }),
        replication: [row(2, 'pg3', 'async', L), row(1, 'pg2', 'async', L)],
      },
      candidates: ['pg3'],
      sync: [],
    },
    {
      d: 'a full tie keeps the pg_stat_replication order (pg2 first)',
      in: {
        members: tagged({ pg2: { sync_priority: 3 }, pg3: { sync_priority: '3' } }),
        replication: [row(1, 'pg2', 'async', L), row(2, 'pg3', 'async', L)],
      },
      candidates: ['pg2'],
      sync: [],
    },
    {
      d: 'nofailover comes last even with the highest priority',
      in: {
        nodeCount: 2,
        members: tagged({ pg2: { nofailover: true, sync_priority: 5 } }),
        replication: [row(1, 'pg2', 'sync', L), row(2, 'pg3', 'async', L)],
      },
      candidates: ['pg3', 'pg2'],
      sync: [],
    },
    {
      d: 'synchronous_node_count 2: both, by priority',
      in: {
        nodeCount: 2,
        members: tagged({ pg3: { sync_priority: 2 } }),
        replication: [row(1, 'pg2', 'sync', L), row(2, 'pg3', 'async', L - MB)],
      },
      candidates: ['pg3', 'pg2'],
      sync: [],
    },
  ];
  it.each(priorityCases)('sync_priority: $d', (c) => {
    const r = currentState({ ...base, ...c.in });
    expect(r.candidates).toEqual(c.candidates);
    expect(r.syncNodes).toEqual(c.sync);
  });

  it('a verified replica stays verified while it is listed', () => {
    const first = currentState({
      ...base,
      replication: [row(7, 'pg2', 'sync', L)],
      standbyNames: names('pg2'),
    });
    expect([...first.readyReplicas]).toEqual([['pg2', 7]]);
    const later = currentState({
      ...base,
      primaryFlushLsn: 2n * L,
      replication: [row(7, 'pg2', 'sync', L)],
      standbyNames: names('pg2'),
      readyReplicas: first.readyReplicas,
    });
    expect(later.syncNodes).toEqual(['pg2']);
  });
});

describe('order of steps (Patroni process_sync_replication)', () => {
  interface Case {
    readonly d: string;
    readonly current: readonly string[];
    readonly picked: readonly string[];
    readonly allow: readonly string[];
    readonly strict?: boolean;
    /** `keep`, or: shrink target (or `-`), SSN, wait flag, /sync after a successful wait (allow as given). */
    readonly expect:
      | 'keep'
      | {
          readonly shrinkTo?: readonly string[];
          readonly ssn: readonly string[];
          readonly wait: boolean;
          readonly noStandbys?: boolean;
          readonly growWith?: readonly string[];
          readonly grown?: readonly string[] | undefined;
        };
  }
  const cases: readonly Case[] = [
    {
      d: '/sync already lists the picked standby',
      current: ['pg2'],
      picked: ['pg2'],
      allow: ['pg2'],
      expect: 'keep',
    },
    {
      d: 'adding: SSN first, wait until PostgreSQL reports it sync, then /sync',
      current: [],
      picked: ['pg2'],
      allow: [],
      expect: { ssn: ['pg2'], wait: true, growWith: ['pg2'], grown: ['pg2'] },
    },
    {
      d: 'adding a standby that is already synchronous: no wait',
      current: [],
      picked: ['pg2'],
      allow: ['pg2'],
      expect: { ssn: ['pg2'], wait: false, growWith: ['pg2'], grown: ['pg2'] },
    },
    {
      d: 'adding but it never became sync: /sync untouched',
      current: [],
      picked: ['pg2'],
      allow: [],
      expect: { ssn: ['pg2'], wait: true, growWith: [], grown: undefined },
    },
    {
      d: 'swapping: /sync shrinks first, then SSN, then /sync grows',
      current: ['pg2'],
      picked: ['pg3'],
      allow: [],
      expect: { shrinkTo: [], ssn: ['pg3'], wait: true, growWith: ['pg3'], grown: ['pg3'] },
    },
    {
      d: 'removing the last standby (not strict): /sync emptied, then SSN cleared',
      current: ['pg2'],
      picked: [],
      allow: [],
      expect: { shrinkTo: [], ssn: [], wait: false, growWith: [], grown: undefined },
    },
    {
      d: 'strict without candidates: /sync emptied, SSN = * (commits block)',
      current: ['pg2'],
      picked: [],
      allow: [],
      strict: true,
      expect: { shrinkTo: [], ssn: ['*'], wait: false, noStandbys: true, growWith: [], grown: undefined },
    },
    {
      d: 'strict, nobody in /sync and nobody to pick: keep (SSN stays *)',
      current: [],
      picked: [],
      allow: [],
      strict: true,
      expect: 'keep',
    },
    {
      d: 'synchronous_node_count 2: the synchronous one stays, the second joins later',
      current: ['pg2'],
      picked: ['pg2', 'pg3'],
      allow: ['pg2'],
      expect: { ssn: ['pg2', 'pg3'], wait: false, growWith: ['pg2'], grown: undefined },
    },
    {
      d: 'second standby confirmed: /sync grows to both',
      current: ['pg2'],
      picked: ['pg2', 'pg3'],
      allow: ['pg2', 'pg3'],
      expect: { ssn: ['pg2', 'pg3'], wait: false, growWith: ['pg2', 'pg3'], grown: ['pg2', 'pg3'] },
    },
    {
      d: 'names compared case-insensitively',
      current: ['PG2'],
      picked: ['pg2'],
      allow: ['pg2'],
      expect: 'keep',
    },
  ];
  it.each(cases)('$d', (c) => {
    const plan = planSyncReplication({
      current: c.current,
      picked: c.picked,
      allowPromote: c.allow,
      strict: c.strict ?? false,
    });
    if (c.expect === 'keep') {
      expect(plan).toEqual({ kind: 'keep' });
      return;
    }
    if (plan.kind !== 'change') throw new Error('expected a change');
    expect(plan.shrinkTo).toEqual(c.expect.shrinkTo);
    expect(plan.standbyNames).toEqual(c.expect.ssn);
    expect(plan.waitForSync).toBe(c.expect.wait);
    expect(plan.noStandbys).toBe(c.expect.noStandbys ?? false);
    expect(growSyncKey(plan.syncCommon, c.expect.growWith ?? c.allow)).toEqual(c.expect.grown);
  });

  it('/sync value as 4.1.4 writes it: quorum, names sorted, null when none', () => {
    expect(syncStateValue('pg1', ['pg3', 'pg2'])).toEqual({
      leader: 'pg1',
      quorum: 0,
      sync_standby: 'pg2,pg3',
    });
    expect(syncStateValue('pg1', [], 1)).toEqual({ leader: 'pg1', quorum: 1, sync_standby: null });
  });
});

describe('synchronous_standby_names in the server parameters (Patroni get_server_parameters)', () => {
  const params = buildServerParameters({
    scope: 'demo',
    listen: '127.0.0.1:5432',
    majorVersion: 150000,
    dynamicParameters: { synchronous_standby_names: 'user_value' },
  });
  it.each([
    ['mode off keeps the configured value', {}, undefined, 'user_value'],
    ['mode on, nothing managed yet: removed', { synchronous_mode: true }, undefined, undefined],
    [
      'strict, nothing managed yet: *',
      { synchronous_mode: true, synchronous_mode_strict: true },
      undefined,
      '*',
    ],
    ['managed value wins', { synchronous_mode: true }, 'pg2', 'pg2'],
  ] as const)('%s', (_d, dyn, managed, expected) => {
    expect(withStandbyNames(params, dyn, managed).parameters.get('synchronous_standby_names')).toBe(expected);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The executor against a fake PostgreSQL and the in-memory DCS: the order of SSN and /sync writes.

class FakePg implements SyncNode {
  ssn = '';
  /** pending SSN: PostgreSQL applies a reload on the next query (as after pg_ctl reload). */
  private pendingSsn: string | undefined;
  rows: { app: string; state: string; lsn: string }[] = [];
  /** sync_state PostgreSQL reports for a name listed in SSN. */
  flush = '0/5000000';
  readonly events: string[];
  constructor(events: string[]) {
    this.events = events;
  }
  withSession<T>(fn: (s: PgSession) => Promise<T>): Promise<T> {
    const session: PgSession = {
      query: <R extends Row = Row>(sql: string): Promise<readonly R[]> => {
        if (this.pendingSsn !== undefined) {
          this.ssn = this.pendingSsn;
          this.pendingSsn = undefined;
        }
        if (sql.includes('current_setting')) {
          return Promise.resolve([
            { ssn: this.ssn, sc: 'on', v: 150000, r: false, flush: this.flush } as unknown as R,
          ]);
        }
        if (sql.includes('pg_stat_replication')) {
          const parsed = this.ssn === '' ? undefined : parseSynchronousStandbyNames(this.ssn);
          const listed = parsed?.members ?? new Set<string>();
          const quorum = parsed?.type === 'quorum';
          return Promise.resolve(
            this.rows.map(
              (r, i) =>
                ({
                  pid: i + 1,
                  application_name: r.app,
                  state: 'streaming',
                  sync_state: listed.has(r.app) ? (quorum ? 'quorum' : 'sync') : r.state,
                  flush_lsn: r.lsn,
                  write_lsn: r.lsn,
                  replay_lsn: r.lsn,
                }) as unknown as R,
            ),
          );
        }
        return Promise.resolve([]);
      },
      close: () => Promise.resolve(),
    };
    return fn(session);
  }
  setSynchronousStandbyNames(value: string | undefined): Promise<boolean> {
    const v = value ?? '';
    if (v === (this.pendingSsn ?? this.ssn)) return Promise.resolve(false);
    this.events.push(`SSN=${v === '' ? '(none)' : v}`);
    this.pendingSsn = v;
    return Promise.resolve(true);
  }
}

class RecordingDcs extends MemoryDcs {
  events: string[] = [];
  override async setSyncStateValue(value: string, version?: string): Promise<string | false> {
    const r = await super.setSyncStateValue(value, version);
    this.events.push(`/sync=${value}${r === false ? ' (CAS lost)' : ''}`);
    return r;
  }
  override async deleteSyncState(version?: string): Promise<boolean> {
    this.events.push('/sync deleted');
    return super.deleteSyncState(version);
  }
}

describe('SyncReplication executor: SSN and /sync order', () => {
  const OPTIONS = {
    namespace: '/service',
    scope: 'demo',
    name: 'pg1',
    ttl: 30,
    retryTimeout: 10,
    ctl: false,
  };
  const SYNC_ON: HaConfig = { ...DEFAULT_HA_CONFIG, synchronousMode: 'on' };

  const now = { t: 0 };
  async function setup(config: Record<string, unknown>): Promise<{
    events: string[];
    pg: FakePg;
    dcs: RecordingDcs;
    sync: SyncReplication;
  }> {
    const store = new MemoryStore();
    const dcs = new RecordingDcs(store, OPTIONS);
    await dcs.setConfigValue(JSON.stringify(config));
    for (const n of ['pg1', 'pg2', 'pg3']) {
      store.put(
        `/service/demo/members/${n}`,
        JSON.stringify({ state: 'running', role: 'replica', tags: {} }),
      );
    }
    const events: string[] = [];
    dcs.events = events;
    const pg = new FakePg(events);
    const clock = { now: () => now.t, sleep: (ms: number) => ((now.t += ms), Promise.resolve()) };
    const sync = new SyncReplication(
      'pg1',
      pg,
      dcs,
      { info: () => undefined, warning: () => undefined, error: () => undefined },
      clock,
    );
    return { events, pg, dcs, sync };
  }

  it('adding a standby: SSN first, /sync once PostgreSQL reports it sync; removing: /sync first', async () => {
    const { events, pg, dcs, sync } = await setup({ synchronous_mode: true });
    pg.rows = [{ app: 'pg2', state: 'async', lsn: '0/6000000' }];
    await sync.process(await dcs.getCluster(), SYNC_ON);
    // Patroni 4's _maybe_enable_synchronous_mode: /sync names the leader before any standby is confirmed.
    expect(events).toEqual([
      '/sync={"leader":"pg1","quorum":0,"sync_standby":null}',
      'SSN=pg2',
      '/sync={"leader":"pg1","quorum":0,"sync_standby":"pg2"}',
    ]);

    events.length = 0;
    await sync.process(await dcs.getCluster(), SYNC_ON);
    expect(events).toEqual([]);

    // pg2 goes away: /sync is emptied before PostgreSQL stops waiting for it.
    events.length = 0;
    pg.rows = [];
    await sync.process(await dcs.getCluster(), SYNC_ON);
    expect(events).toEqual(['/sync={"leader":"pg1","quorum":0,"sync_standby":null}', 'SSN=(none)']);
  });

  it('strict: no standby left means SSN=* (commits wait) after /sync is emptied', async () => {
    const { events, pg, dcs, sync } = await setup({ synchronous_mode: true, synchronous_mode_strict: true });
    const strict: HaConfig = { ...SYNC_ON, synchronousModeStrict: true };
    pg.rows = [{ app: 'pg2', state: 'async', lsn: '0/6000000' }];
    await sync.process(await dcs.getCluster(), strict);
    events.length = 0;
    pg.rows = [];
    await sync.process(await dcs.getCluster(), strict);
    expect(events).toEqual(['/sync={"leader":"pg1","quorum":0,"sync_standby":null}', 'SSN=*']);
  });

  it('a standby behind the flush position at the change never gets into /sync', async () => {
    const { events, pg, dcs, sync } = await setup({ synchronous_mode: true });
    pg.rows = [{ app: 'pg2', state: 'async', lsn: '0/1000000' }];
    await sync.process(await dcs.getCluster(), SYNC_ON);
    expect(events).toEqual(['/sync={"leader":"pg1","quorum":0,"sync_standby":null}', 'SSN=pg2']);
    // Sync mode is active with no standby yet: no replica may be promoted while commits are not synchronous.
    expect((await dcs.getCluster()).sync.leader).toBe('pg1');
    expect((await dcs.getCluster()).sync.members).toEqual([]);
  });

  it('swap on nosync: /sync shrinks, SSN names the other standby, /sync grows', async () => {
    const { events, pg, dcs, sync } = await setup({ synchronous_mode: true });
    pg.rows = [
      { app: 'pg2', state: 'async', lsn: '0/6000000' },
      { app: 'pg3', state: 'async', lsn: '0/5800000' },
    ];
    await sync.process(await dcs.getCluster(), SYNC_ON);
    expect((await dcs.getCluster()).sync.members).toEqual(['pg2']);
    events.length = 0;
    const c = await dcs.getCluster();
    const tagged = {
      ...c,
      members: c.members.map((m) =>
        m.name === 'pg2' ? { ...m, data: { ...m.data, tags: { nosync: true } } } : m,
      ),
    };
    await sync.process(tagged, SYNC_ON);
    expect(events).toEqual([
      '/sync={"leader":"pg1","quorum":0,"sync_standby":null}',
      'SSN=pg3',
      '/sync={"leader":"pg1","quorum":0,"sync_standby":"pg3"}',
    ]);
  });

  it('a lost CAS on the shrink stops before SSN changes', async () => {
    const { events, pg, dcs, sync } = await setup({ synchronous_mode: true });
    pg.rows = [{ app: 'pg2', state: 'async', lsn: '0/6000000' }];
    await sync.process(await dcs.getCluster(), SYNC_ON);
    const stale = await dcs.getCluster();
    await dcs.setSyncStateValue('{"leader":"pg9","sync_standby":"pg2"}');
    events.length = 0;
    pg.rows = [];
    await sync.process(stale, SYNC_ON);
    expect(events).toEqual(['/sync={"leader":"pg1","quorum":0,"sync_standby":null} (CAS lost)']);
  });

  it('switching from synchronous_mode true to quorum: the resolver takes /sync and SSN over', async () => {
    const { events, pg, dcs, sync } = await setup({ synchronous_mode: true });
    pg.rows = [
      { app: 'pg2', state: 'async', lsn: '0/6000000' },
      { app: 'pg3', state: 'async', lsn: '0/6000000' },
    ];
    await sync.process(await dcs.getCluster(), SYNC_ON);
    expect(events.slice(-2)).toEqual(['SSN=pg2', '/sync={"leader":"pg1","quorum":0,"sync_standby":"pg2"}']);
    events.length = 0;
    await dcs.setConfigValue(JSON.stringify({ synchronous_mode: 'quorum' }));
    await sync.process(await dcs.getCluster(), { ...SYNC_ON, synchronousMode: 'quorum' });
    // pg3 joins: the voters and the quorum grow before PostgreSQL may count pg3's acknowledgement.
    expect(events).toEqual([
      '/sync={"leader":"pg1","quorum":1,"sync_standby":"pg2,pg3"}',
      'SSN=ANY 1 (pg2,pg3)',
    ]);
  });

  it('quorum commit from scratch: SSN first, voters once a standby caught up, changes paused a loop_wait', async () => {
    const { events, pg, dcs, sync } = await setup({ synchronous_mode: 'quorum' });
    const quorum: HaConfig = { ...SYNC_ON, synchronousMode: 'quorum', loopWait: 10 };
    pg.rows = [
      { app: 'pg2', state: 'async', lsn: '0/6000000' },
      { app: 'pg3', state: 'async', lsn: '0/6000000' },
    ];
    const t0 = now.t;
    await sync.process(await dcs.getCluster(), quorum);
    expect(events).toEqual([
      '/sync={"leader":"pg1","quorum":0,"sync_standby":null}',
      'SSN=ANY 1 (pg2,pg3)',
      '/sync={"leader":"pg1","quorum":1,"sync_standby":"pg2,pg3"}',
    ]);
    // Within the cycle: one look again a second later (the restart), not a whole loop_wait.
    expect(now.t - t0).toBeLessThan(10_000);

    // pg3 stops streaming: nothing changes for a loop_wait after the first run, then it is unlisted first.
    events.length = 0;
    pg.rows = [{ app: 'pg2', state: 'async', lsn: '0/6000000' }];
    await sync.process(await dcs.getCluster(), quorum);
    expect(events).toEqual([]);
    now.t += 11_000;
    await sync.process(await dcs.getCluster(), quorum);
    expect(events).toEqual(['SSN=ANY 1 (pg2)', '/sync={"leader":"pg1","quorum":0,"sync_standby":"pg2"}']);
  });

  it('quorum commit: a lost compare-and-set on /sync stops the transitions', async () => {
    const { events, pg, dcs, sync } = await setup({ synchronous_mode: 'quorum' });
    const quorum: HaConfig = { ...SYNC_ON, synchronousMode: 'quorum' };
    await dcs.setSyncStateValue('{"leader":"pg1","quorum":0,"sync_standby":"pg2"}');
    pg.ssn = 'ANY 1 (pg2)';
    pg.rows = [
      { app: 'pg2', state: 'async', lsn: '0/6000000' },
      { app: 'pg3', state: 'async', lsn: '0/6000000' },
    ];
    const stale = await dcs.getCluster();
    await dcs.setSyncStateValue('{"leader":"pg1","quorum":0,"sync_standby":"pg2"}');
    events.length = 0;
    await sync.process(stale, quorum);
    // pg3 must not be listed in SSN before the voters grew.
    expect(events).toEqual(['/sync={"leader":"pg1","quorum":1,"sync_standby":"pg2,pg3"} (CAS lost)']);
  });

  it('quorum commit after a failover: the new leader takes /sync over, keeping the old voters', async () => {
    const { events, pg, dcs, sync } = await setup({ synchronous_mode: 'quorum' });
    const quorum: HaConfig = { ...SYNC_ON, synchronousMode: 'quorum' };
    // pg9 led with pg1 and pg3 voting, quorum 1; pg1 won the race and set SSN before promoting.
    await dcs.setSyncStateValue('{"leader":"pg9","quorum":1,"sync_standby":"pg1,pg3"}');
    await sync.setStandbyNames(['pg3', 'pg9'], 1);
    pg.rows = [{ app: 'pg3', state: 'async', lsn: '0/6000000' }];
    events.length = 0;
    await sync.process(await dcs.getCluster(), quorum);
    // Then pg9 (gone) leaves SSN before the quorum drops.
    expect(events).toEqual([
      '/sync={"leader":"pg1","quorum":1,"sync_standby":"pg3,pg9"}',
      'SSN=ANY 1 (pg3)',
      '/sync={"leader":"pg1","quorum":0,"sync_standby":"pg3"}',
    ]);
  });

  it('mode off: /sync deleted, SSN back to the default', async () => {
    const { events, pg, dcs, sync } = await setup({ synchronous_mode: true });
    pg.rows = [{ app: 'pg2', state: 'async', lsn: '0/6000000' }];
    await sync.process(await dcs.getCluster(), SYNC_ON);
    events.length = 0;
    await sync.process(await dcs.getCluster(), DEFAULT_HA_CONFIG);
    expect(events).toEqual(['/sync deleted', 'SSN=(none)']);
    expect((await dcs.getCluster()).sync.leader).toBeUndefined();
  });
});
