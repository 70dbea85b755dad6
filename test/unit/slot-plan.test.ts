/**
 * Replication slots as Patroni 4.1.4 plans them: the slots each node wants (src/model/slot-config.ts) and the
 * actions of one cycle (src/model/slot-plan.ts), in tables.
 */
import { describe, expect, it } from 'vitest';
import type { Cluster, JsonObject, Member } from '../../src/model/cluster.js';
import {
  desiredSlots,
  ignoreMatchers,
  memberSlotsTtl,
  permanentPhysicalSlotNames,
  permanentSlotsConfig,
  publishedSlots,
  slotIgnored,
  shouldEnforceHotStandbyFeedback,
  slotNameOnPrimary,
  useSlotsConfig,
  type DesiredSlot,
  type SlotContext,
} from '../../src/model/slot-config.js';
import {
  planSlotSync,
  slotPositions,
  type ExistingSlot,
  type SlotPlanInput,
} from '../../src/model/slot-plan.js';
import { slotNameForMember } from '../../src/postgres/config-writer.js';

function member(name: string, tags: JsonObject = {}, xlog?: bigint): Member {
  return {
    name,
    version: '1',
    data: {
      raw: {},
      state: 'running',
      role: 'replica',
      tags,
      pendingRestart: false,
      pause: false,
      version: '4.1.4',
      ...(xlog === undefined ? {} : { xlogLocation: xlog }),
    },
  };
}

function cluster(o: {
  members: readonly Member[];
  leader?: string;
  config?: JsonObject;
  status?: Record<string, bigint>;
  retain?: string[];
}): Cluster {
  const leader = o.leader ?? o.members[0]?.name;
  const lm = o.members.find((m) => m.name === leader);
  return {
    scope: 'batman',
    initialize: '7300000000000000001',
    config: { version: '1', modifyVersion: '1', raw: '', data: o.config ?? {}, valid: true },
    ...(leader ? { leader: { name: leader, version: '1', ...(lm ? { member: lm } : {}) } } : {}),
    status: { optime: 0n, slots: o.status ?? {}, retainSlots: o.retain ?? [] },
    members: o.members,
    sync: { members: [] },
  };
}

const ctx = (
  c: Cluster,
  self: string,
  role: 'primary' | 'replica',
  extra: Partial<SlotContext> = {},
): SlotContext => ({
  cluster: c,
  dynamic: c.config?.data,
  self,
  tags: c.members.find((m) => m.name === self)?.data.tags ?? {},
  role,
  canAdvanceSlots: true,
  slotName: slotNameForMember,
  ...extra,
});

const names = (slots: ReadonlyMap<string, DesiredSlot>): string[] => [...slots.keys()].sort();

// The permanent_slots feature: postgres-0 leads, postgres-2 is nofailover, postgres-3 replicates from postgres-2.
const FEATURE_CONFIG = {
  slots: {
    test_physical: 0,
    postgres_3: 0,
    test_logical: { type: 'logical', database: 'postgres', plugin: 'test_decoding' },
  },
};
const FEATURE = cluster({
  members: [
    member('postgres-0', {}, 500n),
    member('postgres-1', {}, 400n),
    member('postgres-2', { nofailover: true }, 400n),
    member('postgres-3', { replicatefrom: 'postgres-2' }, 300n),
  ],
  config: FEATURE_CONFIG,
  status: { test_physical: 450n, test_logical: 420n, postgres_1: 400n, postgres_3: 350n, postgres_0: 500n },
});

