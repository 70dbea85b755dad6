/**
 * src/model/python.ts and src/model/tags.ts against what Python and Patroni 4.1.4 answer (the expected values are
 * Python's: `bool(v)`, utils.parse_bool, `str(v)`, utils.patch_config / deep_compare, tags.py `Tags`).
 */
import { describe, expect, it } from 'vitest';
import { deepCompare, parseBool, patchConfig, pyBool, pyStr } from '../../src/model/python.js';
import {
  tagCloneFrom,
  tagFailoverPriority,
  tagNoFailover,
  tagNoLoadBalance,
  tagNoStream,
  tagNoSync,
  tagSyncPriority,
} from '../../src/model/tags.js';
import { errorText } from '../../src/model/text.js';

describe("Python's bool()", () => {
  const cases: readonly (readonly [unknown, boolean])[] = [
    [undefined, false],
    [null, false],
    [false, false],
    [0, false],
    ['', false],
    [[], false],
    [{}, false],
    [true, true],
    [1, true],
    [-1, true],
    [0.5, true],
    ['false', true],
    ['0', true],
    ['off', true],
    [' ', true],
    [[0], true],
    [{ a: null }, true],
  ];
  it.each(cases)('bool(%j) is %s', (v, want) => expect(pyBool(v)).toBe(want));
});

describe('utils.parse_bool', () => {
  const cases: readonly (readonly [unknown, boolean | undefined])[] = [
    [true, true],
    [false, false],
    [1, true],
    [0, false],
    [2, undefined],
    ['on', true],
    ['TRUE', true],
    ['Yes', true],
    ['1', true],
    ['off', false],
    ['False', false],
    ['NO', false],
    ['0', false],
    [' on', undefined],
    ['on ', undefined],
    ['y', undefined],
    ['', undefined],
    [null, undefined],
    [undefined, undefined],
    [[1], undefined],
    [{}, undefined],
  ];
  it.each(cases)('parse_bool(%j) is %s', (v, want) => expect(parseBool(v)).toBe(want));
});

describe("Python's str()", () => {
  const cases: readonly (readonly [unknown, string])[] = [
    [null, 'None'],
    [undefined, 'None'],
    [true, 'True'],
    [false, 'False'],
    [30, '30'],
    [-1.5, '-1.5'],
    [12345678901234567890n, '12345678901234567890'],
    [Number.NaN, 'nan'],
    [Number.POSITIVE_INFINITY, 'inf'],
    [Number.NEGATIVE_INFINITY, '-inf'],
    ['text', 'text'],
    [[1, 'a', true, null], "[1, 'a', True, None]"],
    [{ k: 'v', n: { x: [] } }, "{'k': 'v', 'n': {'x': []}}"],
    [["it's"], '["it\'s"]'],
    [['a\'b"c\n'], "['a\\'b\"c\\n']"],
  ];
  it.each(cases)('str(%o) is %s', (v, want) => expect(pyStr(v)).toBe(want));
});

describe('utils.patch_config', () => {
  it('keeps a value whose str() is equal and reports no change', () => {
    const c: Record<string, unknown> = { ttl: 30, pause: true };
    expect(patchConfig(c, { ttl: '30', pause: 'True' })).toBe(false);
    expect(c).toEqual({ ttl: 30, pause: true });
  });

  it('deletes on null, merges mappings, replaces anything else, adds new keys', () => {
    const c: Record<string, unknown> = {
      ttl: 30,
      postgresql: { parameters: { a: '1', b: 2 } },
      pause: true,
      tags: 'x',
      slots: [1],
    };
    expect(
      patchConfig(c, {
        pause: null,
        postgresql: { parameters: { a: null, c: 'x' } },
        tags: { nofailover: true },
        slots: [2],
        loop_wait: 5,
      }),
    ).toBe(true);
    expect(c).toEqual({
      ttl: 30,
      postgresql: { parameters: { b: 2, c: 'x' } },
      tags: { nofailover: true },
      slots: [2],
      loop_wait: 5,
    });
  });

  it('deleting a key that is absent or already null is no change', () => {
    const c: Record<string, unknown> = { a: null };
    expect(patchConfig(c, { a: null, b: null })).toBe(false);
    expect(c).toEqual({});
  });

  it('a key named like an Object property is an ordinary key', () => {
    const c: Record<string, unknown> = {};
    expect(patchConfig(c, { constructor: 1 })).toBe(true);
    expect(Object.prototype.hasOwnProperty.call(c, 'constructor')).toBe(true);
  });
});

