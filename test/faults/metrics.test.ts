import { describe, expect, it } from 'vitest';
import {
  acceptsByMember,
  doubleRounds,
  lostAcks,
  combineRuns,
  markdownTable,
  parseMarkdownTable,
  resumeSeconds,
  targetLines,
  type RowResult,
} from './metrics.js';

describe('fault suite metrics', () => {
  it('counts a probe round with two acknowledging members as a moment with two writable members', () => {
    const rounds = [
      { start: 0, accepted: [{ name: 'm1', at: 5 }] },
      {
        start: 100,
        accepted: [
          { name: 'm1', at: 105 },
          { name: 'm2', at: 106 },
        ],
      },
      { start: 200, accepted: [] },
      { start: 300, accepted: [{ name: 'm2', at: 305 }] },
    ];
    expect(doubleRounds(rounds).map((r) => r.start)).toEqual([100]);
    expect(acceptsByMember(rounds)).toEqual({ m1: 2, m2: 2 });
  });

  it('lists acknowledged ids missing on the final primary', () => {
    const acks = [1, 2, 3, 4].map((id) => ({ id, at: id * 50 }));
    expect(lostAcks(acks, new Set([1, 2, 4, 99]))).toEqual([3]);
  });

  it('measures the longest stretch without an acknowledged write from the fault on', () => {
    const acks = [900, 950, 1000, 1050, 4000, 4050, 9050].map((at, i) => ({ id: i, at }));
    // from the fault (1020): 1020->1050, 1050->4000 (2.95 s), 4000->4050, 4050->9050 (5 s)
    expect(resumeSeconds(acks, 1020, 10_000)).toBe(5);
    expect(resumeSeconds(acks, 1020, 5000)).toBe(3);
    expect(resumeSeconds(acks, 9100, 20_000)).toBeNull();
  });

  it('marks rows that miss a target in the table', () => {
    const row = {
      fault: 'dcs-cut',
      impl: 'pgwarden',
      sync: 'on',
      doubleWritable: 2,
      doubleWho: ['m1+m2'],
      acked: 10,
      probeAccepts: {},
      lost: 1,
      resumeSeconds: null,
      healed: false,
      healSeconds: null,
      code: 'abc1234 20:41',
    };
    expect(markdownTable([row]).split('\n')[2]).toBe(
      '| dcs-cut | pgwarden | on | **2** | 10 | **1** | never | **no** | never | abc1234 20:41 | double: m1+m2 |',
    );
  });

  it('checks the targets on pgwarden rows against Patroni 4.1.4 rows of the same fault and mode', () => {
    const base = {
      doubleWritable: 0,
      doubleWho: [],
      acked: 10,
      probeAccepts: {},
      lost: 0,
      healed: true,
      healSeconds: 1,
    };
    const rows: RowResult[] = [
      { ...base, fault: 'dcs-cut', impl: 'pgwarden', sync: 'on', resumeSeconds: 14, lost: 2 },
      { ...base, fault: 'dcs-cut', impl: 'patroni-4.1.4', sync: 'on', resumeSeconds: 12 },
      { ...base, fault: 'isolated', impl: 'pgwarden', sync: 'off', resumeSeconds: 3, lost: 5 },
      { ...base, fault: 'control', impl: 'pgwarden', sync: 'off', resumeSeconds: 1, doubleWritable: 3 },
    ];
    expect(targetLines(rows, (f) => f === 'control')).toEqual([
      '- 0 moments with two writable members (2 pgwarden rows): met',
      '- 0 acknowledged writes lost with sync on/strict: **missed** on dcs-cut/on',
      '- heals with no human action: met',
      '- writes resume no later than Patroni 4.1.4 (1 rows compared): **slower** on dcs-cut/on 14 s vs 12 s',
    ]);
  });
});

describe('fault table read back', () => {
  it('gives the rows markdownTable wrote (without the per-member probe counts)', () => {
    const rows: RowResult[] = [
      {
        fault: 'isolated (zookeeper)',
        impl: 'pgwarden',
        sync: 'on',
        doubleWritable: 3,
        doubleWho: ['m1+m2', 'm1+m3'],
        acked: 700,
        probeAccepts: {},
        lost: 2,
        resumeSeconds: 20.4,
        healed: false,
        healSeconds: null,
        code: 'b1357ec 21:20',
      },
      {
        fault: 'dcs-cut',
        impl: 'patroni-4.1.4',
        sync: 'off',
        doubleWritable: 0,
        doubleWho: [],
        acked: 0,
        probeAccepts: {},
        lost: 0,
        resumeSeconds: null,
        healed: true,
        healSeconds: 1.5,
        error: 'row time (420 s) is up',
      },
      {
        fault: 'dcs-cut',
        impl: 'pgwarden',
        sync: 'strict',
        doubleWritable: 0,
        doubleWho: [],
        acked: 500,
        probeAccepts: {},
        lost: 0,
        resumeSeconds: 14.1,
        healed: true,
        healSeconds: 5.9,
        runs: 3,
        resumeRange: [13.2, null],
      },
    ];
    expect(parseMarkdownTable(`# title\n\n${markdownTable(rows)}\n\nmore text | with | bars\n`)).toEqual(
      rows,
    );
  });
});

describe('runs of one row combined', () => {
  const run = (resumeSeconds: number | null, extra: Partial<RowResult> = {}): RowResult => ({
    fault: 'dcs-cut',
    impl: 'pgwarden',
    sync: 'on',
    doubleWritable: 0,
    doubleWho: [],
    acked: 100,
    probeAccepts: {},
    lost: 0,
    resumeSeconds,
    healed: true,
    healSeconds: resumeSeconds,
    ...extra,
  });

  it("takes the median run's timings, the worst safety figures and the range", () => {
    const c = combineRuns([
      run(14, { acked: 1 }),
      run(null, { doubleWritable: 2, doubleWho: ['m1+m2'] }),
      run(12, { acked: 3, lost: 4, healed: false }),
    ]);
    expect(c).toMatchObject({
      resumeSeconds: 14,
      acked: 1,
      doubleWritable: 2,
      doubleWho: ['m1+m2'],
      lost: 4,
      healed: false,
      healSeconds: null,
      runs: 3,
      resumeRange: [12, null],
    });
  });

  it('a run that did not complete makes the row failed; one run stays as it is', () => {
    const broken = run(null, { error: 'no leader' });
    expect(combineRuns([run(10), broken, run(11)])).toBe(broken);
    const one = run(10);
    expect(combineRuns([one])).toBe(one);
    expect(() => combineRuns([])).toThrow(/no run/);
  });
});