describe('the dynamic configuration as Patroni reads it', () => {
  it.each([
    [{}, {}],
    [{ slots: { a: null } }, { a: null }],
    [{ permanent_slots: { b: {} }, slots: { a: null } }, { b: {} }],
    // An empty spelling falls through to the next one (Python's `or`).
    [{ permanent_replication_slots: {}, permanent_slots: null, slots: { a: 0 } }, { a: 0 }],
    [{ slots: ['not', 'a', 'mapping'] }, {}],
  ])('permanent slots of %j', (dyn, expected) => {
    expect(permanentSlotsConfig(dyn)).toEqual(expected);
  });

  it.each([
    [undefined, 1800],
    [{}, 1800],
    [{ member_slots_ttl: 0 }, 0],
    [{ member_slots_ttl: '30min' }, 1800],
    [{ member_slots_ttl: '1h' }, 3600],
    [{ member_slots_ttl: 90 }, 90],
    [{ member_slots_ttl: 'soon' }, 1800],
  ])('member_slots_ttl of %j is %d s', (dyn, ttl) => {
    expect(memberSlotsTtl(dyn)).toBe(ttl);
  });

  it.each([
    [{}, true],
    [{ postgresql: { use_slots: false } }, false],
    [{ postgresql: { use_slots: 'off' } }, false],
    [{ postgresql: { use_slots: 'maybe' } }, false],
    [{ postgresql: { use_slots: 'on' } }, true],
  ])('use_slots of %j', (dyn, expected) => {
    expect(useSlotsConfig(dyn)).toBe(expected);
  });

  // The ignored_slots feature's matchers: any subset of name/database/plugin/type is enough.
  const matchers = ignoreMatchers({
    ignore_slots: [
      { name: 'unmanaged_slot_0', database: 'postgres', plugin: 'test_decoding', type: 'logical' },
      { name: 'unmanaged_slot_1', database: 'postgres', plugin: 'test_decoding' },
      { name: 'unmanaged_slot_2', database: 'postgres' },
      { name: 'unmanaged_slot_3' },
      { type: 'logical', plugin: 'wal2json' },
    ],
  });
  const logical = (name: string, plugin = 'test_decoding', database = 'postgres') => ({
    name,
    type: 'logical',
    plugin,
    database,
  });
  it.each([
    [logical('unmanaged_slot_0'), true],
    [logical('unmanaged_slot_1'), true],
    [logical('unmanaged_slot_2'), true],
    [logical('unmanaged_slot_3'), true],
    [{ name: 'unmanaged_slot_3', type: 'physical' }, true],
    [logical('dummy_slot'), false],
    [logical('unmanaged_slot_0', 'pgoutput'), false],
    [logical('unmanaged_slot_2', 'pgoutput', 'app'), false],
    [{ name: 'unmanaged_slot_0', type: 'physical' }, false],
    [logical('anything', 'wal2json', 'app'), true],
  ])('ignore_slots matches %j: %s', (slot, ignored) => {
    expect(slotIgnored(matchers, slot)).toBe(ignored);
  });
});