describe('utils.deep_compare', () => {
  const cases: readonly (readonly [Record<string, unknown>, Record<string, unknown>, boolean])[] = [
    [{ '1': null }, {}, false],
    [{ '1': {} }, { '1': null }, false],
    [{ '1': [1] }, { '1': [2] }, false],
    [{ '1': 2 }, { '1': '2' }, true],
    [{ '1': { '2': [3, 4] } }, { '1': { '2': [3, 4] } }, true],
    [{ a: true }, { a: 'True' }, true],
    [{ a: true }, { a: 'true' }, false],
  ];
  it.each(cases)('deep_compare(%j, %j) is %s', (a, b, want) => expect(deepCompare(a, b)).toBe(want));
});

describe('tags.py Tags', () => {
  const cases: readonly (readonly [Record<string, unknown>, { nofailover: boolean; priority: number }])[] = [
    [{}, { nofailover: false, priority: 1 }],
    [{ nofailover: true }, { nofailover: true, priority: 0 }],
    [{ nofailover: false }, { nofailover: false, priority: 1 }],
    // bool('false') is True in Python: Patroni treats the string as set.
    [{ nofailover: 'false' }, { nofailover: true, priority: 0 }],
    [
      { nofailover: null, failover_priority: 0 },
      { nofailover: true, priority: 0 },
    ],
    [{ failover_priority: '-1' }, { nofailover: true, priority: -1 }],
    [{ failover_priority: 3 }, { nofailover: false, priority: 3 }],
    [{ failover_priority: 'x' }, { nofailover: false, priority: 1 }],
    // The boolean tag wins over a contradicting priority.
    [
      { nofailover: false, failover_priority: 0 },
      { nofailover: false, priority: 0 },
    ],
    [
      { nofailover: true, failover_priority: 5 },
      { nofailover: true, priority: 0 },
    ],
  ];
  it.each(cases)('nofailover / failover_priority of %j', (tags, want) => {
    expect(tagNoFailover(tags)).toBe(want.nofailover);
    expect(tagFailoverPriority(tags)).toBe(want.priority);
  });

  it('nosync falls back to sync_priority; noloadbalance and clonefrom are bool()', () => {
    expect(tagNoSync({ nosync: 'no' })).toBe(true);
    expect(tagNoSync({ sync_priority: 0 })).toBe(true);
    expect(tagNoSync({ sync_priority: 1 })).toBe(false);
    expect(tagNoLoadBalance({ noloadbalance: 'false' })).toBe(true);
    expect(tagNoLoadBalance({ noloadbalance: 0 })).toBe(false);
    expect(tagCloneFrom({ clonefrom: true })).toBe(true);
    expect(tagCloneFrom({})).toBe(false);
  });

  // What tags.py answers (Patroni 4.1.4, run with python3): the boolean tag wins, priorities are parse_int'ed.
  const syncCases: readonly (readonly [Record<string, unknown>, { nosync: boolean; priority: number }])[] = [
    [{}, { nosync: false, priority: 1 }],
    [{ sync_priority: '2' }, { nosync: false, priority: 2 }],
    [{ sync_priority: 2 }, { nosync: false, priority: 2 }],
    [{ sync_priority: '2.6' }, { nosync: false, priority: 3 }],
    [{ sync_priority: 'x' }, { nosync: false, priority: 1 }],
    [{ sync_priority: null }, { nosync: false, priority: 1 }],
    [{ sync_priority: '0' }, { nosync: true, priority: 0 }],
    [{ sync_priority: -3 }, { nosync: true, priority: -3 }],
    [
      { nosync: true, sync_priority: '2' },
      { nosync: true, priority: 0 },
    ],
    [
      { nosync: false, sync_priority: '0' },
      { nosync: false, priority: 0 },
    ],
    [
      { nosync: 'false', sync_priority: 5 },
      { nosync: true, priority: 0 },
    ],
  ];
  it.each(syncCases)('nosync / sync_priority of %j', (tags, want) => {
    expect(tagNoSync(tags)).toBe(want.nosync);
    expect(tagSyncPriority(tags)).toBe(want.priority);
  });

  // nostream is parse_bool(...) or False, not bool(): the string 'false' is not set, 2 is not set either.
  const nostreamCases: readonly (readonly [unknown, boolean])[] = [
    [true, true],
    ['true', true],
    ['True', true],
    ['yes', true],
    ['on', true],
    ['1', true],
    [1, true],
    ['false', false],
    ['off', false],
    ['no', false],
    [0, false],
    [false, false],
    [null, false],
    [undefined, false],
    ['x', false],
    [2, false],
    ['', false],
  ];
  it.each(nostreamCases)('nostream of %j is %s', (value, want) => {
    expect(tagNoStream(value === undefined ? {} : { nostream: value })).toBe(want);
  });
});

describe('errorText', () => {
  it("is an Error's message, or anything else as text", () => {
    expect(errorText(new Error('boom'))).toBe('boom');
    expect(errorText('plain')).toBe('plain');
    expect(errorText(42)).toBe('42');
  });
});
