/**
 * When a logical slot copied to a replica is safe for a failover (src/model/slot-readiness.ts): Patroni 4.1.4's
 * catalog_xmin comparison, and the replica's WAL from the copy's restart_lsn on.
 */
import { describe, expect, it } from 'vitest';
import {
  queueAll,
  readyLogicalSlots,
  rememberPrimaryXmins,
  stateFileRestartLsn,
  walFileSegment,
  walHeld,
  type LocalWal,
  type StandbyLogicalSlot,
} from '../../src/model/slot-readiness.js';

const SEG = 0x1000000n;
const WAL: LocalWal = { segmentSize: SEG, oldestSegment: 2n };

describe('the WAL a replica holds', () => {
  it.each([
    ['000000010000000000000002', SEG, 2n],
    ['00000002000000010000000A', SEG, 256n + 10n],
    ['000000010000000100000003', 0x4000000n, 64n + 3n],
    ['00000001000000000000000', SEG, undefined],
    ['00000002.history', SEG, undefined],
  ] as const)('%s with segments of %s is segment %s', (name, size, want) => {
    expect(walFileSegment(name, size)).toBe(want);
  });

  it.each([
    ['restart_lsn in the oldest segment', 0x2000028n, WAL, true],
    ['restart_lsn in a later segment', 0x4022430n, WAL, true],
    ['restart_lsn before the oldest segment', 0x174aee8n, WAL, false],
    ['no restart_lsn (invalidated)', undefined, WAL, false],
    ['pg_wal unknown: not checked', 0x174aee8n, undefined, true],
  ] as const)('%s: held %s', (_name, lsn, wal, want) => {
    expect(walHeld(lsn, wal)).toBe(want);
  });

  it("reads restart_lsn from a slot's state file, and nothing from another file", () => {
    const state = Buffer.alloc(200);
    state.writeUInt32LE(0x1051ca1, 0);
    state.writeBigUInt64LE(0x4022430n, 96);
    expect(stateFileRestartLsn(state)).toBe(0x4022430n);
    expect(stateFileRestartLsn(state.subarray(0, 100))).toBeUndefined();
    state.writeUInt32LE(0, 0);
    expect(stateFileRestartLsn(state)).toBeUndefined();
  });
});

describe('readiness of copied logical slots', () => {
  const standby = (slots: Record<string, StandbyLogicalSlot>): Map<string, StandbyLogicalSlot> =>
    new Map(Object.entries(slots));
  const s = (catalogXmin: number | undefined, restartLsn = 0x3000000n): StandbyLogicalSlot => ({
    catalogXmin,
    restartLsn,
  });

  it.each([
    ['primary logical <= physical <= standby copy: ready', 735, 740, s(740), WAL, ['l']],
    ['physical behind the primary logical slot: waits', 741, 740, s(745), WAL, []],
    ['standby copy behind the physical slot: waits', 735, 740, s(738), WAL, []],
    ['standby copy without catalog_xmin: waits', 735, 740, s(undefined), WAL, []],
    ['no physical catalog_xmin (no leader asked): waits', 735, undefined, s(740), WAL, []],
    ['catalog rows held but the WAL is gone: waits', 735, 740, s(740, 0x1000000n), WAL, []],
    ['pg_wal unknown: catalog rows decide', 735, 740, s(740, 0x1000000n), undefined, ['l']],
  ] as const)('%s', (_name, primaryXmin, physical, slot, wal, ready) => {
    const r = readyLogicalSlots(new Map([['l', primaryXmin]]), physical, standby({ l: slot }), wal);
    expect(r.ready).toEqual(ready);
    expect([...r.queue.keys()]).toEqual(ready.length > 0 ? [] : ['l']);
  });

  it('a slot the replica no longer has leaves the queue without being ready', () => {
    const r = readyLogicalSlots(new Map([['gone', undefined]]), undefined, standby({}), WAL);
    expect(r).toEqual({ queue: new Map(), ready: [] });
  });

  it('a slot whose primary catalog_xmin is not remembered yet waits', () => {
    const r = readyLogicalSlots(new Map([['l', undefined]]), 740, standby({ l: s(740) }), WAL);
    expect(r.ready).toEqual([]);
  });

  it("remembers the primary's catalog_xmin only for slots still waiting for one", () => {
    const queue = rememberPrimaryXmins(
      new Map([
        ['a', undefined],
        ['b', 700],
      ]),
      { a: 735, b: 736 },
    );
    expect([...queue]).toEqual([
      ['a', 735],
      ['b', 700],
    ]);
  });

  it('a (re)started replica queues every slot it has', () => {
    expect([...queueAll(['a', 'b'])]).toEqual([
      ['a', undefined],
      ['b', undefined],
    ]);
  });
});