describe('the slots each node wants (the permanent_slots feature topology)', () => {
  it('the primary: every member, the permanent slots, expected active unless the member cascades', () => {
    const { slots, errors } = desiredSlots(ctx(FEATURE, 'postgres-0', 'primary'));
    expect(errors).toEqual([]);
    expect(Object.fromEntries(slots)).toEqual({
      postgres_1: { type: 'physical', lsn: 400n, expectedActive: true },
      postgres_2: { type: 'physical', expectedActive: true },
      // Cascading: the member's own xlog_location beats the leader's idle slot position.
      postgres_3: { type: 'physical', lsn: 350n, expectedActive: false },
      test_physical: { type: 'physical', lsn: 450n, expectedActive: true },
      test_logical: { type: 'logical', database: 'postgres', plugin: 'test_decoding', lsn: 420n },
    });
  });

  it('a replica: every other member (the leader too), the permanent slots, none expected active', () => {
    const { slots } = desiredSlots(ctx(FEATURE, 'postgres-1', 'replica'));
    expect(names(slots)).toEqual(['postgres_0', 'postgres_2', 'postgres_3', 'test_logical', 'test_physical']);
    expect(slots.get('postgres_0')).toEqual({ type: 'physical', lsn: 500n, expectedActive: false });
    expect(slots.get('test_physical')).toEqual({ type: 'physical', lsn: 450n, expectedActive: false });
  });

  it('a nofailover replica: only the members replicating from it, no permanent slot', () => {
    const { slots } = desiredSlots(ctx(FEATURE, 'postgres-2', 'replica'));
    expect(Object.fromEntries(slots)).toEqual({
      postgres_3: { type: 'physical', lsn: 350n, expectedActive: true },
    });
  });

  it('a cascading replica: permanent logical slots too (its upstream streams from the primary)', () => {
    const { slots } = desiredSlots(ctx(FEATURE, 'postgres-3', 'replica'));
    expect(names(slots)).toEqual(['postgres_0', 'postgres_1', 'postgres_2', 'test_logical', 'test_physical']);
    expect(
      slotNameOnPrimary(ctx(FEATURE, 'postgres-3', 'replica'), 'postgres-3', { replicatefrom: 'postgres-2' }),
    ).toBe('postgres_2');
  });

  it('member_slots_ttl 0: the primary keeps slots for its streaming members, a replica for its cascading ones', () => {
    const c = cluster({ members: FEATURE.members, config: { ...FEATURE_CONFIG, member_slots_ttl: 0 } });
    expect(names(desiredSlots(ctx(c, 'postgres-0', 'primary')).slots)).toEqual([
      'postgres_1',
      'postgres_2',
      'postgres_3',
      'test_logical',
      'test_physical',
    ]);
    expect(names(desiredSlots(ctx(c, 'postgres-2', 'replica')).slots)).toEqual(['postgres_3']);
    // postgres_3 is a permanent slot too.
    expect(names(desiredSlots(ctx(c, 'postgres-1', 'replica')).slots)).toEqual([
      'postgres_3',
      'test_logical',
      'test_physical',
    ]);
  });

  it('retain_slots keep the slots of members that vanished; nostream members get none', () => {
    const c = cluster({
      members: [member('a'), member('b', { nostream: 'on' })],
      retain: ['a', 'b', 'gone'],
    });
    expect(names(desiredSlots(ctx(c, 'a', 'primary')).slots)).toEqual(['b', 'gone']);
    expect(desiredSlots(ctx(c, 'a', 'primary')).slots.get('gone')).toEqual({ type: 'physical' });
  });

  it('before PostgreSQL 11: no permanent physical slots on a replica, logical ones refused on the primary', () => {
    const old = (self: string, role: 'primary' | 'replica') =>
      desiredSlots(ctx(FEATURE, self, role, { canAdvanceSlots: false }));
    expect(names(old('postgres-1', 'replica').slots)).toEqual([]);
    const primary = old('postgres-0', 'primary');
    expect(names(primary.slots)).toEqual(['postgres_1', 'postgres_2', 'postgres_3', 'test_physical']);
    expect(primary.errors).toEqual([
      'Permanent logical replication slots need PostgreSQL 11 or later; these will not be created: test_logical',
    ]);
  });

  it('bad names and values are reported and skipped; use_slots off wants nothing', () => {
    const c = cluster({
      members: [member('a')],
      config: {
        slots: {
          'Bad-Name': null,
          odd: 'x',
          half: { type: 'logical', database: 'db' },
          ok: { type: 'physical' },
        },
      },
    });
    const { slots, errors } = desiredSlots(ctx(c, 'a', 'primary'));
    expect(names(slots)).toEqual(['ok']);
    expect(errors).toHaveLength(3);
    const off = cluster({
      members: [member('a'), member('b')],
      config: { slots: { p: null }, postgresql: { use_slots: false } },
    });
    expect(names(desiredSlots(ctx(off, 'a', 'primary')).slots)).toEqual([]);
  });

  it('hot_standby_feedback: for a node with permanent logical slots, or one a member with them cascades from', () => {
    const enforce = (c: Cluster, self: string) => shouldEnforceHotStandbyFeedback(ctx(c, self, 'replica'));
    expect(enforce(FEATURE, 'postgres-1')).toBe(true);
    // nofailover: no permanent slot of its own, but postgres-3 (which has the logical slot) cascades from it.
    expect(enforce(FEATURE, 'postgres-2')).toBe(true);
    const physicalOnly = cluster({ members: FEATURE.members, config: { slots: { test_physical: null } } });
    expect(enforce(physicalOnly, 'postgres-1')).toBe(false);
    expect(enforce(physicalOnly, 'postgres-2')).toBe(false);
  });

  it('the status key: every slot with member_slots_ttl > 0, only the permanent ones with 0', () => {
    const positions = { postgres_1: 1n, test_physical: 2n, test_logical: 3n };
    expect(publishedSlots(ctx(FEATURE, 'postgres-0', 'primary'), positions)).toEqual(positions);
    const c = cluster({ members: FEATURE.members, config: { ...FEATURE_CONFIG, member_slots_ttl: 0 } });
    expect(publishedSlots(ctx(c, 'postgres-0', 'primary'), positions)).toEqual({
      test_physical: 2n,
      test_logical: 3n,
    });
    expect([...permanentPhysicalSlotNames(ctx(FEATURE, 'postgres-0', 'primary'))].sort()).toEqual([
      'postgres_3',
      'test_physical',
    ]);
  });
});

const phys = (
  name: string,
  restartLsn: bigint | undefined = 100n,
  extra: Partial<ExistingSlot> = {},
): ExistingSlot => ({
  name,
  type: 'physical',
  active: false,
  restartLsn,
  ...extra,
});
const logi = (name: string, confirmed = 100n, extra: Partial<ExistingSlot> = {}): ExistingSlot => ({
  name,
  type: 'logical',
  plugin: 'test_decoding',
  database: 'postgres',
  active: false,
  confirmedFlushLsn: confirmed,
  ...extra,
});

function plan(
  desired: Record<string, DesiredSlot>,
  existing: ExistingSlot[],
  o: Partial<SlotPlanInput> = {},
) {
  return planSlotSync({
    desired: new Map(Object.entries(desired)),
    existing,
    isPrimary: true,
    paused: false,
    ignore: [],
    canAdvanceSlots: true,
    majorVersion: 150000,
    cleanInactivePhysical: true,
    replayLsn: 1000n,
    ...o,
  });
}

const P = (extra: Partial<DesiredSlot> = {}): DesiredSlot => ({ type: 'physical', ...extra });
const L = (extra: Partial<DesiredSlot> = {}): DesiredSlot => ({
  type: 'logical',
  database: 'postgres',
  plugin: 'test_decoding',
  ...extra,
});

describe('one cycle of slot housekeeping', () => {
  it.each([
    ['a missing physical slot is created', { a: P() }, [], {}, [{ kind: 'create_physical', name: 'a' }]],
    ['an unknown slot is dropped', {}, [phys('x')], {}, [{ kind: 'drop', name: 'x', why: 'unknown' }]],
    [
      'an unknown logical slot is dropped',
      {},
      [logi('dummy_slot')],
      {},
      [{ kind: 'drop', name: 'dummy_slot', why: 'unknown' }],
    ],
    ['nothing is dropped while paused', {}, [phys('x')], { paused: true }, []],
    ['an ignored slot is kept', {}, [logi('keep')], { ignore: [{ name: 'keep' }] }, []],
    [
      'a slot with lost WAL is dropped and created again',
      { a: P() },
      [phys('a', 100n, { walStatus: 'lost' })],
      {},
      [
        { kind: 'drop', name: 'a', why: 'lost' },
        { kind: 'create_physical', name: 'a' },
      ],
    ],
    [
      'a slot changing plugin is dropped and created again (primary)',
      { l: L({ plugin: 'pgoutput' }) },
      [logi('l')],
      {},
      [
        { kind: 'drop', name: 'l', why: 'changed' },
        { kind: 'create_logical', name: 'l', database: 'postgres', plugin: 'pgoutput' },
      ],
    ],
    [
      'an idle physical slot is advanced to the published position',
      { a: P({ lsn: 300n, expectedActive: false }) },
      [phys('a', 200n)],
      {},
      [{ kind: 'advance_physical', name: 'a', lsn: 300n }],
    ],
    ['a slot behind nothing is left alone', { a: P({ lsn: 100n }) }, [phys('a', 200n)], {}, []],
    [
      'a slot a walsender should use is not advanced',
      { a: P({ lsn: 300n, expectedActive: true }) },
      [phys('a', 200n)],
      {},
      [],
    ],
    [
      'an idle slot holding xmin is dropped and created again',
      { a: P({ lsn: 300n, expectedActive: false }) },
      [phys('a', 200n, { xmin: '731' })],
      {},
      [
        { kind: 'drop', name: 'a', why: 'xmin' },
        { kind: 'create_physical', name: 'a' },
      ],
    ],
    [
      'without a leader an xmin is kept (and the slot not advanced)',
      { a: P({ lsn: 300n, expectedActive: false }) },
      [phys('a', 200n, { xmin: '731' })],
      { cleanInactivePhysical: false },
      [],
    ],
    [
      'a physical slot without restart_lsn is dropped',
      { a: P({ lsn: 300n }) },
      [phys('a', 0n, { restartLsn: undefined })],
      {},
      [{ kind: 'drop', name: 'a', why: 'no_restart_lsn' }],
    ],
    [
      'a permanent logical slot is created on the primary',
      { l: L() },
      [],
      {},
      [{ kind: 'create_logical', name: 'l', database: 'postgres', plugin: 'test_decoding' }],
    ],
    [
      'an existing logical slot is left to its consumer on the primary',
      { l: L({ lsn: 900n }) },
      [logi('l', 100n)],
      {},
      [],
    ],
    [
      'a replica copies a logical slot the primary reports',
      { l: L({ lsn: 500n }) },
      [],
      { isPrimary: false },
      [{ kind: 'copy_logical', name: 'l' }],
    ],
    ['a replica does not copy a slot without a position', { l: L() }, [], { isPrimary: false }, []],
    [
      'a replica advances its copy to the primary position',
      { l: L({ lsn: 500n }) },
      [logi('l', 100n)],
      { isPrimary: false },
      [{ kind: 'advance_logical', name: 'l', database: 'postgres', lsn: 500n }],
    ],
    [
      'never past its replay position',
      { l: L({ lsn: 500n }) },
      [logi('l', 100n)],
      { isPrimary: false, replayLsn: 300n },
      [{ kind: 'advance_logical', name: 'l', database: 'postgres', lsn: 300n }],
    ],
    [
      'a copy already there is not advanced',
      { l: L({ lsn: 500n }) },
      [logi('l', 500n)],
      { isPrimary: false },
      [],
    ],
    [
      'a replica copies again a slot whose restart_lsn its pg_wal no longer holds',
      { l: L({ lsn: 500n }) },
      [logi('l', 100n, { restartLsn: 0x1000000n })],
      { isPrimary: false, wal: { segmentSize: 0x1000000n, oldestSegment: 2n } },
      [{ kind: 'copy_logical', name: 'l' }],
    ],
    [
      'a copy whose WAL is held is advanced as usual',
      { l: L({ lsn: 500n }) },
      [logi('l', 100n, { restartLsn: 0x2000000n })],
      { isPrimary: false, wal: { segmentSize: 0x1000000n, oldestSegment: 2n } },
      [{ kind: 'advance_logical', name: 'l', database: 'postgres', lsn: 500n }],
    ],
    [
      'a replica with a mismatching copy drops it, then copies it again',
      { l: L({ lsn: 500n }) },
      [logi('l', 100n, { plugin: 'pgoutput' })],
      { isPrimary: false },
      [
        { kind: 'drop', name: 'l', why: 'changed' },
        { kind: 'copy_logical', name: 'l' },
      ],
    ],
    [
      'before PostgreSQL 11 physical slots are only created',
      { a: P({ lsn: 300n }) },
      [phys('a', 200n, { xmin: '7' })],
      { canAdvanceSlots: false },
      [],
    ],
  ] as const)('%s', (_name, desired, existing, o, expected) => {
    expect(plan(desired as Record<string, DesiredSlot>, [...existing], o as Partial<SlotPlanInput>)).toEqual(
      expected,
    );
  });

  it('the leader publishes restart_lsn of physical and confirmed_flush_lsn of logical slots it wants', () => {
    const desired = new Map<string, DesiredSlot>([
      ['a', P()],
      ['l', L()],
      ['m', L({ plugin: 'pgoutput' })],
    ]);
    expect(slotPositions(desired, [phys('a', 10n), logi('l', 20n), logi('m', 30n), phys('x', 40n)])).toEqual({
      a: 10n,
      l: 20n,
    });
  });
});
